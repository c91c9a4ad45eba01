"""Trunk-cached training (the Whisper family): the expensive frozen encoder runs once per window into a cache,
the trainable part trains on the cache and validates on the cached clean windows of the validation clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from emotion_core.features import windows

from .augment import Augmenter, random_window
from .cache import clip_mel
from .loop import labels_of, sample_weights, soft_targets, train_loop
from .metrics import clip_means
from .recipe import Recipe
from .validation import validation_scores

CACHE_SEED = 1000  # copy k of a trunk cache draws its windows and augmentations from seed CACHE_SEED + k
# copy k of a simulated condition draws its windows from seed COPY_SEEDS[condition] + k
COPY_SEEDS = {"classroom": 2000, "young": 3000, "young+classroom": 4000}


def trunk_cache(out: Path, name: str, rows, mels, trunk, copies: int, augment: float = 1.0, batch: int = 32):
    """Cached trunk outputs, built on first use as out/<name>_<k>.npy (+ _owner.npy): copy 0 = every window of every
    training and validation clip (clean; training never reads the test clips); copies 1..copies = one augmented random
    window per training clip (augmentation strength `augment`). Returns [(features float16 array, owner clip index
    array), ...]."""
    result = []
    for k in range(copies + 1):
        path, own_path = out / f"{name}_{k}.npy", out / f"{name}_{k}_owner.npy"
        if not path.exists():
            gen = torch.Generator().manual_seed(CACHE_SEED + k)
            aug = Augmenter(gen, strength=augment)
            items, owners = [], []
            for i, r in enumerate(rows):
                if r["split"] not in ("train", "val"):
                    continue
                lm = clip_mel(mels, r)
                if k == 0:
                    w, _ = windows(lm)
                    items.extend(w)
                    owners.extend([i] * len(w))
                elif r["split"] == "train":
                    items.append(aug(random_window(lm, gen)[None])[0])
                    owners.append(i)
            np.save(path, _run_trunk(trunk, items, f"{name} cache {k}", batch))
            np.save(own_path, np.array(owners, dtype=np.int32))
        result.append((np.load(path), np.load(own_path)))
    return result


def _run_trunk(trunk, items: list, desc: str, batch: int = 32) -> np.ndarray:
    """Windows [(80, frames)] -> float16 trunk outputs (N, ...), in batches."""
    feats = []
    with torch.inference_mode():
        for s in tqdm(range(0, len(items), batch), desc=desc, mininterval=10):
            feats.append(trunk(torch.stack(items[s : s + batch])).to(torch.float16).numpy())
    return np.concatenate(feats)


def simulated_trunk_cache(out: Path, name: str, trunk, condition: str, copies: int):
    """Trunk outputs of the simulated copies of the training clips (train.copies), built on first use as
    out/<name>_<stem>_<k>.npy (+ _owner.npy), stem = train.copies.copy_stem(condition, "train"): one random
    window of each training clip's copy k, for k < copies. Returns [(features float16 array, owner row index
    into clips.csv array), ...]: more training copies, in the layout of trunk_cache's."""
    from .copies import copy_stem, load_copy

    stem = copy_stem(condition, "train")
    result = []
    for k in range(copies):
        path, own_path = out / f"{name}_{stem}_{k}.npy", out / f"{name}_{stem}_{k}_owner.npy"
        if not path.exists():
            crows, cmels = load_copy(out, "train", k, condition)
            gen = torch.Generator().manual_seed(COPY_SEEDS[condition] + k)
            items = [random_window(clip_mel(cmels, r), gen, p_speed=0.0) for r in crows]  # speed is in the copy
            np.save(path, _run_trunk(trunk, items, f"{name} {condition} cache {k}"))
            np.save(own_path, np.array([r["row"] for r in crows], dtype=np.int32))
        result.append((np.load(path), np.load(own_path)))
    return result


def simulated_val_set(out: Path, name: str, rows, trunk, condition: str):
    """The validation clips' copy 0 under a simulated condition (the clips `train.evaluate --condition C`
    sees), every window through the trunk, cached as out/<name>_<stem>.npy with stem =
    train.copies.copy_stem(condition, "val"): (windows, owner index into the val rows, val rows) like
    cached_val_set."""
    from .copies import copy_stem, load_copy

    crows, cmels = load_copy(out, "val", 0, condition)
    stem = copy_stem(condition, "val")
    path, own_path = out / f"{name}_{stem}.npy", out / f"{name}_{stem}_owner.npy"
    if not path.exists():
        items, owners = [], []
        for j, r in enumerate(crows):
            w, _ = windows(clip_mel(cmels, r))
            items.extend(w)
            owners.extend([j] * len(w))
        np.save(path, _run_trunk(trunk, items, f"{name} {condition} val"))
        np.save(own_path, np.array(owners, dtype=np.int32))
    return torch.from_numpy(np.load(path)), np.load(own_path), [rows[r["row"]] for r in crows]


def validate_conditions(head: nn.Module, val_sets: dict) -> dict:
    """Metrics of `head` on cached validation sets {condition: set}, clean first (train.metrics.conditions_mean:
    the selection score is the mean over the conditions)."""
    return validation_scores({c: cached_clip_probs(head, v) for c, v in val_sets.items()}, val_sets["clean"][2])


def fit_from_cache(
    rows,
    cached,
    head: nn.Module,
    params,
    recipe: Recipe,
    seed,
    desc,
    teacher: torch.Tensor | None = None,
    val_sets: dict | None = None,
):
    """Train `head` on cached trunk features (cached[0]'s training windows and every further copy); validation on
    the clean windows of validation clips, or on `val_sets` (see validate_conditions).
    `teacher`: optional (n_rows, C) clip probabilities to distil from, with weight recipe.distill."""
    split = np.array([r["split"] for r in rows])
    y_all = labels_of(rows)
    clean, clean_own = cached[0]
    train_x = [clean[split[clean_own] == "train"]] + [x for x, _ in cached[1:]]
    train_own = np.concatenate([clean_own[split[clean_own] == "train"]] + [o for _, o in cached[1:]])
    train_x = torch.from_numpy(np.concatenate(train_x))
    train_idx = np.flatnonzero(split == "train")
    clip_w = np.zeros(len(rows))
    clip_w[train_idx] = sample_weights([rows[i] for i in train_idx], recipe.dataset_power)
    w = clip_w[train_own] / np.bincount(train_own, minlength=len(rows))[train_own]  # a clip's windows share its weight
    weights = torch.from_numpy(w / w.sum())
    y_train = soft_targets(y_all[train_own], None if teacher is None else teacher[train_own], recipe.distill)

    def step(gen):
        idx = torch.multinomial(weights, recipe.batch, replacement=True, generator=gen)
        return train_x[idx].float(), y_train[idx]

    val_sets = val_sets or {"clean": cached_val_set(rows, cached)}
    return train_loop(head, params, step, lambda: validate_conditions(head, val_sets), recipe, seed, desc)


def cached_val_set(rows, cached):
    """The cached clean windows of the validation clips: (windows, owner index into val rows, val rows)."""
    split = np.array([r["split"] for r in rows])
    clean, clean_own = cached[0]
    val_mask = split[clean_own] == "val"
    val_rows_idx = np.flatnonzero(split == "val")
    remap = {o: j for j, o in enumerate(val_rows_idx)}
    val_own = np.array([remap[o] for o in clean_own[val_mask]])
    return torch.from_numpy(clean[val_mask]), val_own, [rows[i] for i in val_rows_idx]


def cached_clip_probs(head: nn.Module, val) -> np.ndarray:
    """Clip probabilities (n_val_rows, C) of `head` on a cached_val_set (a clip's: the mean of its windows')."""
    val_x, val_own, val_rows = val
    with torch.inference_mode():
        probs = torch.cat(
            [torch.softmax(head(val_x[s : s + 256].float()), -1) for s in range(0, len(val_x), 256)]
        ).numpy()
    return clip_means(probs, val_own, len(val_rows))
