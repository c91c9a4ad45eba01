"""Calibrate each family on the validation speakers: a temperature and one bias per emotion on its logits.

    python -m train.calibration [--families cnn1d,lstm,cnn2d,whisper] [--cache DIR] [--checkpoints DIR]

A family's window logits z become softmax(z / T + b) (T > 0, b of length 7), and a clip's probabilities stay
the mean of its windows', as in the app. T and b are fitted by minimising the negative log-likelihood of the
validation clips of every condition the validation copies hold (clean, classroom, young, young+classroom), each
clip weighted so that every (condition, dataset, emotion) cell weighs the same: the balance the headline metric
(corpus-balanced UAR) itself uses. The bias moves a family's answers off an emotion it over-answers; the
temperature makes its confidence mean what it says. A balanced variant then shifts the fitted bias further, until no
emotion's share of the answers exceeds its share of the clips by more than SHARE_SLACK (balanced_bias).

A family is calibrated only when that helps speakers the fit has not seen: the validation speakers are split in two
folds (alternately within each dataset, by name), T and b are fitted on one fold and scored on the other, and the
out-of-fold mean corpus-balanced UAR over the conditions must not fall by more than TOLERANCE (the margin the project
allows a cheaper model, e.g. int8 Whisper), nor the largest share of one answer rise. The adopted T and b (fitted on
all validation speakers) go to checkpoints/calibration.json with the sha256 of the checkpoint they belong to; the
Recognizer applies them (emotion_core.recognizer) and ignores an entry whose checkpoint changed. The test speakers are
not read.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from emotion_core.calibration import CALIBRATION_FILE, file_sha256
from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.models.registry import FAMILIES
from emotion_core.paths import checkpoint_dir

from .cache import cache_dir
from .validation import calibrated_clip_probs, validation_logits, validation_scores, validation_sets

TOLERANCE = 0.005  # out-of-fold mean cb-UAR a calibration may cost
SHARE_SLACK = 0.02  # an emotion's share of the answers above its share of the clips that balancing leaves alone
BATCH = 256


def cell_weights(rows, n_conditions: int) -> np.ndarray:
    """Per clip: every (dataset, emotion) cell of a condition weighs the same; sums to 1 over the conditions."""
    cells: dict = {}
    for r in rows:
        cells[(r["dataset"], r["label"])] = cells.get((r["dataset"], r["label"]), 0) + 1
    w = np.array([1.0 / cells[(r["dataset"], r["label"])] for r in rows])
    return w / w.sum() / n_conditions


def fit(per_condition: list, steps: int = 200) -> tuple[float, np.ndarray]:
    """per_condition: [(window logits (W, C), owners (W,), labels (n,), weights (n,))] -> (T, b) minimising the
    weighted negative log-likelihood of the clip probabilities (L-BFGS on log T and b)."""
    log_t = torch.zeros((), requires_grad=True)
    bias = torch.zeros(len(LABELS), requires_grad=True)
    opt = torch.optim.LBFGS([log_t, bias], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")
    data = [(z, o, torch.as_tensor(y), torch.as_tensor(w, dtype=torch.float32)) for z, o, y, w in per_condition]

    def closure():
        opt.zero_grad()
        loss = sum(
            (
                -(calibrated_clip_probs(z, o, len(y), log_t.exp(), bias).clamp_min(1e-9).log()[torch.arange(len(y)), y])
                * w
            ).sum()
            for z, o, y, w in data
        )
        loss.backward()
        return loss

    opt.step(closure)
    b = bias.detach().numpy()
    return float(log_t.detach().exp()), b - b.mean()


def scores(probs_by_condition: dict, rows) -> dict:
    """{condition: (n, C) clip probabilities} -> mean cb-UAR over conditions, each condition's, largest answer share
    (train.validation.validation_scores)."""
    v = validation_scores(probs_by_condition, rows)
    per = (
        {c: v[c]["corpus_balanced_uar"] for c in probs_by_condition}
        if len(probs_by_condition) > 1
        else {c: v["corpus_balanced_uar"] for c in probs_by_condition}
    )
    return {"mean_cb_uar": v["corpus_balanced_uar"], "cb_uar": per, "largest_share": v["largest_share"]}


def speaker_folds(rows) -> np.ndarray:
    """Fold 0 or 1 per clip: the validation speakers of each dataset, sorted by name, alternately."""
    fold = {}
    for ds in sorted({r["dataset"] for r in rows}):
        for i, s in enumerate(sorted({r["speaker"] for r in rows if r["dataset"] == ds})):
            fold[s] = i % 2
    return np.array([fold[r["speaker"]] for r in rows])


def balanced_bias(per_condition: list, t: float, b, iters: int = 60, step: float = 0.5) -> np.ndarray:
    """per_condition as fit's, and a fitted (T, b) -> b shifted until no emotion's share of the answers (argmax,
    pooled over the conditions) exceeds its share of the clips by more than SHARE_SLACK: the correction of the
    prior of a family that answers one emotion too often (the issue's "no emotion above 25% of the answers")."""
    b = np.asarray(b, dtype=np.float64).copy()
    y = per_condition[0][2]
    target = np.bincount(y, minlength=len(LABELS)) / len(y)
    for _ in range(iters):
        answers = np.concatenate(
            [
                calibrated_clip_probs(z, o, len(y), t, torch.as_tensor(b, dtype=torch.float32)).numpy().argmax(1)
                for z, o, _y, _w in per_condition
            ]
        )
        shares = np.bincount(answers, minlength=len(LABELS)) / len(answers)
        if (shares - target).max() <= SHARE_SLACK:
            break
        b -= step * np.log((shares + 1e-3) / (target + 1e-3))
    return b - b.mean()


def calibrate_family(logits: dict, owners: dict, rows) -> dict:
    """logits {condition: (W, C)}, owners {condition: (W,)}, the val rows (same clips in every condition) ->
    {"temperature", "bias", "adopted", "val": {"uncalibrated", "out_of_fold", "fitted"}}."""
    n, conds = len(rows), list(logits)
    y = np.array([LABEL_INDEX[r["label"]] for r in rows])
    folds = speaker_folds(rows)

    def probs(t, b, c):
        return calibrated_clip_probs(logits[c], owners[c], n, t, torch.as_tensor(b, dtype=torch.float32)).numpy()

    def problem(mask):
        keep = np.flatnonzero(mask)
        remap = -np.ones(n, dtype=int)
        remap[keep] = np.arange(len(keep))
        sub = [rows[i] for i in keep]
        out = []
        for c in conds:
            sel = mask[owners[c]]
            out.append(
                (logits[c][torch.from_numpy(sel)], remap[owners[c][sel]], y[keep], cell_weights(sub, len(conds)))
            )
        return out

    uncal = {c: probs(1.0, np.zeros(len(LABELS)), c) for c in conds}
    oof = {kind: {c: np.zeros((n, len(LABELS))) for c in conds} for kind in ("plain", "balanced")}
    for k in (0, 1):
        train_fold = problem(folds != k)
        t, b = fit(train_fold)
        for kind, bias in (("plain", b), ("balanced", balanced_bias(train_fold, t, b))):
            for c in conds:
                oof[kind][c][folds == k] = probs(t, bias, c)[folds == k]
    everyone = problem(np.ones(n, dtype=bool))
    t, b = fit(everyone)
    biases = {"plain": b, "balanced": balanced_bias(everyone, t, b)}
    before = scores(uncal, rows)
    after = {kind: scores(oof[kind], rows) for kind in oof}

    def holds(s):
        return s["mean_cb_uar"] >= before["mean_cb_uar"] - TOLERANCE and s["largest_share"] <= before["largest_share"]

    # the balanced bias when it holds out of fold (it serves the answer-share target), else the plain fit's
    kind = "balanced" if holds(after["balanced"]) else "plain"
    return {
        "temperature": t,
        "bias": [float(v) for v in biases[kind]],
        "adopted": holds(after[kind]),
        "kind": kind,
        "val": {
            "conditions": conds,
            "clips": n,
            "uncalibrated": before,
            "out_of_fold": after[kind],
            "out_of_fold_plain": after["plain"],
            "out_of_fold_balanced": after["balanced"],
            "fitted": scores({c: probs(t, biases[kind], c) for c in conds}, rows),
        },
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Calibrate each family on the validation speakers (temperature + bias).")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--cache", help="feature cache with the validation copies (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--checkpoints", help="checkpoint directory (default $EMOTION_CHECKPOINTS or ./checkpoints)")
    ap.add_argument("--whisper", help="Whisper encoder: local directory or Hub id (default $EMOTION_WHISPER)")
    args = ap.parse_args(argv)
    cdir, ckdir = cache_dir(args.cache), checkpoint_dir(args.checkpoints)
    sets = validation_sets(cdir)
    rows = next(iter(sets.values()))[2]
    print(f"validation: {len(rows)} clips in {', '.join(sets)}", flush=True)
    out_path = ckdir / CALIBRATION_FILE
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    for family in args.families.split(","):
        path = ckdir / f"{family}.pt"
        logits = validation_logits(path, sets, cdir, args.whisper)
        owners = {c: v.owners for c, v in sets.items()}
        cal = calibrate_family(logits, owners, rows)
        result[family] = {**cal, "checkpoint_sha256": file_sha256(path)}
        v = cal["val"]
        print(
            f"{family}: T {cal['temperature']:.2f}, bias {np.round(cal['bias'], 2).tolist()}; mean cb-UAR "
            f"{v['uncalibrated']['mean_cb_uar']:.4f} -> out of fold {v['out_of_fold']['mean_cb_uar']:.4f}; largest "
            f"share {v['uncalibrated']['largest_share']:.3f} -> {v['out_of_fold']['largest_share']:.3f}; "
            f"{'adopted' if cal['adopted'] else 'not adopted'} ({cal['kind']}; plain out of fold "
            f"{v['out_of_fold_plain']['mean_cb_uar']:.4f}, "
            f"largest share {v['out_of_fold_plain']['largest_share']:.3f})",
            flush=True,
        )
        out_path.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
