"""Choose the ensemble on the validation speakers: a weighted mean of the families' probabilities.

    python -m train.ensemble --data DIR [--checkpoints DIR]

Every weight vector on a grid (each family an integer weight 0-10; at least two families) is scored by the
validation corpus-balanced UAR of its weighted mean. The best mix is kept only if it beats the best single
family by more than the validation noise (`choose`): the validation speakers are resampled with replacement
(within each dataset, BOOTSTRAPS times), and the mix must beat the best single family on at least
CONFIDENCE of the resamples (a paired, one-sided speaker bootstrap); otherwise the ensemble is the best single
family (its weight 1, the others 0). The choice, its validation score and how the rule decided go to
checkpoints/ensemble.json, checkpoints/ensemble_decision.json and reports/ensemble_choice.md. The test
speakers are not read.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from corpus import is_known_bad, select_clips
from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.paths import data_dir
from emotion_core.recognizer import ENSEMBLE, ENSEMBLE_FILE, Recognizer

from .cache import cache_dir
from .metrics import clip_means, evaluate_predictions
from .report import CONDITION_SETS

GRID = tuple(range(11))  # integer weights 0..10: fine enough for a small tie-breaking share beside a strong member
BOOTSTRAPS = 500  # speaker resamples of the validation set
CONFIDENCE = 0.95  # share of resamples on which a mix must beat the best single family to be chosen
REPO = Path(__file__).resolve().parent.parent


def cb_uar(probs: np.ndarray, y, datasets) -> float:
    """Corpus-balanced UAR of the argmax of clip probabilities (n, C)."""
    return evaluate_predictions(y, probs.argmax(1), datasets, len(LABELS))["corpus_balanced_uar"]


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
    """Mean over conditions (clean, and the classroom copy when given) of the corpus-balanced UAR of the
    weighted mean of the families' probabilities, on clips idx (None: all)."""
    idx = slice(None) if idx is None else idx
    return float(np.mean([cb_uar(sum(w * c[n][idx] for n, w in zip(names, weights, strict=False)), y[idx], datasets[idx])
                          for c in conditions]))


def grid_search(conditions: list[dict[str, np.ndarray]], y, datasets, grid=GRID) -> tuple[float, tuple]:
    """Best weight vector (at least two families weighted) on the full validation set: (score, weights);
    ties go to the smaller total weight."""
    names = list(conditions[0])
    candidates = [w for w in itertools.product(grid, repeat=len(names)) if sum(x > 0 for x in w) >= 2]
    return max(((score(conditions, ws, names, y, datasets), ws) for ws in candidates),
               key=lambda t: (t[0], -sum(t[1])))


def choose(probs: dict[str, np.ndarray], y, datasets, speakers, grid=GRID, bootstraps: int = BOOTSTRAPS,
           confidence: float = CONFIDENCE, seed: int = 0, simulated: dict[str, dict[str, np.ndarray]] | None = None) -> dict:
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
    diffs = np.array([score(conditions, mix, names, y, datasets, i) - score(conditions, one_hot[best_single], names, y, datasets, i)
                      for i in speaker_resamples(speakers, datasets, bootstraps, seed)])
    wins = float((diffs > 0).mean())
    take_mix = mix_score > singles[best_single] and wins >= confidence
    chosen = mix if take_mix else one_hot[best_single]
    weights = [float(w) for w in chosen]
    decision = {
        "rule": f"the best single family unless the best grid mix beats it on at least {confidence:.0%} of "
                f"{bootstraps} speaker bootstrap resamples of the validation set (within each dataset)",
        "scored_on": "clean" if len(by_condition) == 1 else
                     f"mean of {', '.join(by_condition)} (validation copy 0 of each simulated condition)",
        "chosen": "mix" if take_mix else f"single: {best_single}",
        "val_cb_uar_single": singles, "best_single": best_single,
        "best_mix": {"weights": [float(w) for w in mix], "val_cb_uar": mix_score},
        "margin": mix_score - singles[best_single],
        "bootstrap": {"resamples": bootstraps, "mix_wins_share": wins, "margin_mean": float(diffs.mean()),
                      "margin_std": float(diffs.std()), "margin_5th_percentile": float(np.percentile(diffs, 5))},
        "validation": {"clips": int(len(y)), "speakers": int(len(set(speakers)))},
    }
    if len(by_condition) > 1:
        decision["by_condition"] = {
            cond: {"chosen": score([c], chosen, names, y, datasets),
                   **{n: score([c], one_hot[n], names, y, datasets) for n in names}}
            for cond, c in by_condition.items()}
    return {"members": names, "weights": weights, "val_cb_uar": mix_score if take_mix else singles[best_single],
            "decision": decision}


def decision_report(spec: dict) -> str:
    """Markdown: how the rule decided."""
    d = spec["decision"]
    b = d["bootstrap"]
    lines = ["# How the ensemble was chosen", "", f"Rule: {d['rule']}.", "",
             f"Every candidate is scored on the validation speakers by: {d.get('scored_on', 'clean')} "
             "corpus-balanced UAR.", "",
             f"Validation: {d['validation']['clips']} clips of {d['validation']['speakers']} speakers "
             "(never the test speakers). Generated by `python -m train.ensemble`.", "",
             "| candidate | weights | val cbUAR |", "|---|---|---|"]
    lines += [f"| {n} | single | {s:.4f} |" for n, s in d["val_cb_uar_single"].items()]
    lines += [f"| best mix | {', '.join(f'{n} {w:g}' for n, w in zip(spec['members'], d['best_mix']['weights'], strict=False))} "
              f"| {d['best_mix']['val_cb_uar']:.4f} |", "",
              f"The mix beats the best single family ({d['best_single']}) by {d['margin']:+.4f} on the whole "
              f"validation set; over {b['resamples']} speaker resamples the margin is {b['margin_mean']:+.4f} "
              f"+- {b['margin_std']:.4f} (5th percentile {b['margin_5th_percentile']:+.4f}) and the mix wins on "
              f"{b['mix_wins_share']:.0%} of them.", "",
              f"**Chosen: {d['chosen']}**, validation cbUAR {spec['val_cb_uar']:.4f}.", ""]
    if "by_condition" in d:
        names = [n for n in d["by_condition"]["clean"] if n != "chosen"]
        lines += ["Each condition alone:", "", "| condition | " + " | ".join(names) + " | chosen |",
                  "|---" * (len(names) + 2) + "|"]
        lines += [f"| {cond} | " + " | ".join(f"{v[n]:.4f}" for n in names) + f" | {v['chosen']:.4f} |"
                  for cond, v in d["by_condition"].items()]
        lines.append("")
    return "\n".join(lines)


def clip_probabilities(rec: Recognizer, clips) -> dict[str, np.ndarray]:
    """{family: (n_clips, n_labels)} mean window probabilities, on the inference path."""

    from emotion_core.audio import load_audio

    return mean_probabilities(rec, [rec.model_windows(load_audio(c.path)).windows for c in clips])


def mean_probabilities(rec: Recognizer, clip_windows: list) -> dict[str, np.ndarray]:
    """Each clip's windows [(W_i, n_mels, frames)] through every family in one pass -> {family: (n_clips,
    n_labels)} mean window probabilities."""
    import torch

    owners = np.concatenate([np.full(len(w), i) for i, w in enumerate(clip_windows)])
    probs = rec.predict_windows(torch.cat(clip_windows))
    return {name: clip_means(p, owners, len(clip_windows)) for name, p in probs.items() if name != ENSEMBLE}


def simulated_probabilities(rec: Recognizer, clips, cdir: Path, root: Path,
                            condition: str) -> tuple[list[int], dict[str, np.ndarray]]:
    """The validation clips' copy 0 under a simulated condition (the clips `train.evaluate --split val
    --condition C` sees; `python -m train.copies --condition C --split val` caches their log-mels) through every
    family: (indices into clips of the clips the copy holds, {family: (n, n_labels)} mean window probabilities).
    Windows are cut from the cached log-mel as the inference path cuts them (no VAD, evenly spaced)."""
    from emotion_core.features import windows

    from .cache import clip_mel
    from .copies import copy_files, load_copy

    if not copy_files(cdir, "val", 0, condition)[0].exists():
        raise SystemExit(f"no validation {condition} copy in {cdir}: run python -m train.copies --condition "
                         f"{condition} --split val (or pass --condition clean)")
    rows, mels = load_copy(cdir, "val", 0, condition)
    by_path = {r["path"]: r for r in rows}
    found = [(i, by_path.get(Path(c.path).relative_to(root).as_posix())) for i, c in enumerate(clips)
             if Path(c.path).is_relative_to(root)]
    found = [(i, r) for i, r in found if r is not None]
    wins = [windows(clip_mel(mels, r).to(rec.device), rec.features)[0] for _, r in found]
    return [i for i, _ in found], mean_probabilities(rec, wins)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Choose the ensemble weights on the validation speakers.")
    ap.add_argument("--data")
    ap.add_argument("--checkpoints")
    ap.add_argument("--whisper")
    ap.add_argument("--cache", help="feature cache holding the validation classroom copy (default $EMOTION_CACHE_DIR)")
    ap.add_argument("--condition", choices=list(CONDITION_SETS) + ["clean"], default="both",
                    help="score candidates on clean validation clips, on the mean of clean and classroom (both, "
                    "default), or on the mean over clean, classroom, young and young+classroom (all)")
    args = ap.parse_args(argv)
    rec = Recognizer(args.checkpoints, None, args.whisper, fast=False)
    clips = select_clips(data_dir(args.data), "val")
    clips = [c for c in clips if not is_known_bad(c.path)]
    simulated, keep = {}, None
    for condition in CONDITION_SETS.get(args.condition, ("clean",))[1:]:
        kept, simulated[condition] = simulated_probabilities(rec, clips, cache_dir(args.cache), data_dir(args.data),
                                                             condition)
        if keep is not None and kept != keep:  # every condition must score the same clips
            raise SystemExit(f"the {condition} copy holds other clips than the {next(iter(simulated))} copy")
        keep = kept
    clips = clips if keep is None else [clips[i] for i in keep]
    probs = clip_probabilities(rec, clips)
    y = [LABEL_INDEX[c.label] for c in clips]
    ds = [c.dataset for c in clips]
    chosen = choose(probs, y, ds, [c.speaker for c in clips], simulated=simulated)
    decision = chosen.pop("decision")
    spec = {**chosen, "val_cb_uar_plain_mean": cb_uar(sum(probs.values()), y, ds),
            "val_cb_uar_single": decision["val_cb_uar_single"], "chosen": decision["chosen"],
            "chosen_on": f"{len(clips)} clips of the validation speakers", "decision_file": "ensemble_decision.json"}
    out = rec.dir / ENSEMBLE_FILE
    out.write_text(json.dumps(spec, indent=1) + "\n")
    (rec.dir / "ensemble_decision.json").write_text(json.dumps(decision, indent=1) + "\n")
    (REPO / "reports" / "ensemble_choice.md").write_text(decision_report({**spec, "decision": decision}))
    print(json.dumps({**spec, "decision": decision}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
