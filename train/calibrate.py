"""Happy heard as surprised, and "disgust" for new voices: where it happens, and one targeted fix tried.

    python -m train.calibrate --data DIR [--cache DIR] [--out reports/happy_surprised_tables]

1. Every shipped output's clip probabilities on the validation and the test speakers, by the evaluation's own
   path (train.evaluate.run_probabilities: load_audio -> prepare_speech -> log-mel -> windows -> every family
   -> mean over windows), kept in CACHE/calibrate_<split>_clean.npz (recomputed when the checkpoints
   change). Clean clips only (train.evaluate's classroom condition needs the room bank, not built here).
2. The confusions on the validation speakers, with counts: what happy is heard as, and where the "disgust"
   answers come from, by corpus, speaker, sex, sentence (CREMA-D sentence codes, RAVDESS statements) and
   intensity.
3. The fix tried: a per-class bias on each output's log-probabilities (a prior correction; the argmax of
   log p + b), fitted by the class- and corpus-balanced log-loss (each (dataset, class) cell weighs the same
   within its dataset, each dataset the same: the smooth counterpart of corpus-balanced UAR). Its benefit is
   estimated without scoring on the speakers it was fitted on: leave-one-speaker-out within the validation
   speakers (fit on 16, score the 17th, pool). The rule, fixed before the numbers were seen: ship it only if
   the out-of-fold calibrated lead output beats the uncalibrated one on at least CONFIDENCE of BOOTSTRAPS speaker
   resamples (train.ensemble's paired bootstrap). Then, once, a bias fitted on all validation speakers is
   applied to the test speakers, and that figure is reported beside the choice (never used to make it).

Writes OUT.md and OUT.json. Nothing shipped changes (checkpoints, app).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize

from corpus import DATASETS, SPLITS_CSV, select_clips
from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.paths import data_dir
from emotion_core.recognizer import Recognizer

from .cache import cache_dir
from .ensemble import cb_uar, speaker_resamples
from .evaluate import run_probabilities

BOOTSTRAPS = 500  # speaker resamples of the validation set (as train.ensemble)
CONFIDENCE = 0.95  # share of resamples on which the calibrated output must win to be recommended
BIAS_L2 = 1e-3  # ridge on the bias (log-probability units): keeps a class absent from a fold finite
PROB_FLOOR = 1e-8  # probabilities are floored before the log
HAPPY, SURPRISED, DISGUST = LABEL_INDEX["happy"], LABEL_INDEX["surprised"], LABEL_INDEX["disgust"]
NEUTRAL, SAD = LABEL_INDEX["neutral"], LABEL_INDEX["sad"]
CONDITION = "clean"  # train.evaluate's clean condition (its classroom one needs the room bank)
CHECKPOINT_FILES = ("cnn1d.pt", "lstm.pt", "cnn2d.pt", "whisper.pt", "ensemble.json")


# --- the probabilities of the shipped outputs, by the evaluation's path --------------------------------

def checkpoints_fingerprint(directory: Path) -> str:
    h = hashlib.sha256()
    for name in CHECKPOINT_FILES:
        p = directory / name
        h.update(name.encode() + (p.read_bytes() if p.is_file() else b"-"))
    return h.hexdigest()


def cached_probabilities(rec: Recognizer, root: Path, split: str, cdir: Path,
                         workers: int = 1) -> tuple[list, dict[str, np.ndarray]]:
    """(kept clips, {output: (n, n_labels) clip probabilities}) of one split's clean clips, from
    CACHE/calibrate_<split>_clean.npz when it holds the same clips and checkpoints, else computed with
    train.evaluate.run_probabilities."""
    clips = select_clips(root, split)
    by_path = {str(Path(c.path).relative_to(root)): c for c in clips}  # the cache keys paths relative to the data
    path = cdir / f"calibrate_{split}_{CONDITION}.npz"
    fingerprint = checkpoints_fingerprint(rec.dir)
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        if str(z["fingerprint"]) == fingerprint and set(z["paths"].tolist()) <= set(by_path):
            names = [str(n) for n in z["names"]]
            return [by_path[p] for p in z["paths"].tolist()], {n: z[f"p_{n}"] for n in names}
    torch.set_num_threads(1)
    probs, kept, refused = run_probabilities(rec, clips, {CONDITION: None}, workers=workers)
    for p, why in refused:
        print(f"refused {p}: {why}", file=sys.stderr)
    probs = probs[CONDITION]
    cdir.mkdir(parents=True, exist_ok=True)
    np.savez(path, fingerprint=fingerprint, paths=np.array([str(Path(c.path).relative_to(root)) for c in kept]),
             names=np.array(list(probs)),
             **{f"p_{n}": p for n, p in probs.items()})
    return kept, probs


# --- the fix: a per-class bias on the log-probabilities ------------------------------------------------

def balanced_weights(y, datasets) -> np.ndarray:
    """Clip weights (summing to 1) under which every dataset weighs the same and, within it, every class
    present: the weighting of corpus-balanced UAR."""
    y, datasets = np.asarray(y), np.asarray(datasets)
    cells = Counter(zip(datasets.tolist(), y.tolist()))
    classes_in = Counter(d for d, _ in cells)
    n_datasets = len(classes_in)
    return np.array([1.0 / (n_datasets * classes_in[d] * cells[(d, c)]) for d, c in zip(datasets.tolist(), y.tolist())])


def log_probabilities(probs: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(probs, PROB_FLOOR))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def apply_bias(probs: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Clip probabilities (n, C) -> softmax(log p + bias): the calibrated probabilities."""
    return softmax(log_probabilities(probs) + bias)


def fit_bias(probs: np.ndarray, y, weights: np.ndarray, l2: float = BIAS_L2) -> np.ndarray:
    """The bias (C,) minimising the weighted log-loss of softmax(log p + bias) plus l2 * |bias|^2 (convex;
    L-BFGS with the exact gradient). The loss part's gradient sums to zero over classes, so the optimum has
    zero mean: the bias only moves classes against each other."""
    logp = log_probabilities(probs)
    y = np.asarray(y)
    onehot = np.eye(probs.shape[1])[y]
    w = np.asarray(weights, dtype=float)[:, None]

    def loss_and_grad(b):
        z = logp + b
        z = z - z.max(1, keepdims=True)
        logq = z - np.log(np.exp(z).sum(1, keepdims=True))
        loss = -(w * onehot * logq).sum() + l2 * (b @ b)
        grad = (w * (np.exp(logq) - onehot)).sum(0) + 2 * l2 * b
        return loss, grad

    res = minimize(loss_and_grad, np.zeros(probs.shape[1]), jac=True, method="L-BFGS-B")
    return res.x - res.x.mean()


def fit_on(probs: np.ndarray, y, datasets, idx: np.ndarray) -> np.ndarray:
    """The bias fitted on the clips `idx` with their own balanced weights."""
    y, datasets = np.asarray(y), np.asarray(datasets)
    return fit_bias(probs[idx], y[idx], balanced_weights(y[idx], datasets[idx]))


def out_of_fold(probs: np.ndarray, y, datasets, speakers) -> np.ndarray:
    """Leave-one-speaker-out: each speaker's clips calibrated by a bias fitted on all the other speakers."""
    speakers = np.asarray(speakers)
    out = np.empty_like(probs)
    for s in np.unique(speakers):
        held = speakers == s
        out[held] = apply_bias(probs[held], fit_on(probs, y, datasets, np.flatnonzero(~held)))
    return out


# --- what the answers look like -------------------------------------------------------------------------

def rate(pred, y, true: int, answer: int, mask=None) -> tuple[int, int]:
    """(clips of class `true` answered `answer`, clips of class `true`), within `mask`."""
    pred, y = np.asarray(pred), np.asarray(y)
    sel = y == true if mask is None else (y == true) & mask
    return int((pred[sel] == answer).sum()), int(sel.sum())


def symptoms(pred, y, datasets) -> dict:
    """The figures this report is about, for one set of predictions."""
    pred, y, datasets = np.asarray(pred), np.asarray(y), np.asarray(datasets)
    with_surprised = np.isin(datasets, np.unique(datasets[y == SURPRISED]))
    hs, nh = rate(pred, y, HAPPY, SURPRISED)
    hs_w, nh_w = rate(pred, y, HAPPY, SURPRISED, with_surprised)
    nd, nn = rate(pred, y, NEUTRAL, DISGUST)
    sd, ns = rate(pred, y, SAD, DISGUST)
    return {"cb_uar": cb_uar(np.eye(len(LABELS))[pred], y, datasets),
            "happy_to_surprised": [hs, nh], "happy_to_surprised_where_surprised_exists": [hs_w, nh_w],
            "neutral_to_disgust": [nd, nn], "sad_to_disgust": [sd, ns],
            "disgust_share": float((pred == DISGUST).mean()), "true_disgust_share": float((y == DISGUST).mean()),
            "surprised_share": float((pred == SURPRISED).mean())}


def manifest_intensity(root: Path) -> dict[str, str]:
    """relative clip path -> intensity from the corpus manifest beside the data directory ({} without one)."""
    path = root.parent / "manifest.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {r["path"]: r["intensity"] or "-" for r in csv.DictReader(f)}


def clip_attributes(clips, root: Path) -> dict[str, np.ndarray]:
    with open(SPLITS_CSV, newline="") as f:
        sexes = {r["speaker"]: r["sex"] for r in csv.DictReader(f)}
    intensity = manifest_intensity(root)
    rel = [str(Path(c.path).relative_to(root)) for c in clips]
    return {"dataset": np.array([c.dataset for c in clips]), "speaker": np.array([c.speaker for c in clips]),
            "sex": np.array([sexes.get(c.speaker, "unknown") for c in clips]),
            "sentence": np.array([c.sentence for c in clips]),
            "intensity": np.array([intensity.get(r, "-") for r in rel]),
            "y": np.array([LABEL_INDEX[c.label] for c in clips])}


def breakdown(keys: np.ndarray, y: np.ndarray, preds: dict[str, np.ndarray], true: int, answer: int,
              mask=None) -> list[dict]:
    """Per value of `keys`: how many clips of class `true` there are, and how many each output answers `answer`."""
    sel = (y == true) if mask is None else (y == true) & mask
    rows = []
    for k in sorted(set(keys[sel].tolist())):
        m = sel & (keys == k)
        rows.append({"key": k, "n": int(m.sum()), **{name: int((p[m] == answer).sum()) for name, p in preds.items()}})
    return rows


def answers_of_class(y, pred, datasets, true: int) -> dict[str, list[int]]:
    """dataset -> counts of each answer given to clips of class `true`."""
    return {d: np.bincount(pred[(y == true) & (datasets == d)], minlength=len(LABELS)).tolist()
            for d in DATASETS if ((y == true) & (datasets == d)).any()}


def sources_of_answer(y, pred, datasets, answer: int) -> dict[str, list[int]]:
    """dataset -> counts of each true class among the clips answered `answer`."""
    return {d: np.bincount(y[(pred == answer) & (datasets == d)], minlength=len(LABELS)).tolist()
            for d in DATASETS if (datasets == d).any()}


# --- the study --------------------------------------------------------------------------------------------

def confusion_study(attrs: dict, preds: dict[str, np.ndarray], lead: str) -> dict:
    """Where happy -> surprised and X -> disgust happen, with counts, on one split."""
    y, ds = attrs["y"], attrs["dataset"]
    by = {"dataset": ds, "speaker": attrs["speaker"], "sex": attrs["sex"], "intensity": attrs["intensity"]}
    spoken = np.isin(ds, ["CREMA-D", "RAVDESS"])  # sentences shared across emotions (SAVEE's are not)
    with_surprised = np.isin(ds, np.unique(ds[y == SURPRISED]))  # corpora that have a surprised class
    out = {"symptoms": {name: symptoms(p, y, ds) for name, p in preds.items()},
           "happy_answers": {name: answers_of_class(y, p, ds, HAPPY) for name, p in preds.items()},
           "disgust_sources": {name: sources_of_answer(y, p, ds, DISGUST) for name, p in preds.items()},
           "by": {}}
    for field, keys in {**by, "sentence": attrs["sentence"]}.items():
        mask = spoken if field == "sentence" else np.ones(len(y), bool)
        happy_mask = mask if field == "dataset" else mask & with_surprised
        out["by"][field] = {
            "happy_to_surprised": breakdown(keys, y, preds, HAPPY, SURPRISED, happy_mask),
            "neutral_to_disgust": breakdown(keys, y, preds, NEUTRAL, DISGUST, mask),
            "sad_to_disgust": breakdown(keys, y, preds, SAD, DISGUST, mask),
        }
    lp = preds[lead]
    spk = attrs["speaker"]
    out["speaker_disgust"] = [{"speaker": s, "dataset": str(ds[spk == s][0]), "sex": str(attrs["sex"][spk == s][0]),
                               "clips": int((spk == s).sum()), "true_disgust": int(((spk == s) & (y == DISGUST)).sum()),
                               "answered_disgust": int(((spk == s) & (lp == DISGUST)).sum())}
                              for s in sorted(set(spk.tolist()))]
    return out


def calibration_study(probs: dict[str, np.ndarray], attrs: dict, lead: str, bootstraps: int = BOOTSTRAPS) -> dict:
    """Per output: uncalibrated, leave-one-speaker-out calibrated and (optimistic) in-sample calibrated figures,
    the paired speaker bootstrap of the out-of-fold gain, and the bias fitted on every validation speaker."""
    y, ds, spk = attrs["y"], attrs["dataset"], attrs["speaker"]
    resamples = speaker_resamples(spk, ds, bootstraps)
    out = {}
    for name, p in probs.items():
        oof = out_of_fold(p, y, ds, spk)
        bias = fit_on(p, y, ds, np.arange(len(y)))
        out[name] = {"uncalibrated": symptoms(p.argmax(1), y, ds), "out_of_fold": symptoms(oof.argmax(1), y, ds),
                     "in_sample": symptoms(apply_bias(p, bias).argmax(1), y, ds),
                     "bias": dict(zip(LABELS, bias.round(4).tolist())),
                     "bootstrap": bootstrap_gain(oof, p, y, ds, resamples)}
    b = out[lead]["bootstrap"]
    ship = b["wins_share"] >= CONFIDENCE and out[lead]["out_of_fold"]["cb_uar"] > out[lead]["uncalibrated"]["cb_uar"]
    return {"outputs": out, "lead": lead, "ship": bool(ship),
            "rule": f"ship only if the out-of-fold calibrated {lead} beats the uncalibrated one on at least "
                    f"{CONFIDENCE:.0%} of {bootstraps} speaker resamples of the validation set (and on the whole set)"}


def bootstrap_gain(calibrated: np.ndarray, raw: np.ndarray, y, ds, resamples: list) -> dict:
    """Paired speaker bootstrap of the cb-UAR gain of `calibrated` over `raw` probabilities of the same clips."""
    diffs = np.array([cb_uar(calibrated[i], y[i], ds[i]) - cb_uar(raw[i], y[i], ds[i]) for i in resamples])
    return {"resamples": len(resamples), "wins_share": float((diffs > 0).mean()), "gain_mean": float(diffs.mean()),
            "gain_5th_percentile": float(np.percentile(diffs, 5))}


def test_once(probs_val: dict, attrs_val: dict, probs_test: dict, attrs_test: dict) -> dict:
    """The bias fitted on all validation speakers, applied once to the test speakers (after the choice)."""
    out = {}
    for name, p in probs_test.items():
        bias = fit_on(probs_val[name], attrs_val["y"], attrs_val["dataset"], np.arange(len(attrs_val["y"])))
        out[name] = {"uncalibrated": symptoms(p.argmax(1), attrs_test["y"], attrs_test["dataset"]),
                     "calibrated": symptoms(apply_bias(p, bias).argmax(1), attrs_test["y"], attrs_test["dataset"])}
    return out


def committed_test(path: Path) -> dict:
    """The committed test evaluation (reports/test.json, read once already): per condition and output, the
    happy -> surprised, neutral/sad -> disgust counts and the disgust answer share, from its confusion matrices."""
    if not path.is_file():
        return {}
    result = json.loads(path.read_text())
    out = {}
    for cond, c in result.get("conditions", {"clean": {"models": result["models"]}}).items():
        for name, m in c["models"].items():
            cm = np.array(m["confusion"])
            out.setdefault(cond, {})[name] = {
                "happy_to_surprised": [int(cm[HAPPY, SURPRISED]), int(cm[HAPPY].sum())],
                "neutral_to_disgust": [int(cm[NEUTRAL, DISGUST]), int(cm[NEUTRAL].sum())],
                "sad_to_disgust": [int(cm[SAD, DISGUST]), int(cm[SAD].sum())],
                "disgust_share": float(cm[:, DISGUST].sum() / cm.sum())}
    return out


# --- the report -------------------------------------------------------------------------------------------

def frac(pair) -> str:
    n, total = pair
    return f"{n}/{total} ({n / total:.0%})" if total else "-"


def table(head: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def symptom_rows(by_output: dict) -> list[list]:
    return [[name, f"{s['cb_uar']:.3f}", frac(s["happy_to_surprised"]), frac(s["happy_to_surprised_where_surprised_exists"]),
             frac(s["neutral_to_disgust"]), frac(s["sad_to_disgust"]), f"{s['disgust_share']:.1%}"]
            for name, s in by_output.items()]


SYMPTOM_HEAD = ["output", "cb-UAR", "happy -> surprised", "happy -> surprised (corpora with surprised)",
                "neutral -> disgust", "sad -> disgust", "disgust share of answers"]


def breakdown_table(rows: list[dict], names: list[str], key: str, n_label: str) -> list[str]:
    return table([key, n_label] + names, [[r["key"], r["n"]] + [r[n] for n in names] for r in rows])


def markdown(res: dict) -> str:
    val, cal, lead = res["val"], res["calibration"], res["calibration"]["lead"]
    names = list(val["symptoms"])
    meta = res["meta"]
    L = ["# Happy heard as surprised, and \"disgust\" for new voices", "",
         f"Generated by `{meta['command']}` (train/calibrate.py). Validation: {meta['val_clips']} clips of "
         f"{meta['val_speakers']} speakers; every figure below comes from that command. Shipped checkpoints, "
         "evaluation path of `train.evaluate` (clean clips, mean of window probabilities). "
         f"The lead output is `{lead}` (highest validation score).", "",
         "## 1. Which corpora can even say 'surprised'", "",
         "Surprised exists in RAVDESS, TESS and SAVEE only; CREMA-D has no surprised clip, so on CREMA-D every "
         "'surprised' answer is wrong, and TESS has no validation or test speaker here (YAF trains only).", ""]
    L += table(["corpus"] + list(LABELS) + ["clips", "speakers"],
               [[d] + c + [sum(c), meta["speakers_per_dataset"][d]] for d, c in meta["val_class_counts"].items()])
    L += ["", "## 2. The symptoms on the validation speakers (uncalibrated, as shipped)", ""]
    L += table(SYMPTOM_HEAD, symptom_rows(val["symptoms"]))
    L += ["", f"What happy clips are heard as, per corpus (`{lead}`; columns = answers):", ""]
    L += table(["corpus"] + list(LABELS), [[d] + c for d, c in val["happy_answers"][lead].items()])
    L += ["", "Where the 'disgust' answers come from, per corpus (true class of the clips answered disgust; "
          "rows per output):", ""]
    L += table(["output", "corpus"] + list(LABELS) + ["disgust answers"],
               [[n, d] + c + [sum(c)] for n in names for d, c in val["disgust_sources"][n].items()])
    for field, title in [("dataset", "corpus"), ("sex", "sex"), ("speaker", "speaker"), ("intensity", "intensity"),
                         ("sentence", "sentence (CREMA-D codes, RAVDESS statements)")]:
        L += ["", f"### By {title}", ""]
        for symptom, n_label in [("happy_to_surprised", "happy clips (answered surprised by:)"),
                                 ("neutral_to_disgust", "neutral clips (answered disgust by:)"),
                                 ("sad_to_disgust", "sad clips (answered disgust by:)")]:
            if symptom == "happy_to_surprised" and field != "dataset":
                n_label = "happy clips of corpora with surprised (answered surprised by:)"
            L += breakdown_table(val["by"][field][symptom], names, title.split(" (")[0], n_label) + [""]
    L += ["", f"Disgust answers of `{lead}` per speaker, beside the speaker's true disgust clips:", ""]
    L += table(["speaker", "corpus", "sex", "clips", "true disgust", "answered disgust"],
               [list(r.values()) for r in val["speaker_disgust"]])
    ct = res.get("committed_test", {})
    if ct:
        L += ["", "## 3. The committed test evaluation (reports/test.json, read once already; nothing chosen on it)", ""]
        L += table(["condition", "output", "happy -> surprised", "neutral -> disgust", "sad -> disgust", "disgust share"],
                   [[c, n, frac(s["happy_to_surprised"]), frac(s["neutral_to_disgust"]), frac(s["sad_to_disgust"]),
                     f"{s['disgust_share']:.1%}"] for c, by in ct.items() for n, s in by.items()])
    L += ["", "## 4. The fix tried: a per-class bias on the log-probabilities, fitted on validation speakers", "",
          "argmax(log p + b), b (7 numbers, zero mean) fitted by the corpus- and class-balanced log-loss "
          f"(L2 {BIAS_L2:g}). Out-of-fold = leave one validation speaker out (fit on the other "
          f"{meta['val_speakers'] - 1}, score the held-out one, pooled); in-sample = fitted and scored on all "
          "validation speakers (optimistic, shown for contrast only).", "", f"Rule fixed before the numbers: {cal['rule']}.", ""]
    rows = []
    for n, c in cal["outputs"].items():
        for kind in ("uncalibrated", "out_of_fold", "in_sample"):
            s = c[kind]
            rows.append([n, kind, f"{s['cb_uar']:.3f}", frac(s["happy_to_surprised"]),
                         frac(s["happy_to_surprised_where_surprised_exists"]), frac(s["neutral_to_disgust"]),
                         frac(s["sad_to_disgust"]), f"{s['disgust_share']:.1%}", f"{s['surprised_share']:.1%}"])
    L += table(["output", "validation", "cb-UAR", "happy -> surprised", "happy -> surprised (corpora with surprised)",
                "neutral -> disgust", "sad -> disgust", "disgust share", "surprised share"], rows)
    L += ["", "Paired speaker bootstrap of the out-of-fold gain in cb-UAR (validation speakers resampled within "
          "each corpus):", ""]
    L += table(["output", "gain (whole set)", "mean gain", "5th percentile", "calibrated wins on"],
               [[n, f"{c['out_of_fold']['cb_uar'] - c['uncalibrated']['cb_uar']:+.3f}", f"{c['bootstrap']['gain_mean']:+.3f}",
                 f"{c['bootstrap']['gain_5th_percentile']:+.3f}", f"{c['bootstrap']['wins_share']:.0%}"]
                for n, c in cal["outputs"].items()])
    L += ["", "The bias fitted on all validation speakers (log-probability units; what would ship):", ""]
    L += table(["output"] + list(LABELS), [[n] + [f"{c['bias'][lab]:+.2f}" for lab in LABELS] for n, c in cal["outputs"].items()])
    L += ["", f"**Decision (validation only): {'ship' if cal['ship'] else 'do not ship'}** the calibration of `{lead}`.", ""]
    t = res.get("test")
    if t:
        L += ["## 5. Test speakers, read once after the choice (the bias fitted on all validation speakers)", ""]
        L += table(["output", "test", "cb-UAR", "happy -> surprised", "neutral -> disgust", "sad -> disgust", "disgust share"],
                   [[n, kind, f"{c[kind]['cb_uar']:.3f}", frac(c[kind]["happy_to_surprised"]), frac(c[kind]["neutral_to_disgust"]),
                     frac(c[kind]["sad_to_disgust"]), f"{c[kind]['disgust_share']:.1%}"]
                    for n, c in t.items() for kind in ("uncalibrated", "calibrated")])
        L += ["", f"Test clips: {meta['test_clips']}. Where the test speakers' happy -> surprised confusions are "
              "(uncalibrated, as shipped; described, nothing chosen on them):", ""]
        ts = res["test_study"]
        for field in ("dataset", "speaker", "sex", "intensity", "sentence"):
            L += breakdown_table(ts["by"][field]["happy_to_surprised"], names, field,
                                 "happy clips" + ("" if field == "dataset" else " of corpora with surprised")
                                 + " (answered surprised by:)") + [""]
        L += ["The test speakers' neutral and sad clips answered disgust (uncalibrated, as shipped):", ""]
        for field in ("dataset", "sex", "speaker"):
            for symptom, n_label in [("neutral_to_disgust", "neutral clips (answered disgust by:)"),
                                     ("sad_to_disgust", "sad clips (answered disgust by:)")]:
                L += breakdown_table(ts["by"][field][symptom], names, field, n_label) + [""]
        L += [f"What the test speakers' happy clips are heard as (`{lead}`):", ""]
        L += table(["corpus"] + list(LABELS), [[d] + c for d, c in ts["happy_answers"][lead].items()])
    return "\n".join(L) + "\n"


def class_counts(attrs: dict) -> dict[str, list[int]]:
    return {d: np.bincount(attrs["y"][attrs["dataset"] == d], minlength=len(LABELS)).tolist()
            for d in DATASETS if (attrs["dataset"] == d).any()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Happy -> surprised and X -> disgust on the validation speakers, "
                                             "and a validation-fitted per-class bias tried against them.")
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--cache", help="where the clip probabilities are kept (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--checkpoints")
    ap.add_argument("--whisper")
    ap.add_argument("--out", default="reports/happy_surprised_tables", help="writes OUT.md and OUT.json")
    ap.add_argument("--workers", type=int, default=1, help="processes that decode clips")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root, cdir = data_dir(args.data), cache_dir(args.cache)
    rec = Recognizer(args.checkpoints, "cpu", args.whisper, fast=False)
    lead = rec.lead
    val_clips, val_probs = cached_probabilities(rec, root, "val", cdir, args.workers)
    val_attrs = clip_attributes(val_clips, root)
    val_preds = {n: p.argmax(1) for n, p in val_probs.items()}
    res = {"meta": {"command": "python -m train.calibrate --data ../shared/data/audio",
                    "val_clips": len(val_clips), "val_speakers": len(set(val_attrs["speaker"].tolist())),
                    "val_class_counts": class_counts(val_attrs),
                    "speakers_per_dataset": {d: len(set(val_attrs["speaker"][val_attrs["dataset"] == d].tolist()))
                                             for d in DATASETS if (val_attrs["dataset"] == d).any()}},
           "val": confusion_study(val_attrs, val_preds, lead),
           "calibration": calibration_study(val_probs, val_attrs, lead),
           "committed_test": committed_test(Path(__file__).resolve().parent.parent / "reports" / "test.json")}
    # the choice is made above, on validation only; the test speakers are read after it
    test_clips, test_probs = cached_probabilities(rec, root, "test", cdir, args.workers)
    test_attrs = clip_attributes(test_clips, root)
    res["test"] = test_once(val_probs, val_attrs, test_probs, test_attrs)
    res["test_study"] = confusion_study(test_attrs, {n: p.argmax(1) for n, p in test_probs.items()}, lead)
    res["meta"]["test_clips"] = len(test_clips)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    for n, c in res["calibration"]["outputs"].items():
        print(f"{n:9s} val cb-UAR {c['uncalibrated']['cb_uar']:.3f} -> out-of-fold {c['out_of_fold']['cb_uar']:.3f} "
              f"(wins {c['bootstrap']['wins_share']:.0%});  test {res['test'][n]['uncalibrated']['cb_uar']:.3f} -> "
              f"{res['test'][n]['calibrated']['cb_uar']:.3f}")
    print(f"decision: {'ship' if res['calibration']['ship'] else 'do not ship'}; wrote {out.with_suffix('.md')}, {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
