"""Classification metrics shared by training (validation) and evaluation. Pure numpy, no sklearn."""

from __future__ import annotations

import numpy as np

NO_ANSWER = -1  # a predicted index for a clip no model answered (the app refused it: too little speech)


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int counts; rows = true label, columns = predicted. A NO_ANSWER prediction is
    left out here (see unanswered)."""
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    answered = y_pred != NO_ANSWER
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (y_true[answered], y_pred[answered]), 1)
    return m


def unanswered(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(n_classes,) int: clips of each true label that got NO_ANSWER."""
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    return np.bincount(y_true[y_pred == NO_ANSWER], minlength=n_classes).astype(np.int64)


def summary(cm: np.ndarray, no_answer=None) -> dict:
    """{"n", "accuracy", "uar", "macro_f1"} from a confusion matrix and the clips of each true label that got no
    answer (no_answer (n_classes,), default none): a clip without an answer counts as a miss. UAR and macro-F1
    average over the classes present (a true count above zero), so a dataset without "surprised" is not
    penalised for it."""
    cm = np.asarray(cm, dtype=np.float64)
    missed = np.zeros(cm.shape[0]) if no_answer is None else np.asarray(no_answer, dtype=np.float64)
    n = int(cm.sum() + missed.sum())
    true = cm.sum(1) + missed
    pred = cm.sum(0)
    tp = np.diag(cm)
    present = true > 0
    if n == 0:
        return {"n": 0, "accuracy": 0.0, "uar": 0.0, "macro_f1": 0.0}
    recall = tp[present] / true[present]
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)[present]
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros_like(recall), where=(precision + recall) > 0
    )
    return {"n": n, "accuracy": float(tp.sum() / n), "uar": float(recall.mean()), "macro_f1": float(f1.mean())}


def corpus_balanced_uar(per_dataset: dict) -> float:
    """The headline metric: mean over datasets of each dataset's UAR."""
    vals = [m["uar"] for m in per_dataset.values() if m["n"] > 0]
    return float(np.mean(vals)) if vals else 0.0


def evaluate_predictions(y_true, y_pred, datasets, n_classes: int) -> dict:
    """{"overall": M, "per_dataset": {name: M}, "confusion": [[int]], "no_answer": int, "corpus_balanced_uar":
    float}; a prediction of NO_ANSWER counts as a miss and stays out of the confusion matrix ("no_answer" counts
    those clips)."""
    y_true, y_pred, datasets = np.asarray(y_true), np.asarray(y_pred), np.asarray(datasets)
    cm = confusion(y_true, y_pred, n_classes)

    def metrics(mask):
        return summary(
            confusion(y_true[mask], y_pred[mask], n_classes), unanswered(y_true[mask], y_pred[mask], n_classes)
        )

    per = {d: metrics(datasets == d) for d in sorted(set(datasets.tolist()))}
    return {
        "overall": metrics(np.ones(len(y_true), bool)),
        "per_dataset": per,
        "confusion": cm.tolist(),
        "no_answer": int((y_pred == NO_ANSWER).sum()),
        "corpus_balanced_uar": corpus_balanced_uar(per),
    }


def clip_means(window_probs: np.ndarray, owners: np.ndarray, n_clips: int) -> np.ndarray:
    """A clip's probabilities = the mean of its windows': (N, C) with the owner clip index of each row
    (N,) -> (n_clips, C). A clip without windows stays zero."""
    out = np.zeros((n_clips, window_probs.shape[1]))
    np.add.at(out, owners, window_probs)
    return out / np.maximum(np.bincount(owners, minlength=n_clips), 1)[:, None]


def conditions_mean(by_condition: dict) -> dict:
    """Validation metrics {condition: metrics}, clean first -> the clean metrics alone when it is the only
    condition; else the clean metrics with corpus_balanced_uar replaced by the mean over the conditions (the
    selection score), and each condition's metrics kept under its name."""
    clean = by_condition["clean"]
    if len(by_condition) == 1:
        return clean
    mean = float(np.mean([m["corpus_balanced_uar"] for m in by_condition.values()]))
    return {**clean, "corpus_balanced_uar": mean, **by_condition}
