"""Does a retrained checkpoint replace the shipped one? Both are scored on the same validation sets
(train.validation: the cached validation clips, clean and every simulated condition cached), uncalibrated (a
calibration is fitted afterwards, for the checkpoint kept), by the one validation score; the candidate replaces the
shipped checkpoint only when its score is higher. The test speakers are not read.

    python -m train.compare --candidate /tmp/new/cnn2d.pt [--shipped checkpoints/cnn2d.pt] [--out FILE.json]

Prints and writes {"family", "conditions", "clips", "shipped": S, "candidate": S, "replace": bool}, S = {"score",
"per_condition": {condition: cb-UAR}, "largest_share", "sha256"}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emotion_core.calibration import file_sha256
from emotion_core.models.base import load_checkpoint
from emotion_core.paths import checkpoint_dir

from .cache import cache_dir
from .validation import clip_probabilities, validation_logits, validation_scores, validation_sets


def checkpoint_scores(path: Path, sets: dict, cdir: Path | None = None, whisper: str | None = None) -> dict:
    """One checkpoint, uncalibrated, on validation sets {condition: ValidationSet} -> S (see the module docstring)."""
    probs = clip_probabilities(validation_logits(path, sets, cdir, whisper), sets)
    scores = validation_scores(probs, sets["clean"].rows)
    per = {c: (scores[c] if len(sets) > 1 else scores)["corpus_balanced_uar"] for c in sets}
    return {
        "family": load_checkpoint(path)[1]["family"],
        "score": scores["corpus_balanced_uar"],
        "per_condition": per,
        "largest_share": scores["largest_share"],
        "sha256": file_sha256(path),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Score a retrained checkpoint against the shipped one on validation.")
    ap.add_argument("--candidate", required=True, help="the retrained checkpoint (<family>.pt)")
    ap.add_argument("--shipped", help="default: the checkpoint of the same family in $EMOTION_CHECKPOINTS")
    ap.add_argument("--cache", help="feature cache with the validation copies (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--whisper", help="Whisper encoder: local directory or Hub id (default $EMOTION_WHISPER)")
    ap.add_argument("--out", help="also write the result here (JSON)")
    args = ap.parse_args(argv)
    candidate = Path(args.candidate)
    shipped = Path(args.shipped) if args.shipped else checkpoint_dir() / candidate.name
    cdir = cache_dir(args.cache)
    sets = validation_sets(cdir)
    new, old = (
        checkpoint_scores(candidate, sets, cdir, args.whisper),
        checkpoint_scores(shipped, sets, cdir, args.whisper),
    )
    if new["family"] != old["family"]:
        print(f"{candidate} holds {new['family']}, {shipped} holds {old['family']}", file=sys.stderr)
        return 2
    result = {
        "family": new["family"],
        "conditions": list(sets),
        "clips": len(sets["clean"].rows),
        "shipped": old,
        "candidate": new,
        "replace": new["score"] > old["score"],
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
