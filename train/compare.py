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

import torch

from emotion_core.calibration import file_sha256
from emotion_core.models.base import load_checkpoint
from emotion_core.paths import checkpoint_dir, whisper_source

from .cache import cache_dir
from .calibration import window_logits
from .metrics import clip_means
from .validation import validation_scores, validation_sets


def checkpoint_scores(path: Path, sets: dict, whisper: str | None = None) -> dict:
    """One checkpoint, uncalibrated, on validation sets {condition: ValidationSet} -> S (see the module docstring)."""
    model, meta = load_checkpoint(path)
    encoder = None
    if model.needs_encoder:
        from emotion_core.models.whisper import load_encoder

        encoder = load_encoder(whisper_source(whisper))
    probs = {
        c: clip_means(torch.softmax(window_logits(model, v.windows, encoder), -1).numpy(), v.owners, len(v.rows))
        for c, v in sets.items()
    }
    scores = validation_scores(probs, sets["clean"].rows)
    per = {c: (scores[c] if len(sets) > 1 else scores)["corpus_balanced_uar"] for c in sets}
    return {
        "family": meta["family"],
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
    sets = validation_sets(cache_dir(args.cache))
    new, old = checkpoint_scores(candidate, sets, args.whisper), checkpoint_scores(shipped, sets, args.whisper)
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
