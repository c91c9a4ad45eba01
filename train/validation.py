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
from emotion_core.features import DEFAULT_FEATURES, windows
from emotion_core.labels import LABEL_INDEX, LABELS

from .cache import clip_mel, load_cache
from .copies import copy_files, load_copy
from .metrics import conditions_mean, evaluate_predictions


class ValidationSet(NamedTuple):
    """One condition's validation windows: (W, n_mels, frames) log-mels, the index into `rows` of each window's
    clip (W,), and the validation clips (rows of clips.csv), the same clips in every condition."""

    windows: torch.Tensor
    owners: np.ndarray
    rows: list


def validation_sets(cdir: Path, conditions=None) -> dict[str, ValidationSet]:
    """{condition: ValidationSet} for clean and every simulated validation copy 0 in the cache (or only those of
    `conditions`, which must be cached), restricted to the clips every condition holds; clean first."""
    rows, mels = load_cache(cdir)
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
