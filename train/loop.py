"""The training loop and what it trains on: balanced sampling, targets (labels, distillation), the loss."""

from __future__ import annotations

import copy
import logging
import time
from collections import Counter

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from emotion_core.labels import LABEL_INDEX, LABELS

from .recipe import Recipe

LABEL_SMOOTHING = 0.1
log = logging.getLogger("fit")


def sample_weights(rows, dataset_power: float = 0.5) -> np.ndarray:
    """Per-clip sampling weight (n_rows,), summing to 1: classes equal within a dataset, each dataset's
    mass ~ its clip count ** dataset_power."""
    cells = Counter((r["dataset"], r["label"]) for r in rows)
    per_ds = Counter(r["dataset"] for r in rows)
    n_labels = Counter(ds for ds, _ in cells)
    ds_mass = {d: n**dataset_power for d, n in per_ds.items()}
    total = sum(ds_mass.values())
    w = np.array(
        [ds_mass[r["dataset"]] / total / n_labels[r["dataset"]] / cells[(r["dataset"], r["label"])] for r in rows]
    )
    return w / w.sum()


def labels_of(rows) -> torch.Tensor:
    return torch.tensor([LABEL_INDEX[r["label"]] for r in rows])


def classification_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against integer labels (with label smoothing) or probability targets (distillation)."""
    smoothing = LABEL_SMOOTHING if y.dtype == torch.long else 0.0  # probability targets are smooth already
    return nn.functional.cross_entropy(logits, y, label_smoothing=smoothing)


def smoothed_one_hot(y: torch.Tensor) -> torch.Tensor:
    """Integer labels (N,) -> (N, C) one-hot targets with label smoothing."""
    return nn.functional.one_hot(y, len(LABELS)).float() * (1 - LABEL_SMOOTHING) + LABEL_SMOOTHING / len(LABELS)


def soft_targets(y: torch.Tensor, teacher: torch.Tensor | None, weight: float) -> torch.Tensor:
    """Integer labels (N,) -> training targets: the labels themselves, or with a teacher's clip
    probabilities (N, C) the mix (1 - weight) * smoothed one-hot + weight * teacher."""
    if teacher is None:
        return y
    return (1 - weight) * smoothed_one_hot(y) + weight * teacher


def train_loop(model, params, step_fn, eval_fn, recipe: Recipe, seed, desc, objective=None):
    """Generic loop: AdamW + cosine schedule, early stopping on validation corpus-balanced UAR.
    `params`: parameters, or parameter groups with their own peak "lr" (else recipe.lr). Reads recipe.lr,
    weight_decay, epochs, steps, patience; `step_fn(gen) -> (x, y)` draws a batch, `eval_fn() -> metrics`
    validates, `objective(x, y) -> loss` replaces the default cross-entropy of model(x) against y."""
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    total = recipe.epochs * recipe.steps
    peaks = [g["lr"] for g in opt.param_groups]  # parameter groups may carry their own peak learning rate
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peaks, total_steps=total, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch, history = -1.0, None, -1, []
    for epoch in range(recipe.epochs):
        model.train()
        t0, losses = time.time(), []
        for _ in tqdm(range(recipe.steps), desc=f"{desc} epoch {epoch}", leave=False, mininterval=10):
            x, y = step_fn(gen)
            loss = objective(x, y) if objective else classification_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        epoch_s = time.time() - t0
        model.eval()
        with torch.inference_mode():
            metrics = eval_fn()
        score = metrics["corpus_balanced_uar"]
        history.append(
            {
                "epoch": epoch,
                "loss": float(np.mean(losses)),
                "val_cb_uar": score,
                "val_accuracy": metrics["overall"]["accuracy"],
                "epoch_s": epoch_s,
            }
        )
        log.info(
            "%s epoch %d loss %.3f val cb-UAR %.3f acc %.3f (%.0f s)",
            desc,
            epoch,
            np.mean(losses),
            score,
            metrics["overall"]["accuracy"],
            epoch_s,
        )
        if score > best:
            best, best_state, best_epoch, best_metrics = score, copy.deepcopy(model.state_dict()), epoch, metrics
        elif epoch - best_epoch >= recipe.patience:
            log.info("%s early stop at epoch %d (best %d)", desc, epoch, best_epoch)
            break
    model.load_state_dict(best_state)
    model.eval()
    return {
        "best_epoch": best_epoch,
        "val": best_metrics,
        "history": history,
        "epoch_s": float(np.median([h["epoch_s"] for h in history])),
    }
