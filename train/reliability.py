"""How far each family's probabilities can be trusted, on the validation speakers, clean and in the classroom, and
the "not sure" threshold chosen there.

    python -m train.reliability [--cache DIR] [--checkpoints DIR] [--whisper SRC] [--out reports/reliability.json]

Each family answers the validation clips of the feature cache (clean, and classroom copy 0: what train.evaluate
--split val hears) as the app does: window logits, the family's calibration from checkpoints/calibration.json
(train.calibration; none where it was not adopted or belongs to another checkpoint), the mean over windows. The
answers are binned by their top probability (BIN_WIDTH): per bin the clips, their mean top probability and the
share right, which is the reliability diagram of How it works (a calibrated family's points lie on the diagonal).

The threshold: the lowest bin edge from which every bin (of at least MIN_BIN_CLIPS answers, all families and both
conditions pooled) was right at least half the time. In one sentence: below it, an answer was wrong more often
than right on voices the models never trained on. The test speakers are not read.
  {"split": "val", "conditions": [...], "clips": n, "bin_width", "threshold", "checkpoints": {file: sha256},
   "families": {name: {"calibrated": bool, "conditions": {condition: [{"lo", "hi", "n", "confidence", "accuracy"}]}}},
   "pooled": [bins]}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from emotion_core.calibration import load_calibration
from emotion_core.labels import LABEL_INDEX
from emotion_core.models.registry import FAMILIES
from emotion_core.paths import PROJECT_DIR, checkpoint_dir

from .cache import cache_dir
from .clip_answers import checkpoint_hashes
from .validation import clip_probabilities, validation_logits, validation_sets

CONDITIONS = ("clean", "classroom")
BIN_WIDTH = 0.05
MIN_BIN_CLIPS = 30  # a bin with fewer answers says too little to set the threshold
OUT = PROJECT_DIR / "reports" / "reliability.json"


def reliability_bins(top: np.ndarray, right: np.ndarray, width: float = BIN_WIDTH) -> list[dict]:
    """Answers' top probabilities (n,) and whether each was right (n,) -> the non-empty bins of width `width`:
    [{"lo", "hi", "n", "confidence" (mean top probability), "accuracy" (share right)}], lowest first."""
    top, right = np.asarray(top, float), np.asarray(right, bool)
    edges = np.round(np.arange(0, 1 + width / 2, width), 6)
    index = np.clip(np.searchsorted(edges, top, side="right") - 1, 0, len(edges) - 2)
    out = []
    for k in range(len(edges) - 1):
        mine = index == k
        if mine.any():
            out.append(
                {
                    "lo": float(edges[k]),
                    "hi": float(edges[k + 1]),
                    "n": int(mine.sum()),
                    "confidence": float(top[mine].mean()),
                    "accuracy": float(right[mine].mean()),
                }
            )
    return out


def not_sure_threshold(bins: list[dict], min_clips: int = MIN_BIN_CLIPS) -> float:
    """The lowest bin edge from which every bin of at least min_clips answers was right at least half the time."""
    solid = [b for b in bins if b["n"] >= min_clips]
    threshold = 1.0
    for b in reversed(solid):
        if b["accuracy"] < 0.5:
            break
        threshold = b["lo"]
    return threshold


def family_probabilities(family: str, ckdir: Path, sets: dict, whisper: str | None, cdir: Path | None = None):
    """{condition: (n, C) clip probabilities} of one family on the validation sets, calibrated as the app runs it,
    and whether it is calibrated."""
    path = ckdir / f"{family}.pt"
    calibration = load_calibration(ckdir, [family]).get(family)
    logits = validation_logits(path, sets, cdir, whisper)
    if calibration is None:
        return clip_probabilities(logits, sets), False
    return clip_probabilities(logits, sets, calibration[0], calibration[1]), True


def reliability(probabilities: dict[str, dict[str, np.ndarray]], labels: np.ndarray) -> dict:
    """{family: {condition: (n, C)}} and the true label indices (n,) -> the families' bins, the pooled bins and the
    threshold."""
    families, tops, rights = {}, [], []
    for family, by_condition in probabilities.items():
        families[family] = {}
        for condition, p in by_condition.items():
            top, right = p.max(1), p.argmax(1) == labels
            families[family][condition] = reliability_bins(top, right)
            tops.append(top)
            rights.append(right)
    pooled = reliability_bins(np.concatenate(tops), np.concatenate(rights))
    return {"families": families, "pooled": pooled, "threshold": not_sure_threshold(pooled)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Reliability of each family's probabilities on the validation speakers.")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--cache", help="feature cache with the validation copies (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--checkpoints", help="checkpoint directory (default $EMOTION_CHECKPOINTS or ./checkpoints)")
    ap.add_argument("--whisper", help="Whisper encoder: local directory or Hub id (default $EMOTION_WHISPER)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    ckdir = checkpoint_dir(args.checkpoints)
    cdir = cache_dir(args.cache)
    sets = {c: s for c, s in validation_sets(cdir).items() if c in CONDITIONS}
    if set(sets) != set(CONDITIONS):
        print(
            f"the cache lacks validation copies of {set(CONDITIONS) - set(sets)} (python -m train.copies)",
            file=sys.stderr,
        )
        return 2
    rows = next(iter(sets.values()))[2]
    labels = np.array([LABEL_INDEX[r["label"]] for r in rows])
    probabilities, calibrated = {}, {}
    for family in args.families.split(","):
        probabilities[family], calibrated[family] = family_probabilities(family, ckdir, sets, args.whisper, cdir)
        print(
            f"{family}: "
            + ", ".join(f"{c} accuracy {np.mean(p.argmax(1) == labels):.3f}" for c, p in probabilities[family].items()),
            flush=True,
        )
    result = reliability(probabilities, labels)
    doc = {
        "split": "val",
        "conditions": list(sets),
        "clips": len(rows),
        "bin_width": BIN_WIDTH,
        "threshold": result["threshold"],
        "checkpoints": checkpoint_hashes(ckdir),
        "families": {f: {"calibrated": calibrated[f], "conditions": bins} for f, bins in result["families"].items()},
        "pooled": result["pooled"],
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"threshold {doc['threshold']:.2f}: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
