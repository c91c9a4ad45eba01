"""Every shipped model's probabilities for every clip of one split's speakers, clean, as the app computes them.

    python -m train.clip_answers --data ../shared/data/audio --out reports/test_clips.json [--split test]

The same inference path as train.evaluate (load_audio -> windows -> every family, calibrated where
checkpoints/calibration.json says so -> mean over windows), clean condition only, and one file small enough to
commit:
  {"split", "condition": "clean", "labels": [...], "checkpoints": {file: sha256},
   "clips": [[file name, speaker, dataset, label], ...], "probabilities": {model: [[p x 7] per clip]}}
probabilities rounded to 4 decimals. From it, without the corpus or a model, train.by_sex breaks the results
down by speaker sex (corpus/splits.csv), and How it works draws its reliability diagram.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from corpus import select_clips
from emotion_core.labels import LABELS
from emotion_core.paths import data_dir
from emotion_core.recognizer import Recognizer

from .evaluate import run_probabilities

DECIMALS = 6  # enough that two answers never round to a tie (4 made one clip's top two equal)


def checkpoint_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file the answers came from (checkpoints, ensemble and calibration)."""
    files = sorted(directory.glob("*.pt")) + sorted(directory.glob("*.json"))
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def answers(recognizer: Recognizer, clips, split: str, workers: int = 1) -> dict:
    probs, kept, refused = run_probabilities(recognizer, clips, {"clean": None}, workers=workers)
    for path, why in refused:
        print(f"refused {path}: {why}", file=sys.stderr)
    return {
        "split": split,
        "condition": "clean",
        "labels": list(LABELS),
        "checkpoints": checkpoint_hashes(recognizer.dir),
        "clips": [[Path(c.path).name, c.speaker, c.dataset, c.label] for c in kept],
        "probabilities": {
            name: [None if np.isnan(row).any() else [round(float(x), DECIMALS) for x in row] for row in p]
            for name, p in probs["clean"].items()
        },
    }  # None: the app refused the clip (no speech)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Every model's probabilities for every clip of a split's speakers.")
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--split", default="test", choices=["val", "test"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoints", help="checkpoint directory (default $EMOTION_CHECKPOINTS or ./checkpoints)")
    ap.add_argument("--whisper", help="Whisper encoder: local directory or Hub id (default $EMOTION_WHISPER)")
    ap.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--workers", type=int, default=1, help="processes that decode clips")
    args = ap.parse_args(argv)
    clips = select_clips(data_dir(args.data), args.split)  # the clips train.evaluate reads (it refuses the same ones)
    if not clips:
        print("no clips found", file=sys.stderr)
        return 2
    rec = Recognizer(args.checkpoints, args.device, args.whisper)
    for fam, why in rec.unavailable.items():
        print(f"not run: {fam}: {why}", file=sys.stderr)
    t = time.perf_counter()
    doc = answers(rec, clips, args.split, args.workers)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"{len(doc['clips'])} clips, {', '.join(doc['probabilities'])}, {time.perf_counter() - t:.0f} s: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
