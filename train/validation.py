"""The validation score: one definition, used by training (each epoch, and the checkpoint's record), by
train.ensemble (every family and every candidate mix), by train.calibration and, through the files those write,
by the page's headline.

A model's validation score is the mean, over the conditions it is judged on, of the corpus-balanced UAR of its
clip answers on the validation speakers (a clip's answer: the mean of its windows' probabilities). The
conditions are clean and the simulated ones whose validation copy 0 is in the cache (train.copies --split val):
training is judged on clean and the conditions it trained on; train.ensemble and train.calibration on every
condition cached. The windows are cut from the cached log-mels as the app cuts a clip (evenly spaced; corpus
clips are short enough that the app's VAD rarely changes them), and every condition holds the same clips.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from corpus.conditions import SIMULATED
from emotion_core.calibration import file_sha256
from emotion_core.features import DEFAULT_FEATURES, frame_features, windows
from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.models.base import load_checkpoint
from emotion_core.paths import whisper_source

from .cache import clip_mel, load_cache
from .copies import copy_files, load_copy
from .metrics import conditions_mean, evaluate_predictions

BATCH = 256  # validation windows per forward pass


class ValidationSet(NamedTuple):
    """One condition's validation windows: (W, n_mels, frames) log-mels, the index into `rows` of each window's
    clip (W,), and the validation clips (rows of clips.csv), the same clips in every condition."""

    windows: torch.Tensor
    owners: np.ndarray
    rows: list


def validation_sets(cdir: Path | None, conditions=None, cached=None) -> dict[str, ValidationSet]:
    """{condition: ValidationSet} for clean and every simulated validation copy 0 in the cache (or only those of
    `conditions`, which must be cached), restricted to the clips every condition holds; clean first. `cached`: the
    cache's (rows, mels) when already loaded (then cdir is read only for simulated copies)."""
    rows, mels = cached if cached is not None else load_cache(cdir)
    wanted = [
        c
        for c in SIMULATED
        if (conditions is None and copy_files(cdir, "val", 0, c)[0].exists())
        or (conditions is not None and c in conditions)
    ]
    sources = {"clean": ({i: rows[i] for i, r in enumerate(rows) if r["split"] == "val"}, mels)}
    for condition in wanted:
        crows, cmels = load_copy(cdir, "val", 0, condition)
        sources[condition] = ({r["row"]: r for r in crows}, cmels)
    common = sorted(set.intersection(*(set(by_row) for by_row, _ in sources.values())))
    out = {}
    for condition, (by_row, m) in sources.items():
        wins, owners = [], []
        for k, i in enumerate(common):
            w, _ = windows(clip_mel(m, by_row[i]), DEFAULT_FEATURES)
            wins.append(w)
            owners += [k] * len(w)
        out[condition] = ValidationSet(torch.cat(wins), np.array(owners), [rows[i] for i in common])
    return out


def window_logits(model, wins: torch.Tensor, encoder=None) -> torch.Tensor:
    """(W, n_mels, frames) log-mel windows -> (W, C) logits of one family (its own input derived as the app does)."""
    out = []
    with torch.inference_mode():
        for s in range(0, len(wins), BATCH):
            w = wins[s : s + BATCH]
            x = frame_features(w, DEFAULT_FEATURES) if model.input_kind == "frames" else w
            x = model.encoder_input(encoder, w) if model.needs_encoder else x
            out.append(model(x).float())
    return torch.cat(out)


def validation_logits(checkpoint: Path, sets: dict, cdir: Path | None = None, whisper: str | None = None) -> dict:
    """{condition: (W, C) window logits} of one checkpoint on validation sets {condition: ValidationSet},
    uncalibrated. Computed once per checkpoint (its sha256) and condition, and kept in cdir/val_logits/ when a cache
    directory is given: calibration, reliability, train.compare and train.ensemble read the same numbers, and the
    Whisper encoder runs over the validation windows once."""
    sha = file_sha256(checkpoint)[:16]
    out, model, encoder = {}, None, None
    for condition, v in sets.items():
        path = None
        if cdir is not None:
            path = Path(cdir) / "val_logits" / f"{sha}_{condition.replace('+', '_')}_{len(v.windows)}.npy"
            if path.exists():
                out[condition] = torch.from_numpy(np.load(path))
                continue
        if model is None:
            model, _meta = load_checkpoint(checkpoint)
            if model.needs_encoder:
                from emotion_core.models.whisper import load_encoder

                encoder = load_encoder(whisper_source(whisper))
        out[condition] = window_logits(model, v.windows, encoder)
        if path is not None:
            path.parent.mkdir(exist_ok=True)
            np.save(path, out[condition].numpy())
    return out


def calibrated_clip_probs(logits: torch.Tensor, owners: np.ndarray, n: int, temperature, bias) -> torch.Tensor:
    """(W, C) window logits -> (n, C) clip probabilities: the mean of softmax(z / T + b) over each clip's windows."""
    p = torch.softmax(logits / temperature + bias, dim=-1)
    own = torch.from_numpy(owners).long()
    sums = torch.zeros(n, p.shape[1], dtype=p.dtype).index_add_(0, own, p)
    return sums / torch.bincount(own, minlength=n).clamp(min=1)[:, None]


def clip_probabilities(logits: dict, sets: dict, temperature: float = 1.0, bias=None) -> dict[str, np.ndarray]:
    """{condition: (W, C) window logits} -> {condition: (n_clips, C)}: each clip's mean of softmax(z / T + b) over its
    windows (T 1 and b 0: uncalibrated), as the app answers."""
    b = torch.zeros(len(LABELS)) if bias is None else torch.as_tensor(bias, dtype=torch.float32)
    return {
        c: calibrated_clip_probs(z, sets[c].owners, len(sets[c].rows), temperature, b).numpy()
        for c, z in logits.items()
    }


def selection_score(clip_probs, y, datasets) -> float:
    """The validation score of clip probabilities [(n_clips, n_labels) per condition] of clips with true label
    indices y and datasets: the mean over the conditions of the corpus-balanced UAR of the clips' answers."""
    return float(
        np.mean(
            [evaluate_predictions(y, p.argmax(1), datasets, len(LABELS))["corpus_balanced_uar"] for p in clip_probs]
        )
    )


def validation_scores(clip_probs: dict[str, np.ndarray], rows) -> dict:
    """{condition: (n_clips, n_labels) clip probabilities}, clean first, and the validation clips -> the metrics of
    every condition (train.metrics.evaluate_predictions) with "corpus_balanced_uar" their mean over the
    conditions (the score a model is chosen on; the clean metrics alone when clean is the only condition),
    "largest_share": the largest share of one emotion among the answers of any condition."""
    y = [LABEL_INDEX[r["label"]] for r in rows]
    datasets = [r["dataset"] for r in rows]
    per = {c: evaluate_predictions(y, p.argmax(1), datasets, len(LABELS)) for c, p in clip_probs.items()}
    shares = [np.bincount(p.argmax(1), minlength=len(LABELS)).max() / max(len(p), 1) for p in clip_probs.values()]
    return {**conditions_mean(per), "largest_share": float(max(shares))}
