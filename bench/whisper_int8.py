"""Is the int8 Whisper encoder good enough to ship? The answering model (the Whisper family) on the validation
speakers, float32 against int8 (EMOTION_FAST's path), clean and in the classroom copy, with a paired speaker
bootstrap of the difference. A measurement for docs/speed.md, never a test; the test speakers are not read.

    python -m bench.whisper_int8 [--cache DIR] [--resamples 1000] [--out bench/whisper_int8.json]

The score is the one the family was chosen on: the mean over clean and classroom of the corpus-balanced UAR.
The bootstrap draws the validation speakers of each dataset with replacement (the same draw for both paths)
and gives the drop (float32 minus int8) with its 95% interval. Adopt int8 only if the interval's upper end is
within TOLERANCE (issue 25: 0.005).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.recognizer import Recognizer
from train.cache import cache_dir
from train.ensemble import speaker_resamples
from train.metrics import clip_means, evaluate_predictions
from train.validation import validation_sets

TOLERANCE = 0.005  # cbUAR an int8 encoder may cost the answering model
FAMILY = "whisper"


def cb_uar(rows, predictions: np.ndarray, picks: np.ndarray | None = None) -> float:
    """Corpus-balanced UAR of clip predictions, on the clips `picks` (indices, repeats allowed) or all."""
    picks = np.arange(len(rows)) if picks is None else picks
    y = [LABEL_INDEX[rows[i]["label"]] for i in picks]
    return evaluate_predictions(y, predictions[picks], [rows[i]["dataset"] for i in picks], len(LABELS))[
        "corpus_balanced_uar"
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", help="feature cache with the validation copies (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--whisper", help="Whisper encoder (default $EMOTION_WHISPER)")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--out", default="bench/whisper_int8.json")
    args = ap.parse_args(argv)
    sets = {c: v for c, v in validation_sets(cache_dir(args.cache)).items() if c in ("clean", "classroom")}
    rows = next(iter(sets.values()))[2]
    predictions, seconds = {}, {}
    for path, fast in (("float32", False), ("int8", True)):
        rec = Recognizer(device="cpu", whisper=args.whisper, fast=fast)
        t = time.perf_counter()
        for condition, (wins, owners, _rows) in sets.items():
            wp = rec.window_probabilities(wins, families=[FAMILY], batch=64)[FAMILY][0]
            predictions[path, condition] = clip_means(wp, owners, len(rows)).argmax(1)
        seconds[path] = time.perf_counter() - t
        print(f"{path}: {seconds[path]:.0f} s for {sum(len(w) for w, _, _ in sets.values())} windows", flush=True)

    def score(path, picks=None):
        return float(np.mean([cb_uar(rows, predictions[path, c], picks) for c in sets]))

    draws = speaker_resamples([r["speaker"] for r in rows], [r["dataset"] for r in rows], args.resamples)
    drops = np.array([score("float32", p) - score("int8", p) for p in draws])
    low, high = np.percentile(drops, [2.5, 97.5])
    result = {
        "family": FAMILY,
        "conditions": list(sets),
        "clips": len(rows),
        "val_cb_uar": {"float32": round(score("float32"), 4), "int8": round(score("int8"), 4)},
        "per_condition": {c: {p: round(cb_uar(rows, predictions[p, c]), 4) for p in ("float32", "int8")} for c in sets},
        "drop": round(score("float32") - score("int8"), 4),
        "drop_95_interval": [round(float(low), 4), round(float(high), 4)],
        "resamples": args.resamples,
        "tolerance": TOLERANCE,
        "adopt": bool(high <= TOLERANCE),
        "encoder_seconds": {p: round(s, 1) for p, s in seconds.items()},
    }
    print(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
