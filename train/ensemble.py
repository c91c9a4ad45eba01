"""Choose the ensemble on the validation speakers: a weighted mean of the families' probabilities.

    python -m train.ensemble [--checkpoints DIR] [--cache DIR] [--condition all]

Every family runs, calibrated as the app runs it, on the validation sets of train.validation (the cached validation
clips, clean and in every simulated condition, --condition all by default). Every weight vector on a grid (each family
an integer weight 0-10; at least two families) is scored by the validation score (train.validation.selection_score:
the mean over the conditions of the corpus-balanced UAR) of its weighted mean. The best mix is kept only if it beats
the best single family by more than the validation noise (`choose`): the validation speakers are resampled with
replacement (within each dataset, BOOTSTRAPS times), and the mix must beat the best single family on at least
CONFIDENCE of the resamples (a paired, one-sided speaker bootstrap); otherwise the ensemble is the best single family
(its weight 1, the others 0). The choice, its validation score and how the rule decided go to
checkpoints/ensemble.json, checkpoints/ensemble_decision.json and reports/ensemble_choice.md. The test speakers are
not read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from emotion_core.calibration import file_sha256
from emotion_core.labels import LABEL_INDEX
from emotion_core.recognizer import ENSEMBLE_FILE, Recognizer

from .cache import cache_dir
from .report import CONDITION_SETS
from .validation import clip_probabilities, selection_score, validation_logits, validation_sets

GRID = tuple(range(11))  # integer weights 0..10: fine enough for a small tie-breaking share beside a strong member
BOOTSTRAPS = 500  # speaker resamples of the validation set
CONFIDENCE = 0.95  # share of resamples on which a mix must beat the best single family to be chosen
REPO = Path(__file__).resolve().parent.parent


def speaker_resamples(speakers, datasets, n: int, seed: int = 0) -> list[np.ndarray]:
    """n bootstrap resamples of clip indices: each dataset's speakers drawn with replacement (as many as it has),
    every clip of a drawn speaker taken (a speaker drawn twice counts twice)."""
    speakers, datasets = np.asarray(speakers), np.asarray(datasets)
    rng = np.random.default_rng(seed)
    by_speaker = {s: np.flatnonzero(speakers == s) for s in np.unique(speakers)}
    per_dataset = {d: np.unique(speakers[datasets == d]) for d in np.unique(datasets)}
    out = []
    for _ in range(n):
        drawn = [rng.choice(spk, size=len(spk), replace=True) for spk in per_dataset.values()]
        out.append(np.concatenate([by_speaker[s] for group in drawn for s in group]))
    return out


def score(conditions: list[dict[str, np.ndarray]], weights, names, y, datasets, idx=None) -> float:
    """The validation score (train.validation.selection_score: the mean over the conditions of the corpus-balanced
    UAR) of the weighted mean of the families' probabilities, on clips idx (None: all)."""
    idx = slice(None) if idx is None else idx
    return selection_score(
        [sum(w * c[n][idx] for n, w in zip(names, weights, strict=False)) for c in conditions], y[idx], datasets[idx]
    )


def grid_search(conditions: list[dict[str, np.ndarray]], y, datasets, grid=GRID) -> tuple[float, tuple]:
    """Best weight vector (at least two families weighted) on the full validation set: (score, weights);
    ties go to the smaller total weight."""
    names = list(conditions[0])
    candidates = [w for w in itertools.product(grid, repeat=len(names)) if sum(x > 0 for x in w) >= 2]
    return max(((score(conditions, ws, names, y, datasets), ws) for ws in candidates), key=lambda t: (t[0], -sum(t[1])))


def choose(
    probs: dict[str, np.ndarray],
    y,
    datasets,
    speakers,
    grid=GRID,
    bootstraps: int = BOOTSTRAPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    simulated: dict[str, dict[str, np.ndarray]] | None = None,
) -> dict:
    """The ensemble rule. probs {family: (n_clips, C)} on the validation clips, their labels, datasets, speakers
    -> {"members", "weights", "val_cb_uar", "decision": {...how it decided}}. With `simulated` ({condition:
    {family: probabilities}}: the same clips through simulated conditions, same order) every candidate is scored
    by the mean over clean and those conditions, like the families' checkpoints; val_cb_uar is then that mean."""
    names = list(probs)
    y, datasets = np.asarray(y), np.asarray(datasets)
    by_condition = {"clean": probs, **(simulated or {})}
    conditions = list(by_condition.values())
    one_hot = {n: tuple(1 if m == n else 0 for m in names) for n in names}
    singles = {n: score(conditions, one_hot[n], names, y, datasets) for n in names}
    best_single = max(singles, key=singles.get)
    mix_score, mix = grid_search(conditions, y, datasets, grid)
    diffs = np.array(
        [
            score(conditions, mix, names, y, datasets, i)
            - score(conditions, one_hot[best_single], names, y, datasets, i)
            for i in speaker_resamples(speakers, datasets, bootstraps, seed)
        ]
    )
    wins = float((diffs > 0).mean())
    take_mix = mix_score > singles[best_single] and wins >= confidence
    chosen = mix if take_mix else one_hot[best_single]
    weights = [float(w) for w in chosen]
    decision = {
        "rule": f"the best single family unless the best grid mix beats it on at least {confidence:.0%} of "
        f"{bootstraps} speaker bootstrap resamples of the validation set (within each dataset)",
        "scored_on": "clean"
        if len(by_condition) == 1
        else f"mean of {', '.join(by_condition)} (validation copy 0 of each simulated condition)",
        "chosen": "mix" if take_mix else f"single: {best_single}",
        "val_cb_uar_single": singles,
        "best_single": best_single,
        "best_mix": {"weights": [float(w) for w in mix], "val_cb_uar": mix_score},
        "margin": mix_score - singles[best_single],
        "bootstrap": {
            "resamples": bootstraps,
            "mix_wins_share": wins,
            "margin_mean": float(diffs.mean()),
            "margin_std": float(diffs.std()),
            "margin_5th_percentile": float(np.percentile(diffs, 5)),
        },
        "validation": {"clips": int(len(y)), "speakers": int(len(set(speakers)))},
    }
    if len(by_condition) > 1:
        decision["by_condition"] = {
            cond: {
                "chosen": score([c], chosen, names, y, datasets),
                **{n: score([c], one_hot[n], names, y, datasets) for n in names},
            }
            for cond, c in by_condition.items()
        }
    return {
        "members": names,
        "weights": weights,
        "val_cb_uar": mix_score if take_mix else singles[best_single],
        "decision": decision,
    }


def decision_report(spec: dict) -> str:
    """Markdown: how the rule decided."""
    d = spec["decision"]
    b = d["bootstrap"]
    lines = [
        "# How the ensemble was chosen",
        "",
        f"Rule: {d['rule']}.",
        "",
        f"Every candidate is scored on the validation speakers by: {d.get('scored_on', 'clean')} corpus-balanced UAR.",
        "",
        f"Validation: {d['validation']['clips']} clips of {d['validation']['speakers']} speakers "
        "(never the test speakers). Generated by `python -m train.ensemble`.",
        "",
        "| candidate | weights | val cbUAR |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | single | {s:.4f} |" for n, s in d["val_cb_uar_single"].items()]
    mix_weights = d["best_mix"]["weights"]
    lines += [
        f"| best mix | {', '.join(f'{n} {w:g}' for n, w in zip(spec['members'], mix_weights, strict=False))} "
        f"| {d['best_mix']['val_cb_uar']:.4f} |",
        "",
        f"The mix beats the best single family ({d['best_single']}) by {d['margin']:+.4f} on the whole "
        f"validation set; over {b['resamples']} speaker resamples the margin is {b['margin_mean']:+.4f} "
        f"+- {b['margin_std']:.4f} (5th percentile {b['margin_5th_percentile']:+.4f}) and the mix wins on "
        f"{b['mix_wins_share']:.0%} of them.",
        "",
        f"**Chosen: {d['chosen']}**, validation cbUAR {spec['val_cb_uar']:.4f}.",
        "",
    ]
    if "by_condition" in d:
        names = [n for n in d["by_condition"]["clean"] if n != "chosen"]
        lines += [
            "Each condition alone:",
            "",
            "| condition | " + " | ".join(names) + " | chosen |",
            "|---" * (len(names) + 2) + "|",
        ]
        lines += [
            f"| {cond} | " + " | ".join(f"{v[n]:.4f}" for n in names) + f" | {v['chosen']:.4f} |"
            for cond, v in d["by_condition"].items()
        ]
        lines.append("")
    return "\n".join(lines)


def family_probabilities(rec: Recognizer, sets: dict, cdir: Path, whisper: str | None = None) -> dict:
    """{condition: ValidationSet} (train.validation) -> {condition: {family: (n_clips, n_labels)}}: each running
    family's clip probabilities, calibrated as the app runs it (the window logits of train.validation_logits,
    computed once per checkpoint)."""
    out: dict[str, dict[str, np.ndarray]] = {c: {} for c in sets}
    for family in rec.models:
        logits = validation_logits(rec.dir / f"{family}.pt", sets, cdir, whisper)
        t, b = rec.calibration.get(family, (1.0, None))
        for condition, p in clip_probabilities(logits, sets, t, b).items():
            out[condition][family] = p
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Choose the ensemble weights on the validation speakers.")
    ap.add_argument("--checkpoints")
    ap.add_argument("--whisper")
    ap.add_argument("--cache", help="feature cache holding the validation copies (default $EMOTION_CACHE_DIR)")
    ap.add_argument(
        "--condition",
        choices=list(CONDITION_SETS) + ["clean"],
        default="all",
        help="score candidates on clean validation clips, on the mean of clean and classroom (both), or "
        "on the mean over clean, classroom, young and young+classroom (all, default)",
    )
    args = ap.parse_args(argv)
    rec = Recognizer(args.checkpoints, None, args.whisper, fast=False)
    conditions = CONDITION_SETS.get(args.condition, ("clean",))
    try:
        cdir = cache_dir(args.cache)
        sets = validation_sets(cdir, conditions[1:])
    except FileNotFoundError as e:
        raise SystemExit(
            f"{e}: run python -m train.copies --condition C --split val for every condition (or pass --condition clean)"
        ) from None
    rows = sets["clean"].rows
    by_condition = family_probabilities(rec, sets, cdir, args.whisper)
    probs = by_condition.pop("clean")
    y = [LABEL_INDEX[r["label"]] for r in rows]
    ds = [r["dataset"] for r in rows]
    chosen = choose(probs, y, ds, [r["speaker"] for r in rows], simulated=by_condition)
    decision = chosen.pop("decision")
    spec = {
        **chosen,
        "val_cb_uar_plain_mean": score(
            [probs, *by_condition.values()], [1] * len(probs), list(probs), np.asarray(y), np.asarray(ds)
        ),
        "val_cb_uar_single": decision["val_cb_uar_single"],
        "chosen": decision["chosen"],
        "chosen_on": f"{len(rows)} clips of the validation speakers, {', '.join(conditions)}",
        "checkpoint_sha256": {f: file_sha256(rec.dir / f"{f}.pt") for f in probs},  # what val_cb_uar_single measured
        "decision_file": "ensemble_decision.json",
    }
    out = rec.dir / ENSEMBLE_FILE
    out.write_text(json.dumps(spec, indent=1) + "\n")
    (rec.dir / "ensemble_decision.json").write_text(json.dumps(decision, indent=1) + "\n")
    (REPO / "reports" / "ensemble_choice.md").write_text(decision_report({**spec, "decision": decision}))
    print(json.dumps({**spec, "decision": decision}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
