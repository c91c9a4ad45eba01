"""Decode the corpus once into a feature cache that every training run reads.

    python -m train.cache --data DIR [--cache DIR]     # log-mel of every clip (about a minute)

Each clip goes through exactly the inference path: load_audio -> prepare_speech -> log_mel.
Clips that load_audio refuses (the silent CREMA-D original) are listed and left out.
Files: mels.npy (float16, frames x 80, all clips end to end), clips.csv (one row per clip with its
offset and frame count). train.fit adds whisper_<k>.npy trunk caches for the Whisper family.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from corpus import read_splits, scan
from emotion_core import settings
from emotion_core.audio import AudioError, load_audio, prepare_speech
from emotion_core.features import DEFAULT_FEATURES, log_mel
from emotion_core.paths import data_dir

FIELDS = ["path", "dataset", "speaker", "label", "sentence", "split", "offset", "frames"]


def cache_dir(cli_value: str | None = None) -> Path:
    return settings.current().or_cli("cache_dir", cli_value)


def corpus_fingerprint(root: Path, clips) -> str:
    """sha256 over every clip's relative path and size: identifies the training data."""
    h = hashlib.sha256()
    for c in clips:
        p = Path(c.path)
        h.update(f"{p.relative_to(root)}:{p.stat().st_size}\n".encode())
    return h.hexdigest()


def build_mels(root: Path, out: Path) -> None:
    clips, _ = scan(root)
    splits = read_splits()
    out.mkdir(parents=True, exist_ok=True)
    rows, mels, offset, refused = [], [], 0, []
    for c in tqdm(clips, desc="decode + log-mel", mininterval=5):
        try:
            audio = prepare_speech(load_audio(c.path))
        except AudioError as e:
            refused.append((c.path, str(e)))
            continue
        lm = log_mel(torch.from_numpy(audio), DEFAULT_FEATURES).T.numpy().astype(np.float16)
        rows.append(
            {
                "path": str(Path(c.path).relative_to(root)),
                "dataset": c.dataset,
                "speaker": c.speaker,
                "label": c.label,
                "sentence": c.sentence,
                "split": splits.get(c.speaker, "none"),
                "offset": offset,
                "frames": lm.shape[0],
            }
        )
        mels.append(lm)
        offset += lm.shape[0]
    write_mels(out / "mels.npy", out / "clips.csv", rows, mels)
    (out / "fingerprint.txt").write_text(corpus_fingerprint(root, clips) + "\n")
    for path, why in refused:
        print(f"refused {path}: {why}")
    print(f"cached {len(rows)} clips, {offset} frames ({offset / 100 / 3600:.2f} h) in {out}")


def write_mels(mels_path: Path, rows_path: Path, rows: list[dict], mels: list, fields=FIELDS) -> None:
    """One cache file pair: the clips' float16 (frames, 80) log-mels end to end, and a csv row per clip
    (`fields`; each row's offset and frames locate its log-mel)."""
    np.save(mels_path, np.concatenate(mels))
    with open(rows_path, "w", newline="") as f:
        w = csv.DictWriter(f, fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def load_cache(out: Path):
    """(rows, mels) where mels is a float16 (frames, 80) array and rows carry offset/frames ints."""
    with open(out / "clips.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["offset"], r["frames"] = int(r["offset"]), int(r["frames"])
    return rows, np.load(out / "mels.npy", mmap_mode="r")


def clip_mel(mels, row) -> torch.Tensor:
    """(80, frames) float32 log-mel of one cached clip."""
    return torch.from_numpy(np.asarray(mels[row["offset"] : row["offset"] + row["frames"]], dtype=np.float32).T)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build the training feature cache.")
    ap.add_argument("--data")
    ap.add_argument("--cache")
    args = ap.parse_args(argv)
    out = cache_dir(args.cache)
    if not (out / "mels.npy").exists():
        build_mels(data_dir(args.data), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
