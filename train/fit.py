"""Train one family on the training speakers; select on the validation speakers; never look at test.

    python -m train.fit --family cnn1d --data DIR          # also: lstm, cnn2d, whisper
    python -m train.fit --family cnn2d                     # --variant compare (default): frozen vs fine-tuned, keep the better

Balancing: each training step draws a batch with replacement, weighted so that every (dataset, label)
cell of a dataset has equal mass and each dataset's mass is proportional to the square root of its
clip count, --dataset-power 0.5 (CREMA-D is 61% of the clips and would otherwise drown the others; TESS is
one speaker saying one carrier phrase and should not weigh as much as 55 CREMA-D speakers).

Two ways to train:
- cnn1d, lstm: end to end from the log-mel cache; each window gets a fresh random crop, speed
  perturbation and the acoustic augmentations of train.augment.
- cnn2d, whisper: the expensive frozen part runs once per window into a cache (clean windows of every clip,
  plus COPIES augmented windows of each training clip); the trainable part trains on the cache. The Whisper
  family is a bag of WHISPER_MEMBERS heads, one per seed.
With --distill (cnn1d, lstm, cnn2d) each training clip's target mixes its smoothed label with the trained
Whisper family's probabilities for that clip, the teacher's share set by --distill-weight (so train whisper
first; its clean trunk cache supplies them).
With --hint (cnn1d, lstm) a second target joins: a linear map of the model's pooled embedding learns to predict
the Whisper family's representation of each training clip (representation distillation; the map is dropped
after training).
Model selection: early stopping on the validation corpus-balanced UAR (mean over datasets of per-dataset UAR).

Experiments (none of them shipped; see the README): --ema keeps a moving average of the weights, --mixup
mixes cached windows (cnn2d), --dataset-power changes the balance above, --arch changes cnn1d/lstm
architecture fields. With --out elsewhere than checkpoints/, the log goes beside the checkpoint and
--teacher names the Whisper checkpoint, e.g.
    python -m train.fit --family lstm --out /tmp/x --teacher checkpoints/whisper.pt --distill --ema 0.998
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from corpus import splits_hash
from emotion_core.features import DEFAULT_FEATURES, frame_features, windows
from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.models.base import save_checkpoint
from emotion_core.paths import DEFAULT_CHECKPOINT_DIR, checkpoint_dir, data_dir, whisper_source

from .augment import Augmenter, random_window
from .cache import build_mels, cache_dir, clip_mel, load_cache
from .metrics import evaluate_predictions

CONFIG = {  # per family: optimisation settings
    "cnn1d": dict(lr=2e-3, weight_decay=1e-2, batch=32, epochs=80, steps=100, patience=40, augment=0.7),
    "lstm": dict(lr=1.5e-3, weight_decay=1e-2, batch=32, epochs=80, steps=100, patience=40, augment=0.7),
    "cnn2d": dict(lr=5e-4, weight_decay=1e-2, batch=64, epochs=20, steps=100, patience=20),
    "whisper": dict(lr=1e-3, weight_decay=1e-2, batch=128, epochs=60, steps=100, patience=10),
}
LABEL_SMOOTHING = 0.1
DATASET_POWER = 0.5  # a dataset's share of each batch ~ its clip count ** this (0.5: sqrt; 0: equal)
DISTILL = 0.5  # weight of the Whisper teacher's soft targets with --distill
COPIES = {"cnn2d": 1, "whisper": 1}  # augmented copies per training clip in the trunk caches (CPU budget)
HINT_DIM = 128  # --hint: components of the teacher representation a student learns to predict
HINT_WEIGHT = 1.0  # --hint: weight of the representation loss beside the classification loss
WHISPER_MEMBERS = 5  # the Whisper family is a bag of heads trained from seeds seed .. seed + 4
ARCH: dict = {}  # --arch overrides of the family's architecture dataclass (cnn1d, lstm)
log = logging.getLogger("fit")


def sample_weights(rows) -> np.ndarray:
    """Per-clip sampling weight: classes equal within a dataset, datasets by clip count ** DATASET_POWER."""
    from collections import Counter

    cells = Counter((r["dataset"], r["label"]) for r in rows)
    per_ds = Counter(r["dataset"] for r in rows)
    n_labels = Counter(ds for ds, _ in cells)
    ds_mass = {d: n**DATASET_POWER for d, n in per_ds.items()}
    total = sum(ds_mass.values())
    w = np.array([ds_mass[r["dataset"]] / total / n_labels[r["dataset"]] / cells[(r["dataset"], r["label"])] for r in rows])
    return w / w.sum()


def labels_of(rows) -> torch.Tensor:
    return torch.tensor([LABEL_INDEX[r["label"]] for r in rows])


def validate(clip_probs: np.ndarray, rows) -> dict:
    y = [LABEL_INDEX[r["label"]] for r in rows]
    return evaluate_predictions(y, clip_probs.argmax(1), [r["dataset"] for r in rows], len(LABELS))


def clip_means(window_probs: np.ndarray, owners: np.ndarray, n_clips: int) -> np.ndarray:
    """Mean of window probabilities per clip: (N, C) with owner index per row -> (n_clips, C)."""
    out = np.zeros((n_clips, window_probs.shape[1]))
    np.add.at(out, owners, window_probs)
    return out / np.maximum(np.bincount(owners, minlength=n_clips), 1)[:, None]


def val_windows(rows, mels):
    """Every window of every validation clip, as inference makes them."""
    items, owners = [], []
    for i, r in enumerate(rows):
        w, _ = windows(clip_mel(mels, r), DEFAULT_FEATURES)
        items.append(w)
        owners.extend([i] * len(w))
    return torch.cat(items), np.array(owners)


def classification_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against integer labels (with label smoothing) or probability targets (distillation, mixup)."""
    smoothing = LABEL_SMOOTHING if y.dtype == torch.long else 0.0  # probability targets are smooth already
    return nn.functional.cross_entropy(logits, y, label_smoothing=smoothing)


def train_loop(model, params, step_fn, eval_fn, hp, seed, desc, objective=None):
    """Generic loop: AdamW + cosine schedule, early stopping on validation corpus-balanced UAR.
    `objective(x, y) -> loss` replaces the default cross-entropy of model(x) against y."""
    opt = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
    total = hp["epochs"] * hp["steps"]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp["lr"], total_steps=total, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    decay = hp.get("ema") or 0.0  # weight averaging: validate and keep the exponential moving average
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()} if decay else None
    best, best_state, best_epoch, history = -1.0, None, -1, []
    for epoch in range(hp["epochs"]):
        model.train()
        t0, losses = time.time(), []
        for _ in tqdm(range(hp["steps"]), desc=f"{desc} epoch {epoch}", leave=False, mininterval=10):
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
        elif epoch - best_epoch >= hp["patience"]:
            log.info("%s early stop at epoch %d (best %d)", desc, epoch, best_epoch)
            break
        if live is not None:
            model.load_state_dict(live)
    model.load_state_dict(best_state)
    model.eval()
    return {"best_epoch": best_epoch, "val": best_metrics, "history": history,
            "epoch_s": float(np.median([h["epoch_s"] for h in history]))}


# --- end-to-end families ------------------------------------------------------------------------
def teacher_on_training_windows(rows, cdir: Path, teacher_path: Path):
    """The trained Whisper family and its input on the training clips: (family, cached clean windows of
    the training clips (N, 7, 1024) float, owner row index (N,))."""
    from emotion_core.models.base import load_checkpoint

    family, _meta = load_checkpoint(teacher_path)
    owners = np.load(cdir / "whisper_0_owner.npy")
    is_train = np.array([rows[o]["split"] == "train" for o in owners])
    feats = torch.from_numpy(np.load(cdir / "whisper_0.npy")[is_train]).float()
    return family, feats, owners[is_train]


def teacher_targets(rows, cdir: Path, teacher_path: Path) -> torch.Tensor:
    """Clip probabilities (n_rows, n_labels) of the shipped Whisper family on the clean cached windows:
    soft targets for distillation, computed for training clips only (other rows stay zero)."""
    head, feats, owners = teacher_on_training_windows(rows, cdir, teacher_path)
    with torch.inference_mode():
        probs = torch.cat([torch.softmax(head(feats[s : s + 512]), -1) for s in range(0, len(feats), 512)]).numpy()
    return torch.from_numpy(clip_means(probs, owners, len(rows))).float()


def teacher_embeddings(rows, cdir: Path, teacher_path: Path, kind: str, dim: int = HINT_DIM) -> torch.Tensor:
    """Per-clip hint targets (n_rows, dim) from the Whisper family on the clean cached windows of the
    training clips (other rows stay zero): "states" = the layer mixture the heads read (mean over members),
    "head" = the members' hidden activations side by side. Standardised, projected on their top `dim`
    principal components (fitted on the training clips) and scaled to unit mean variance per component."""
    family, feats, owners = teacher_on_training_windows(rows, cdir, teacher_path)

    def represent(head, stats):
        mixed = torch.einsum("l,bld->bd", torch.softmax(head.layer_weights, 0), head.norm(stats))
        return mixed if kind == "states" else head.classifier[:3](mixed)  # Dropout, Linear, GELU

    with torch.inference_mode():
        parts = []
        for s in range(0, len(feats), 512):
            reps = [represent(h, feats[s : s + 512]) for h in family.heads]
            parts.append(torch.stack(reps).mean(0) if kind == "states" else torch.cat(reps, dim=1))
    clip = clip_means(torch.cat(parts).numpy(), owners, len(rows))
    train_idx = np.unique(owners)
    z = clip[train_idx]
    z = (z - z.mean(0)) / (z.std(0) + 1e-6)
    _, sv, vt = np.linalg.svd(z, full_matrices=False)
    proj = z @ vt[:dim].T
    proj /= np.sqrt((proj**2).mean())
    out = np.zeros((len(rows), dim), dtype=np.float32)
    out[train_idx] = proj
    kept = (sv[:dim] ** 2).sum() / (sv**2).sum()
    log.info("hint targets (%s): %d dims keep %.0f%% of the variance", kind, dim, 100 * kept)
    return torch.from_numpy(out)


def teacher_identity(teacher_path: Path) -> str:
    """Which teacher a distilled family learnt from: the Whisper checkpoint's sha256 (training clips only)."""
    import hashlib

    digest = hashlib.sha256(teacher_path.read_bytes()).hexdigest()
    return f"{teacher_path.name} sha256 {digest[:16]} (soft targets on the training clips only)"


def fit_end_to_end(family, rows, mels, seed, teacher: torch.Tensor | None = None, hints: torch.Tensor | None = None):
    """cnn1d/lstm end to end. `hints` (n_rows, d): teacher representations that a linear map of the
    model's pooled embedding learns to predict (mean squared error, weight HINT_WEIGHT); the map is
    used in training only and is not part of the checkpoint."""
    from emotion_core.models.cnn1d import Cnn1d, Cnn1dConfig
    from emotion_core.models.lstm import Lstm, LstmConfig

    cls, cfg = {"cnn1d": (Cnn1d, Cnn1dConfig()), "lstm": (Lstm, LstmConfig())}[family]
    cfg = dataclasses.replace(cfg, **ARCH)
    torch.manual_seed(seed)
    model = cls(cfg, len(LABELS))
    hp = CONFIG[family]
    train_idx = [i for i, r in enumerate(rows) if r["split"] == "train"]
    train = [rows[i] for i in train_idx]
    val = [r for r in rows if r["split"] == "val"]
    train_mels = [clip_mel(mels, r) for r in train]
    y_train = soft_targets(labels_of(train), None if teacher is None else teacher[train_idx])
    weights = torch.from_numpy(sample_weights(train))
    vw, owners = val_windows(val, mels)
    v_in = frame_features(vw)
    aug = None

    def step(gen):
        nonlocal aug
        aug = aug or Augmenter(gen, strength=hp["augment"])
        idx = torch.multinomial(weights, hp["batch"], replacement=True, generator=gen)
        x = aug(torch.stack([random_window(train_mels[i], gen) for i in idx.tolist()]))
        return frame_features(x), (y_train[idx] if hints is None else (y_train[idx], h_train[idx]))

    def evaluate():
        probs = torch.cat([torch.softmax(model(v_in[s : s + 256]), -1) for s in range(0, len(v_in), 256)]).numpy()
        return validate(clip_means(probs, owners, len(val)), val)

    if hints is None:
        return model, train_loop(model, model.parameters(), step, evaluate, hp, seed, family)
    h_train = hints[train_idx]
    hint_map = nn.Linear(model.embed_dim, hints.shape[1])

    def objective(x, y):
        targets, h = y
        emb = model.embed(x)
        return classification_loss(model.head(emb), targets) + HINT_WEIGHT * nn.functional.mse_loss(hint_map(emb), h)

    params = list(model.parameters()) + list(hint_map.parameters())
    return model, train_loop(model, params, step, evaluate, hp, seed, family, objective)


# --- trunk-cached families ----------------------------------------------------------------------
def trunk_cache(out: Path, name: str, rows, mels, trunk, batch: int = 32):
    """Cached trunk outputs: copy 0 = every window of every clip (clean); copies 1.. = one augmented
    random window per training clip. Returns [(features float16 array, owner clip index array), ...]."""
    result = []
    for k in range(COPIES[name] + 1):
        path, own_path = out / f"{name}_{k}.npy", out / f"{name}_{k}_owner.npy"
        if not path.exists():
            gen = torch.Generator().manual_seed(1000 + k)
            aug = Augmenter(gen)
            items, owners = [], []
            for i, r in enumerate(rows):
                lm = clip_mel(mels, r)
                if k == 0:
                    w, _ = windows(lm)
                    items.extend(w)
                    owners.extend([i] * len(w))
                elif r["split"] == "train":
                    items.append(aug(random_window(lm, gen)[None])[0])
                    owners.append(i)
            feats = []
            with torch.inference_mode():
                for s in tqdm(range(0, len(items), batch), desc=f"{name} cache {k}", mininterval=10):
                    feats.append(trunk(torch.stack(items[s : s + batch])).to(torch.float16).numpy())
            np.save(path, np.concatenate(feats))
            np.save(own_path, np.array(owners, dtype=np.int32))
        result.append((np.load(path), np.load(own_path)))
    return result


def smoothed_one_hot(y: torch.Tensor) -> torch.Tensor:
    """Integer labels (N,) -> (N, C) one-hot targets with label smoothing."""
    return nn.functional.one_hot(y, len(LABELS)).float() * (1 - LABEL_SMOOTHING) + LABEL_SMOOTHING / len(LABELS)


def soft_targets(y: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
    """Integer labels (N,) -> training targets: the labels themselves, or with a teacher's clip
    probabilities (N, C) the mix (1 - DISTILL) * smoothed one-hot + DISTILL * teacher."""
    if teacher is None:
        return y
    return (1 - DISTILL) * smoothed_one_hot(y) + DISTILL * teacher


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


def fit_from_cache(rows, cached, head: nn.Module, params, hp, seed, desc, teacher: torch.Tensor | None = None):
    """Train `head` on cached trunk features; validation on the clean windows of validation clips.
    `teacher`: optional (n_rows, C) clip probabilities to distil from (see soft_targets)."""
    split = np.array([r["split"] for r in rows])
    y_all = labels_of(rows)
    clean, clean_own = cached[0]
    train_x = [clean[split[clean_own] == "train"]] + [x for x, _ in cached[1:]]
    train_own = np.concatenate([clean_own[split[clean_own] == "train"]] + [o for _, o in cached[1:]])
    train_x = torch.from_numpy(np.concatenate(train_x))
    train_idx = np.flatnonzero(split == "train")
    clip_w = np.zeros(len(rows))
    clip_w[train_idx] = sample_weights([rows[i] for i in train_idx])
    w = clip_w[train_own] / np.bincount(train_own, minlength=len(rows))[train_own]  # a clip's windows share its weight
    weights = torch.from_numpy(w / w.sum())
    y_train = soft_targets(y_all[train_own], None if teacher is None else teacher[train_own])

    def step(gen):
        idx = torch.multinomial(weights, hp["batch"], replacement=True, generator=gen)
        x, y = train_x[idx].float(), y_train[idx]
        if hp.get("mixup"):
            return mixup(x, y, hp["mixup"], gen)
        return x, y

    val = cached_val_set(rows, cached)
    return train_loop(head, params, step, lambda: validate_cached(head, val), hp, seed, desc)


def cached_val_set(rows, cached):
    """The cached clean windows of the validation clips: (windows, owner index into val rows, val rows)."""
    split = np.array([r["split"] for r in rows])
    clean, clean_own = cached[0]
    val_mask = split[clean_own] == "val"
    val_rows_idx = np.flatnonzero(split == "val")
    remap = {o: j for j, o in enumerate(val_rows_idx)}
    val_own = np.array([remap[o] for o in clean_own[val_mask]])
    return torch.from_numpy(clean[val_mask]), val_own, [rows[i] for i in val_rows_idx]


def validate_cached(head: nn.Module, val) -> dict:
    """Validation metrics of `head` on a cached_val_set (a clip's probabilities = mean of its windows)."""
    val_x, val_own, val_rows = val
    with torch.inference_mode():
        probs = torch.cat([torch.softmax(head(val_x[s : s + 256].float()), -1) for s in range(0, len(val_x), 256)]).numpy()
    return validate(clip_means(probs, val_own, len(val_rows)), val_rows)


def fit_whisper(rows, mels, seed, out: Path, source: str):
    from emotion_core.models.whisper import (WhisperFamily, WhisperHead, WhisperHeadConfig, encoder_fingerprint,
                                             encoder_probe, load_encoder, pooled_states)

    enc = load_encoder(source)
    cached = trunk_cache(out, "whisper", rows, mels, lambda w: pooled_states(enc, w))
    cfg = WhisperHeadConfig(encoder_name=source if not Path(source).exists() else "openai/whisper-base",
                            encoder_sha256=encoder_fingerprint(enc), encoder_probe=encoder_probe(enc))
    cfg.members = WHISPER_MEMBERS
    heads, members = [], []
    for i in range(WHISPER_MEMBERS):
        torch.manual_seed(seed + i)
        heads.append(WhisperHead(cfg, len(LABELS)))
        members.append(fit_from_cache(rows, cached, heads[-1], heads[-1].parameters(), CONFIG["whisper"], seed + i,
                                      f"whisper-{i}"))
        log.info("whisper member %d (seed %d): val cb-UAR %.4f", i, seed + i, members[-1]["val"]["corpus_balanced_uar"])
    family = WhisperFamily(cfg, len(LABELS))
    family.heads = nn.ModuleList(heads)
    family.eval()
    result = {"val": validate_cached(family, cached_val_set(rows, cached)),
              "members": [{"seed": seed + i, "val_cb_uar": m["val"]["corpus_balanced_uar"], "best_epoch": m["best_epoch"]}
                          for i, m in enumerate(members)],
              "best_epoch": [m["best_epoch"] for m in members],
              "epoch_s": float(np.median([m["epoch_s"] for m in members])),
              "history": [m["history"] for m in members],
              "encoder_source": source}
    log.info("whisper bag of %d: val cb-UAR %.4f", len(members), result["val"]["corpus_balanced_uar"])
    return family, result


class Cnn2dTop(nn.Module):
    """The part of Cnn2d above the cache point: backbone blocks [split:], conv head, pooling, classifier."""

    def __init__(self, model, split: int):
        super().__init__()
        self.model, self.split = model, split

    def features(self, x):
        """Cached stage output (B, C, h, w) -> pooled backbone features (B, 1280)."""
        bb = self.model.backbone
        for idx in range(self.split, len(bb._blocks)):
            rate = bb._global_params.drop_connect_rate
            x = bb._blocks[idx](x, drop_connect_rate=rate * idx / len(bb._blocks) if rate else None)
        return bb._swish(bb._bn1(bb._conv_head(x))).mean(dim=(2, 3))

    def forward(self, x):
        return self.model.head(self.features(x))


CNN2D_SPLIT = 11  # blocks 0..10 (up to the 112-channel stage, stride 16) stay frozen in both variants


def cnn2d_trunk(model):
    bb = model.backbone

    def trunk(w):
        x = bb._swish(bb._bn0(bb._conv_stem(model.image(w))))
        for idx in range(CNN2D_SPLIT):
            x = bb._blocks[idx](x)
        return x

    return trunk


def fit_cnn2d(rows, mels, seed, out: Path, variant: str, teacher: torch.Tensor | None = None):
    from emotion_core.models.cnn2d import Cnn2d, Cnn2dConfig

    torch.manual_seed(seed)
    model = Cnn2d(Cnn2dConfig(frozen=(variant == "frozen")), len(LABELS))
    # the input norm sits below the cache: set it from training windows once, then freeze it
    train = [r for r in rows if r["split"] == "train"]
    gen = torch.Generator().manual_seed(seed)
    sample = torch.stack([random_window(clip_mel(mels, train[i]), gen) for i in torch.randint(0, len(train), (512,), generator=gen)])
    model.input_norm.momentum = None  # cumulative average
    model.input_norm.train()
    with torch.no_grad():
        model.image(sample)
    model.eval()
    model.requires_grad_(False)
    cached = trunk_cache(out, "cnn2d", rows, mels, cnn2d_trunk(model))
    top = Cnn2dTop(model, CNN2D_SPLIT)
    hp = dict(CONFIG["cnn2d"])
    if variant == "frozen":
        # everything below the head is fixed: pool the backbone features once, train the head on them
        with torch.inference_mode():
            pooled = [(torch.cat([top.features(torch.from_numpy(x[s : s + 256]).float()) for s in range(0, len(x), 256)]).numpy(), o)
                      for x, o in cached]
        model.head.requires_grad_(True)
        hp.update(lr=2e-3, epochs=60, patience=60)
        result = fit_from_cache(rows, pooled, model.head, list(model.head.parameters()), hp, seed, "cnn2d-frozen",
                                teacher)
    else:
        bb = model.backbone
        tuned = list(bb._blocks[CNN2D_SPLIT:]) + [bb._conv_head, bb._bn1, model.head]
        for m in tuned:
            m.requires_grad_(True)
        fixed = [model.input_norm, bb._bn0] + list(bb._blocks[:CNN2D_SPLIT])

        class TopInTraining(nn.Module):
            def __init__(self):
                super().__init__()
                self.top = top

            def forward(self, x):
                return self.top(x)

            def train(self, mode=True):
                super().train(mode)
                for m in fixed:
                    m.eval()
                return self

        result = fit_from_cache(rows, cached, TopInTraining(), [p for m in tuned for p in m.parameters()], hp, seed,
                                "cnn2d-finetune", teacher)
    model.requires_grad_(False)
    model.eval()
    return model, result


# --- main ---------------------------------------------------------------------------------------
def main(argv=None) -> int:
    global DISTILL, DATASET_POWER, HINT_WEIGHT
    ap = argparse.ArgumentParser(description="Train one model family.")
    ap.add_argument("--family", required=True, choices=list(CONFIG))
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--cache", help="feature cache directory (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--out", help="checkpoint directory (default $EMOTION_CHECKPOINTS or ./checkpoints)")
    ap.add_argument("--whisper", help="Whisper encoder: local directory or Hub id (default $EMOTION_WHISPER)")
    ap.add_argument("--variant", choices=["frozen", "finetune", "compare"], default="compare",
                    help="cnn2d only: frozen backbone, fine-tuned top stages, or both and keep the better on val")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, help="override the family's epoch budget")
    ap.add_argument("--copies", type=int, help="cnn2d/whisper: augmented copies per training clip in the trunk cache")
    ap.add_argument("--distill", action="store_true",
                    help="cnn1d/lstm/cnn2d: soft targets from the trained Whisper family on the training clips")
    ap.add_argument("--distill-weight", type=float, default=DISTILL,
                    help=f"with --distill: the teacher's share of each target (default {DISTILL})")
    ap.add_argument("--ema", type=float, help="validate and keep an exponential moving average of the weights "
                    "with this decay per step (e.g. 0.998)")
    ap.add_argument("--teacher", help="with --distill: the Whisper checkpoint (default: whisper.pt in the output directory)")
    ap.add_argument("--dataset-power", type=float, default=DATASET_POWER,
                    help=f"a dataset's share of each batch ~ clips ** this (default {DATASET_POWER}: sqrt; 0: equal)")
    ap.add_argument("--mixup", type=float, help="cnn2d/whisper: mixup of cached training windows, Beta(a, a)")
    ap.add_argument("--arch", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="cnn1d/lstm: override architecture fields, e.g. channels=160 dilations=1,2,4,8")
    ap.add_argument("--hint", choices=["states", "head"], help="cnn1d/lstm: also learn to predict the Whisper "
                    "family's representation of each training clip (states: its layer mixture; head: its hidden layer)")
    ap.add_argument("--hint-weight", type=float, default=HINT_WEIGHT, help=f"with --hint (default {HINT_WEIGHT})")
    args = ap.parse_args(argv)
    for item in args.arch:
        key, value = item.split("=", 1)
        ARCH[key] = tuple(int(v) for v in value.split(",")) if "," in value else json.loads(value)
    if args.mixup:
        CONFIG[args.family]["mixup"] = args.mixup
    if args.ema:
        CONFIG[args.family]["ema"] = args.ema
    if args.epochs:
        CONFIG[args.family]["epochs"] = args.epochs
    if args.copies is not None:
        COPIES[args.family] = args.copies
    DISTILL, DATASET_POWER, HINT_WEIGHT = args.distill_weight, args.dataset_power, args.hint_weight
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out_dir = checkpoint_dir(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the shipped checkpoints' logs live in train/logs/; an experiment's log goes beside its checkpoint
    shipped = out_dir.resolve() == DEFAULT_CHECKPOINT_DIR.resolve()
    logs = Path(__file__).resolve().parent / "logs" if shipped else out_dir
    logs.mkdir(exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.FileHandler(logs / f"{args.family}.log", mode="w"), logging.StreamHandler()])
    cdir = cache_dir(args.cache)
    root = data_dir(args.data)
    if not (cdir / "mels.npy").exists():
        build_mels(root, cdir)
    rows, mels = load_cache(cdir)
    log.info("family %s seed %d: %d clips (%s)", args.family, args.seed, len(rows),
             {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")})
    t0 = time.time()
    teacher_path = Path(args.teacher) if args.teacher else out_dir / "whisper.pt"
    teacher = teacher_targets(rows, cdir, teacher_path) if args.distill and args.family != "whisper" else None
    if args.family in ("cnn1d", "lstm"):
        hints = teacher_embeddings(rows, cdir, teacher_path, args.hint) if args.hint else None
        model, result = fit_end_to_end(args.family, rows, mels, args.seed, teacher, hints)
    elif args.family == "whisper":
        model, result = fit_whisper(rows, mels, args.seed, cdir, whisper_source(args.whisper))
    else:
        variants = ["frozen", "finetune"] if args.variant == "compare" else [args.variant]
        results = {}
        for v in variants:
            m, r = fit_cnn2d(rows, mels, args.seed, cdir, v, teacher)
            results[v] = (m, r)
            log.info("cnn2d %s: val cb-UAR %.3f", v, r["val"]["corpus_balanced_uar"])
        chosen = max(results, key=lambda v: results[v][1]["val"]["corpus_balanced_uar"])
        model, result = results[chosen]
        result["variants"] = {v: {"val_cb_uar": r["val"]["corpus_balanced_uar"], "best_epoch": r["best_epoch"],
                                  "epoch_s": r["epoch_s"]} for v, (_, r) in results.items()}
        result["chosen_variant"] = chosen
        log.info("cnn2d keeps %s", chosen)
    record = {
        "seed": args.seed,
        "train_seconds": time.time() - t0,
        "data_fingerprint": (cdir / "fingerprint.txt").read_text().strip(),
        "splits_sha256": splits_hash(),
        "balancing": "batches drawn with replacement; classes equal within a dataset, datasets by "
                     + ("sqrt(clips)" if DATASET_POWER == 0.5 else f"clips ** {DATASET_POWER}"),
        "hyperparameters": CONFIG[args.family],
        "augmented_copies": COPIES.get(args.family),
        "distilled_from": teacher_identity(teacher_path) if teacher is not None else None,
        "distill_weight": DISTILL if teacher is not None else None,
        "hint": {"kind": args.hint, "dims": HINT_DIM, "weight": HINT_WEIGHT} if args.hint else None,
        **{k: v for k, v in result.items() if k != "history"},
        "history": result["history"],
    }
    path = out_dir / f"{args.family}.pt"
    save_checkpoint(path, model, DEFAULT_FEATURES, LABELS, record)
    log.info("saved %s (%.1f MB); val cb-UAR %.3f", path, path.stat().st_size / 1e6, result["val"]["corpus_balanced_uar"])
    print(json.dumps({"family": args.family, "val_cb_uar": result["val"]["corpus_balanced_uar"],
                      "val_per_dataset": {d: m["uar"] for d, m in result["val"]["per_dataset"].items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
