"""Choose the ensemble on the validation speakers: a weighted mean of the families' probabilities.

    python -m train.ensemble --data DIR [--checkpoints DIR]

Every weight vector on a grid (each family an integer weight 0-10; at least two families) is scored by the
validation corpus-balanced UAR of its weighted mean; the best is written to checkpoints/ensemble.json
with the plain mean's score beside it. The test speakers are not read.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys

import numpy as np

from corpus import is_known_bad
from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.paths import data_dir
from emotion_core.recognizer import ENSEMBLE, ENSEMBLE_FILE, Recognizer

from .evaluate import select_clips
from .metrics import clip_means, evaluate_predictions

GRID = tuple(range(11))  # integer weights 0..10: fine enough for a small tie-breaking share beside a strong member


def clip_probabilities(rec: Recognizer, clips) -> dict[str, np.ndarray]:
    """{family: (n_clips, n_labels)} mean window probabilities, on the inference path."""
    import torch

    from emotion_core.audio import load_audio

    wins, owners = [], []
    for i, c in enumerate(clips):
        w = rec.model_windows(load_audio(c.path)).windows
        wins.append(w)
        owners.extend([i] * len(w))
    owners = np.array(owners)
    probs = rec.predict_windows(torch.cat(wins))
    return {name: clip_means(p, owners, len(clips)) for name, p in probs.items() if name != ENSEMBLE}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Choose the ensemble weights on the validation speakers.")
    ap.add_argument("--data")
    ap.add_argument("--checkpoints")
    ap.add_argument("--whisper")
    args = ap.parse_args(argv)
    rec = Recognizer(args.checkpoints, None, args.whisper)
    clips = select_clips(data_dir(args.data), "val")
    clips = [c for c in clips if not is_known_bad(c.path)]
    probs = clip_probabilities(rec, clips)
    y = [LABEL_INDEX[c.label] for c in clips]
    ds = [c.dataset for c in clips]
    names = list(probs)

    def score(weights):
        p = sum(w * probs[n] for n, w in zip(names, weights))
        return evaluate_predictions(y, p.argmax(1), ds, len(LABELS))["corpus_balanced_uar"]

    singles = {n: score([1.0 if m == n else 0.0 for m in names]) for n in names}
    mean_score = score([1.0] * len(names))
    candidates = [w for w in itertools.product(GRID, repeat=len(names)) if sum(x > 0 for x in w) >= 2]
    scored = sorted(((score(w), w) for w in candidates), key=lambda t: (-t[0], sum(t[1])))
    best_score, best = scored[0]
    spec = {"members": names, "weights": [float(w) for w in best], "val_cb_uar": best_score,
            "val_cb_uar_plain_mean": mean_score, "val_cb_uar_single": singles,
            "chosen_on": f"{len(clips)} clips of the validation speakers"}
    out = rec.dir / ENSEMBLE_FILE
    out.write_text(json.dumps(spec, indent=1) + "\n")
    print(json.dumps(spec, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
