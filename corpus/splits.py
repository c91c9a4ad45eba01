"""Speaker-independent split: every speaker in exactly one of train / val / test.

    python -m corpus.splits --data DIR [--manifest FILE] [--out corpus/splits.csv]

Seeded (SEED) and stratified by dataset and sex: within each (dataset, sex) group the speakers are
shuffled and VAL_SHARE / TEST_SHARE of them (rounded, at least one when the group allows) go to val and
test. Sex comes from the corpus manifest when given; RAVDESS actors are odd = male, even = female.

Small datasets get rules of their own:
- TESS: the development corpus holds one speaker (YAF). Any TESS validation or test clip would come
  from the speaker the model trained on, which measures memory, not generalisation (speaker-dependent
  TESS is near 100% in the literature). So YAF trains only, and TESS is measured on the held-back speakers.
- SAVEE: three speakers, all male: one each to train, val and test.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
from collections import defaultdict
from pathlib import Path

from .clips import DATASETS, data_dir, scan

SEED = 20261124
VAL_SHARE = 0.15
TEST_SHARE = 0.15
SPLITS_CSV = Path(__file__).with_name("splits.csv")


def select_clips(root, split: str | None, splits_csv: Path = SPLITS_CSV):
    """Every 7-class clip under root (corpus.scan), only those of `split`'s speakers when split is given."""
    clips, _skipped = scan(root)
    if split:
        assignment = read_splits(splits_csv)
        clips = [c for c in clips if assignment.get(c.speaker) == split]
    return clips


def speaker_sex(speaker: str, manifest: dict[str, str]) -> str:
    if speaker in manifest:
        return manifest[speaker]
    if speaker.startswith("RAVDESS_"):
        return "male" if int(speaker.split("_")[1]) % 2 else "female"
    if speaker in ("TESS_YAF", "TESS_OAF"):
        return "female"
    if speaker.startswith("SAVEE_"):
        return "male"
    return "unknown"


def speaker_split(speakers: dict[str, str], sexes: dict[str, str], seed: int = SEED) -> dict[str, str]:
    """speakers: speaker -> dataset; sexes: speaker -> sex. Returns speaker -> 'train' | 'val' | 'test'."""
    rng = random.Random(seed)
    groups = defaultdict(list)
    for spk, ds in sorted(speakers.items()):
        groups[(ds, sexes.get(spk, "unknown"))].append(spk)
    out = {}
    for (ds, _sex), spks in sorted(groups.items()):
        rng.shuffle(spks)
        if ds == "TESS":
            n_val = n_test = 0
        elif ds == "SAVEE":
            n_val = n_test = 1 if len(spks) >= 3 else 0
        else:
            n_test = max(1, round(TEST_SHARE * len(spks))) if len(spks) >= 3 else 0
            n_val = max(1, round(VAL_SHARE * len(spks))) if len(spks) >= 3 else 0
        for i, spk in enumerate(spks):
            out[spk] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def read_splits(path: str | Path = SPLITS_CSV) -> dict[str, str]:
    """speaker -> split from the committed file."""
    with open(path, newline="") as f:
        return {row["speaker"]: row["split"] for row in csv.DictReader(f)}


def read_speaker_sexes(path: str | Path = SPLITS_CSV) -> dict[str, str]:
    """speaker -> 'female' | 'male' | 'unknown' from the committed file (the manifest's, when the split was made)."""
    with open(path, newline="") as f:
        return {row["speaker"]: row["sex"] for row in csv.DictReader(f)}


def splits_hash(path: str | Path = SPLITS_CSV) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Write the speaker-independent split.")
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--manifest", help="manifest.csv with speaker and sex columns (default: DATA/../manifest.csv)")
    ap.add_argument("--out", default=str(SPLITS_CSV))
    args = ap.parse_args(argv)
    root = data_dir(args.data)
    clips, skipped = scan(root)
    speakers = {c.speaker: c.dataset for c in clips + skipped}
    manifest_path = Path(args.manifest) if args.manifest else root.parent / "manifest.csv"
    sexes = {}
    if manifest_path.is_file():
        with open(manifest_path, newline="") as f:
            sexes = {r["speaker"]: r["sex"] for r in csv.DictReader(f)}
    sexes = {s: speaker_sex(s, sexes) for s in speakers}
    split = speaker_split(speakers, sexes)
    order = {d: i for i, d in enumerate(DATASETS)}
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["dataset", "speaker", "split", "sex"])
        for spk in sorted(split, key=lambda s: (order[speakers[s]], s)):
            w.writerow([speakers[spk], spk, split[spk], sexes[spk]])
    for part in ("train", "val", "test"):
        by_ds = {d: sum(1 for s in split if split[s] == part and speakers[s] == d) for d in DATASETS}
        print(part, by_ds)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
