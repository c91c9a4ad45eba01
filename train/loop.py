"""The training loop and what it trains on: balanced sampling, targets (labels, distillation, mixup), the loss."""
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

from .metrics import evaluate_predictions
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
    w = np.array([ds_mass[r["dataset"]] / total / n_labels[r["dataset"]] / cells[(r["dataset"], r["label"])] for r in rows])
    return w / w.sum()


def labels_of(rows) -> torch.Tensor:
    return torch.tensor([LABEL_INDEX[r["label"]] for r in rows])


def validate(clip_probs: np.ndarray, rows) -> dict:
    """Metrics (train.metrics.evaluate_predictions) of clip probabilities (n_rows, C) against the rows' labels."""
    y = [LABEL_INDEX[r["label"]] for r in rows]
    return evaluate_predictions(y, clip_probs.argmax(1), [r["dataset"] for r in rows], len(LABELS))


def classification_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against integer labels (with label smoothing) or probability targets (distillation, mixup)."""
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


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, gen: torch.Generator):
    """Mixup of a batch with a shuffled copy of itself: inputs (B, ...) and targets (labels (B,) or
    probabilities (B, C)) mixed with one weight per example drawn from Beta(alpha, alpha)."""
    if y.dtype == torch.long:
        y = smoothed_one_hot(y)
    lam = torch.from_numpy(np.random.default_rng(int(torch.randint(0, 2**31, (), generator=gen))).beta(alpha, alpha, len(x))).float()
    lam = torch.maximum(lam, 1 - lam)  # the first example dominates
    perm = torch.randperm(len(x), generator=gen)
    lx = lam.view(-1, *([1] * (x.dim() - 1)))
    return lx * x + (1 - lx) * x[perm], lam[:, None] * y + (1 - lam[:, None]) * y[perm]


def train_loop(model, params, step_fn, eval_fn, recipe: Recipe, seed, desc, objective=None):
    """Generic loop: AdamW + cosine schedule, early stopping on validation corpus-balanced UAR.
    `params`: parameters, or parameter groups with their own peak "lr" (else recipe.lr). Reads recipe.lr,
    weight_decay, epochs, steps, patience, ema; `step_fn(gen) -> (x, y)` draws a batch, `eval_fn() -> metrics` validates, `objective(x, y) -> loss` replaces the default cross-entropy of model(x)
    against y."""
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    total = recipe.epochs * recipe.steps
    peaks = [g["lr"] for g in opt.param_groups]  # parameter groups may carry their own peak learning rate
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peaks, total_steps=total, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    decay = recipe.ema  # weight averaging: validate and keep the exponential moving average
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()} if decay else None
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
            if ema is not None:
                with torch.no_grad():
                    for k, v in model.state_dict().items():
                        ema[k].lerp_(v, 1 - decay) if v.is_floating_point() else ema[k].copy_(v)
        epoch_s = time.time() - t0
        live = None
        if ema is not None:  # validate the averaged weights; training goes on from the live ones
            live = copy.deepcopy(model.state_dict())
            model.load_state_dict(ema)
        model.eval()
        with torch.inference_mode():
            metrics = eval_fn()
        score = metrics["corpus_balanced_uar"]
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_cb_uar": score,
                        "val_accuracy": metrics["overall"]["accuracy"], "epoch_s": epoch_s})
        log.info("%s epoch %d loss %.3f val cb-UAR %.3f acc %.3f (%.0f s)", desc, epoch, np.mean(losses), score,
                 metrics["overall"]["accuracy"], epoch_s)
        if score > best:
            best, best_state, best_epoch, best_metrics = score, copy.deepcopy(model.state_dict()), epoch, metrics
        elif epoch - best_epoch >= recipe.patience:
            log.info("%s early stop at epoch %d (best %d)", desc, epoch, best_epoch)
            break
        if live is not None:
            model.load_state_dict(live)
    model.load_state_dict(best_state)
    model.eval()
    return {"best_epoch": best_epoch, "val": best_metrics, "history": history,
            "epoch_s": float(np.median([h["epoch_s"] for h in history]))}
