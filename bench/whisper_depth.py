"""Does a Whisper head on fewer encoder layers hold accuracy? (issue 25's "encoder depth", issue 24's item 5.)

For each depth k (and all six layers), heads are trained with the shipped Whisper checkpoint's own recipe, changed
only in `encoder_layers=k` and in `members` (default 1: a bag of five per depth costs five times the CPU): they read
the embeddings and the first k layers' states (train.fit's trainer, on the same trunk caches, which hold all seven
states). Each is scored on the validation speakers by the one validation score (the mean over clean and every
simulated condition of the corpus-balanced UAR, on the cached validation windows) against the same recipe on all six
layers, with a paired speaker bootstrap of the drop. Also timed: the encoder's forward pass at each depth on a 5 s
clip's two 3 s windows, one thread (as the app gives each request). A measurement for docs/speed.md, never a test;
the test speakers are not read.

    python -m bench.whisper_depth [--layers 3 4 5] [--members 1] [--cache DIR] [--whisper DIR] [--out FILE]

A depth is worth adopting only if the upper end of its drop's 95% interval is within TOLERANCE (issue 25: 0.005).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from emotion_core.features import whisper_input
from emotion_core.labels import LABEL_INDEX
from emotion_core.models.base import load_checkpoint
from emotion_core.models.whisper import hidden_states, load_encoder, pooled_states
from emotion_core.paths import checkpoint_dir, whisper_source
from train.cache import cache_dir, load_cache
from train.ensemble import speaker_resamples
from train.fit import fit_whisper, trunk_caches
from train.recipe import Recipe
from train.trunk import cached_clip_probs
from train.validation import selection_score

TOLERANCE = 0.005  # validation cbUAR a cheaper encoder may cost the answering model
RESAMPLES = 1000
TIMING_RUNS = 30


def encoder_ms(encoder, layers: int, runs: int = TIMING_RUNS) -> float:
    """Median ms of the encoder's forward pass through `layers` layers on two 3 s windows, one thread."""
    x = whisper_input(torch.randn(2, 80, 300))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            hidden_states(encoder, x, layers)
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                hidden_states(encoder, x, layers)
                times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    return 1000 * float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[3, 4, 5], help="encoder depths to train and score")
    ap.add_argument("--members", type=int, default=1, help="heads in each depth's bag (the shipped recipe has 5)")
    ap.add_argument(
        "--shipped", help="the Whisper checkpoint whose recipe is used (default: whisper.pt in $EMOTION_CHECKPOINTS)"
    )
    ap.add_argument("--cache", help="feature cache with the Whisper trunk caches (default $EMOTION_CACHE_DIR)")
    ap.add_argument("--whisper", help="Whisper encoder (default $EMOTION_WHISPER)")
    ap.add_argument("--resamples", type=int, default=RESAMPLES)
    ap.add_argument("--out", default="bench/whisper_depth.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    shipped_path = Path(args.shipped) if args.shipped else checkpoint_dir() / "whisper.pt"
    shipped, meta = load_checkpoint(shipped_path)
    recipe = dataclasses.replace(Recipe(**meta["record"]["recipe"]), members=args.members)
    full = shipped.cfg.n_states - 1
    cdir, source = cache_dir(args.cache), whisper_source(args.whisper)
    rows, mels = load_cache(cdir)
    encoder = load_encoder(source)
    _, val_sets = trunk_caches(cdir, "whisper", rows, mels, lambda w: pooled_states(encoder, w), recipe)
    val_rows = val_sets["clean"][2]
    y = np.array([LABEL_INDEX[r["label"]] for r in val_rows])
    datasets = np.array([r["dataset"] for r in val_rows])
    speakers = np.array([r["speaker"] for r in val_rows])

    probs, trained = {}, {}
    for k in sorted(set(args.layers) | {full}):
        family, result = fit_whisper(rows, mels, dataclasses.replace(recipe, encoder_layers=k), cdir, source)
        probs[k] = {c: cached_clip_probs(family, v) for c, v in val_sets.items()}
        trained[k] = {"best_epoch": result["best_epoch"]}

    def score(k, idx=slice(None)):
        return selection_score([p[idx] for p in probs[k].values()], y[idx], datasets[idx])

    draws = speaker_resamples(speakers, datasets, args.resamples)
    table = []
    for k in sorted(probs):
        drops = np.array([score(full, i) - score(k, i) for i in draws])
        low, high = np.percentile(drops, [2.5, 97.5])
        row = {
            "encoder_layers": k,
            "val_score": round(score(k), 4),
            "per_condition": {c: round(selection_score([probs[k][c]], y, datasets), 4) for c in val_sets},
            "drop": round(score(full) - score(k), 4),
            "drop_95_interval": [round(float(low), 4), round(float(high), 4)],
            "holds": bool(high <= TOLERANCE),
            "encoder_ms_two_windows_one_thread": round(encoder_ms(encoder, k), 1),
            **trained[k],
        }
        table.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "recipe": dataclasses.asdict(recipe),
        "conditions": list(val_sets),
        "clips": len(val_rows),
        "resamples": args.resamples,
        "tolerance": TOLERANCE,
        "depths": table,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
