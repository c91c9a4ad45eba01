"""The teacher of the distilled families: the trained Whisper family, read on the clean cached Whisper
windows of the training clips (train whisper first; its trunk cache supplies them: whisper_0)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from emotion_core.models.base import load_checkpoint

from .metrics import clip_means

BATCH = 512  # windows per teacher forward pass
log = logging.getLogger("fit")


def teacher_on_training_windows(rows, cdir: Path, teacher_path: Path):
    """The trained Whisper family and its input on the training clips: (family, cached clean windows of
    the training clips (N, 7, 1024) float, owner row index (N,))."""
    family, _meta = load_checkpoint(teacher_path)
    name = "whisper_0"  # the clean copy of the cache its recipe trained on
    owners = np.load(cdir / f"{name}_owner.npy")
    is_train = np.array([rows[o]["split"] == "train" for o in owners])
    feats = torch.from_numpy(np.load(cdir / f"{name}.npy")[is_train])  # float16; batches become float when read
    return family, feats, owners[is_train]


def teacher_targets(rows, cdir: Path, teacher_path: Path) -> torch.Tensor:
    """Clip probabilities (n_rows, n_labels) of the Whisper family on the clean cached windows:
    soft targets for distillation, computed for training clips only (other rows stay zero)."""
    family, feats, owners = teacher_on_training_windows(rows, cdir, teacher_path)
    with torch.inference_mode():
        probs = torch.cat(
            [torch.softmax(family(feats[s : s + BATCH].float()), -1) for s in range(0, len(feats), BATCH)]
        ).numpy()
    return torch.from_numpy(clip_means(probs, owners, len(rows))).float()


def teacher_embeddings(rows, cdir: Path, teacher_path: Path, kind: str, dim: int = 128) -> torch.Tensor:
    """Per-clip hint targets (n_rows, dim) from the Whisper family on the clean cached windows of the
    training clips (other rows stay zero): "states" = the layer mixture the heads read (WhisperHead.embed,
    mean over members), "head" = the members' hidden activations (WhisperHead.hidden) side by side.
    Standardised, projected on their top `dim` principal components (fitted on the training clips) and
    scaled to unit mean variance per component."""
    family, feats, owners = teacher_on_training_windows(rows, cdir, teacher_path)
    with torch.inference_mode():
        parts = []
        for s in range(0, len(feats), BATCH):
            batch = feats[s : s + BATCH].float()
            if kind == "states":
                parts.append(torch.stack([h.embed(batch) for h in family.heads]).mean(0))
            else:
                parts.append(torch.cat([h.hidden(batch) for h in family.heads], dim=1))
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
    digest = hashlib.sha256(teacher_path.read_bytes()).hexdigest()
    return f"{teacher_path.name} sha256 {digest[:16]} (soft targets on the training clips only)"
