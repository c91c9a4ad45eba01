"""Train the 2D family on the AudioSet-pretrained EfficientAT mn04 (emotion_core.models.mobilenet), end to end.

    python -m train.fit_mobilenet --epochs 3 --out /tmp/mn        # a short trial
    python -m train.fit_mobilenet --time                           # ms per training step / inference window

Unlike the EfficientNet-Lite0 variant (train.fit.fit_cnn2d: a cached frozen trunk), the whole network trains
(about 1 M values), from the log-mel cache like cnn1d/lstm: each step draws a balanced batch of random
windows (crop, speed perturbation, train.augment's degradations, classroom copies when the recipe has them).
The pretrained weights are read only here (--efficientat, else $EMOTION_EFFICIENTAT, else ../shared); the
checkpoint holds every weight. `fit_mobilenet` takes the same (rows, mels, recipe, teacher, cdir) as
train.fit.fit_end_to_end so train.fit can call it for `--family cnn2d` with backbone efficientat-mn04.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import torch

from emotion_core.features import DEFAULT_FEATURES
from emotion_core.labels import LABELS
from emotion_core.models.base import save_checkpoint
from emotion_core.models.mobilenet import Efficientat2d, Efficientat2dConfig

from .augment import Augmenter, random_window
from .cache import cache_dir, clip_mel, load_cache
from .fit import classroom_copies, classroom_val_windows, val_windows
from .loop import labels_of, sample_weights, soft_targets, train_loop, validate
from .metrics import both_conditions, clip_means
from .recipe import Recipe

log = logging.getLogger("fit")

# the trial recipe: lr for fine-tuning a pretrained network (EfficientAT fine-tunes at ~1e-4..1e-3)
MOBILENET_RECIPE = Recipe("cnn2d", lr=1e-3, batch=32, epochs=40, patience=15, augment=0.7)
EVAL_BATCH = 128


def fit_mobilenet(rows, mels, recipe: Recipe, teacher: torch.Tensor | None = None, cdir: Path | None = None,
                  weights: str | None = None):
    """Efficientat2d fine-tuned end to end on random log-mel windows -> (model, train_loop result).
    `teacher` (n_rows, C): clip probabilities to distil from (recipe.distill); with recipe.classroom copies
    (read from `cdir`) a window comes from a classroom copy with chance recipe.classroom_share and the checkpoint
    is chosen on the mean of clean and classroom validation scores."""
    torch.manual_seed(recipe.seed)
    cfg = dataclasses.replace(Efficientat2dConfig(), **dict(recipe.arch))
    model = Efficientat2d(cfg, len(LABELS), pretrained=True, weights=weights)
    train_idx = [i for i, r in enumerate(rows) if r["split"] == "train"]
    train = [rows[i] for i in train_idx]
    val = [r for r in rows if r["split"] == "val"]
    train_mels = [clip_mel(mels, r) for r in train]
    y_train = soft_targets(labels_of(train), None if teacher is None else teacher[train_idx], recipe.distill)
    weights_ = torch.from_numpy(sample_weights(train, recipe.dataset_power))
    vw, owners = val_windows(val, mels)
    val_sets = [(vw, owners, val)]
    copies = {}
    if recipe.classroom:
        by_row = classroom_copies(cdir, recipe.classroom, rows)
        copies = {j: by_row[i] for j, i in enumerate(train_idx) if i in by_row}
        val_sets.append(classroom_val_windows(cdir, rows))
    aug = None

    def source(j: int, gen) -> torch.Tensor:
        if j in copies and torch.rand((), generator=gen) < recipe.classroom_share:
            return copies[j][int(torch.randint(0, len(copies[j]), (), generator=gen))]
        return train_mels[j]

    def step(gen):
        nonlocal aug
        aug = aug or Augmenter(gen, strength=recipe.augment)
        idx = torch.multinomial(weights_, recipe.batch, replacement=True, generator=gen)
        return aug(torch.stack([random_window(source(j, gen), gen) for j in idx.tolist()])), y_train[idx]

    def evaluate():
        metrics = []
        for v_in, v_owners, v_rows in val_sets:
            probs = torch.cat([torch.softmax(model(v_in[s : s + EVAL_BATCH]), -1)
                               for s in range(0, len(v_in), EVAL_BATCH)]).numpy()
            metrics.append(validate(clip_means(probs, v_owners, len(v_rows)), v_rows))
        return metrics[0] if len(metrics) == 1 else both_conditions(*metrics)

    return model, train_loop(model, model.parameters(), step, evaluate, recipe, recipe.seed, "cnn2d-mn04")


def time_model(weights: str | None = None, batch: int = 32, steps: int = 5) -> dict:
    """Median seconds per training step (forward + backward + AdamW on `batch` random windows) and ms per window
    of inference, one window at a time, on this machine's threads."""
    model = Efficientat2d(Efficientat2dConfig(), len(LABELS), weights=weights)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, DEFAULT_FEATURES.n_mels, DEFAULT_FEATURES.window_frames) - 8
    y = torch.randint(0, len(LABELS), (batch,))
    model.train()
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    model.eval()
    inf = []
    with torch.inference_mode():
        for i in range(steps * 4 + 1):
            t0 = time.perf_counter()
            model(x[i % batch : i % batch + 1])
            inf.append(time.perf_counter() - t0)
    step_s = float(sorted(times[1:])[len(times[1:]) // 2])
    return {"threads": torch.get_num_threads(), "batch": batch, "train_step_s": step_s, "epoch_100_steps_s": 100 * step_s,
            "inference_ms_per_window": 1000 * float(sorted(inf[1:])[len(inf[1:]) // 2])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Fine-tune the EfficientAT mn04 2D family (trial / timing).")
    ap.add_argument("--cache")
    ap.add_argument("--efficientat", help="pretrained mn04 state dict (else $EMOTION_EFFICIENTAT, else ../shared)")
    ap.add_argument("--epochs", type=int, default=MOBILENET_RECIPE.epochs)
    ap.add_argument("--steps", type=int, default=MOBILENET_RECIPE.steps)
    ap.add_argument("--lr", type=float, default=MOBILENET_RECIPE.lr)
    ap.add_argument("--out", help="directory for cnn2d.pt (none: no checkpoint)")
    ap.add_argument("--time", action="store_true", help="only measure step and inference time")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    if args.time:
        print(json.dumps(time_model(args.efficientat)))
        return 0
    recipe = dataclasses.replace(MOBILENET_RECIPE, epochs=args.epochs, steps=args.steps, lr=args.lr)
    rows, mels = load_cache(cache_dir(args.cache))
    model, result = fit_mobilenet(rows, mels, recipe, None, None, args.efficientat)
    print(json.dumps({"val_cb_uar": result["val"]["corpus_balanced_uar"], "best_epoch": result["best_epoch"],
                      "history": result["history"]}))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(out / "cnn2d.pt", model, DEFAULT_FEATURES, LABELS,
                        {"recipe": dataclasses.asdict(recipe), **{k: v for k, v in result.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
