"""The evaluation report (train.evaluate's JSON, markdown and figure): each model's metrics per condition, the
answer shares, reports of other runs merged in, and their tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corpus import DATASETS, read_speaker_sexes
from corpus.conditions import CONDITIONS
from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.models.registry import FAMILIES
from emotion_core.recognizer import ENSEMBLE

from .metrics import corpus_balanced_uar, evaluate_predictions

CONDITION_SETS = {"both": ("clean", "classroom"), "all": CONDITIONS}  # --condition shorthands
MAX_ANSWER_SHARE = 0.25  # issue 24: no model gives any one emotion more than this share of its answers


def by_group(y, predicted, datasets, groups) -> dict:
    """{group: {"overall": M, "per_dataset": {dataset: M}}}: the metrics of each group's clips (e.g. a sex)."""
    y, predicted, datasets, groups = (np.asarray(a) for a in (y, predicted, datasets, groups))
    out = {}
    for g in sorted(set(groups.tolist())):
        mine = groups == g
        r = evaluate_predictions(y[mine], predicted[mine], datasets[mine], len(LABELS))
        out[g] = {"overall": r["overall"], "per_dataset": r["per_dataset"]}
    return out


def report(preds, clips, sexes: dict[str, str] | None = None) -> dict:
    """Each model's metrics over the clips, per dataset, and per speaker sex ("per_sex"; sexes: speaker -> sex,
    default corpus/splits.csv's)."""
    sexes = read_speaker_sexes() if sexes is None else sexes
    y = [LABEL_INDEX[c.label] for c in clips]
    ds = [c.dataset for c in clips]
    sex = [sexes.get(getattr(c, "speaker", None), "unknown") for c in clips]
    models = {}
    for name, p in preds.items():
        r = evaluate_predictions(y, p, ds, len(LABELS))
        models[name] = {
            "overall": r["overall"],
            "per_dataset": r["per_dataset"],
            "confusion": r["confusion"],
            "no_answer": r["no_answer"],
            "per_sex": by_group(y, p, ds, sex),
        }
    return {"labels": list(LABELS), "models": models}


def shares(counts) -> dict:
    """Counts per label (7,) -> {label: share of the total}."""
    counts = np.asarray(counts, dtype=float)
    return {lab: float(x / max(counts.sum(), 1)) for lab, x in zip(LABELS, counts, strict=False)}


def report_conditions(preds_by_condition: dict, clips) -> dict:
    """{condition: preds} -> the report of every condition; "models" = the first condition's (clean first)."""
    per = {cond: report(p, clips)["models"] for cond, p in preds_by_condition.items()}
    first = next(iter(per))
    true_counts = np.bincount([LABEL_INDEX[c.label] for c in clips], minlength=len(LABELS))
    return {
        "labels": list(LABELS),
        "models": per[first],
        "condition": next((k for k, v in CONDITION_SETS.items() if v == tuple(per)), ",".join(per)),
        "conditions": {cond: {"models": models} for cond, models in per.items()},
        "true_shares": shares(true_counts),
        "answer_shares": {
            cond: {name: shares(np.array(m["confusion"]).sum(0)) for name, m in models.items()}
            for cond, models in per.items()
        },
    }


def merge_reports(base: dict, new: dict) -> dict:
    """Two reports of the same clips (runs of other families or conditions) -> one, in CONDITIONS order; a
    (condition, model) in both takes the new run's result."""
    n = {m["overall"]["n"] for r in (base, new) for c in r["conditions"].values() for m in c["models"].values()}
    if len(n) != 1 or base["true_shares"] != new["true_shares"]:
        raise ValueError("the reports hold different clips; they cannot be merged")
    conds = [c for c in CONDITIONS if c in base["conditions"] or c in new["conditions"]]
    order = [*FAMILIES, ENSEMBLE]

    def ordered(d: dict) -> dict:
        return dict(sorted(d.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))

    per = {
        c: ordered(
            {**base["conditions"].get(c, {}).get("models", {}), **new["conditions"].get(c, {}).get("models", {})}
        )
        for c in conds
    }
    shares = {c: ordered({**base["answer_shares"].get(c, {}), **new["answer_shares"].get(c, {})}) for c in conds}
    merged = {
        **base,
        **new,
        "models": per[conds[0]],
        "conditions": {c: {"models": per[c]} for c in conds},
        "answer_shares": shares,
        "condition": next((k for k, v in CONDITION_SETS.items() if v == tuple(conds)), ",".join(conds)),
    }
    return merged


def _model_tables(models: dict) -> list[str]:
    """Markdown: the headline table, per dataset, and the confusion of every model, for one condition."""
    lines = []
    names = list(models)
    datasets = [d for d in DATASETS if any(d in m["per_dataset"] for m in models.values())]
    lines += [
        "| model | corpus-balanced UAR | "
        + " | ".join(f"{d} UAR" for d in datasets)
        + " | pooled accuracy | pooled UAR | macro-F1 | n |",
        "|---|---|" + "---|" * len(datasets) + "---|---|---|---|",
    ]
    for name in names:
        m = models[name]
        cb = corpus_balanced_uar(m["per_dataset"])
        per = " | ".join(f"{m['per_dataset'][d]['uar']:.3f}" if d in m["per_dataset"] else "-" for d in datasets)
        o = m["overall"]
        lines.append(
            f"| {name} | **{cb:.3f}** | {per} | {o['accuracy']:.3f} | {o['uar']:.3f} | {o['macro_f1']:.3f} | {o['n']} |"
        )
    lines += ["", "Per dataset (accuracy / UAR / macro-F1, n):", ""]
    lines += ["| model | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for name in names:
        m = models[name]["per_dataset"]
        cells = [
            f"{m[d]['accuracy']:.3f} / {m[d]['uar']:.3f} / {m[d]['macro_f1']:.3f} ({m[d]['n']})" if d in m else "-"
            for d in datasets
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in names:
        cm = models[name]["confusion"]
        lines += [
            "",
            f"Confusion of {name} (rows = true, columns = predicted):",
            "",
            "| true \\ pred | " + " | ".join(LABELS) + " |",
            "|---|" + "---|" * len(LABELS),
        ]
        lines += [f"| {lab} | " + " | ".join(map(str, row)) + " |" for lab, row in zip(LABELS, cm, strict=False)]
    return lines


def _side_by_side(result: dict) -> list[str]:
    """Markdown: clean and classroom per family and per dataset, and the share of each model's answers."""
    conds = list(result["conditions"])
    per = {c: result["conditions"][c]["models"] for c in conds}
    names = list(per[conds[0]])
    datasets = [d for d in DATASETS if any(d in m["per_dataset"] for m in per[conds[0]].values())]
    vs = " / ".join(conds)
    lines = [
        f"Corpus-balanced UAR per condition; each dataset's UAR and the pooled accuracy as {vs}:",
        "",
        "| model | "
        + " | ".join(f"cb-UAR {c}" for c in conds)
        + " | "
        + " | ".join(f"{d} UAR" for d in datasets)
        + " | pooled accuracy |",
        "|---|" + "---|" * (len(conds) + len(datasets) + 1),
    ]
    for name in names:
        cbs = " | ".join(f"**{corpus_balanced_uar(per[c][name]['per_dataset']):.3f}**" for c in conds)
        ds = " | ".join(
            " / ".join(
                f"{per[c][name]['per_dataset'][d]['uar']:.3f}" if d in per[c][name]["per_dataset"] else "-"
                for c in conds
            )
            for d in datasets
        )
        acc = " / ".join(f"{per[c][name]['overall']['accuracy']:.3f}" for c in conds)
        lines.append(f"| {name} | {cbs} | {ds} | {acc} |")
    return lines


def _answer_shares(result: dict) -> list[str]:
    lines = [
        (
            f"Share of each model's answers per emotion, beside the true class shares (issue 15: no model should "
            f"give any one emotion more than {MAX_ANSWER_SHARE:.0%} of its answers):"
        ),
        "",
        "| condition | model | " + " | ".join(LABELS) + " | largest share |",
        "|---|---|" + "---|" * (len(LABELS) + 1),
    ]
    true = result["true_shares"]
    lines.append(
        "| - | *true classes* | " + " | ".join(f"{true[lab]:.1%}" for lab in LABELS) + f" | {max(true.values()):.1%} |"
    )
    for cond, models in result["answer_shares"].items():
        for name, sh in models.items():
            top = max(sh, key=sh.get)
            flag = " (over)" if sh[top] > MAX_ANSWER_SHARE else ""
            lines.append(
                f"| {cond} | {name} | "
                + " | ".join(f"{sh[lab]:.1%}" for lab in LABELS)
                + f" | {top} {sh[top]:.1%}{flag} |"
            )
    return lines


def shared_datasets(per_sex: dict) -> list[str]:
    """The datasets every sex has clips of: the fair ground for comparing sexes (SAVEE's speakers are all men)."""
    sets = [set(g["per_dataset"]) for g in per_sex.values()]
    return [d for d in DATASETS if sets and all(d in s for s in sets)]


def by_sex_lines(models: dict) -> list[str]:
    """Markdown: each model's UAR per sex, as the mean over the datasets both sexes speak in (and the clips)."""
    models = {n: m for n, m in models.items() if m.get("per_sex")}
    if not models:
        return []
    sexes = sorted({s for m in models.values() for s in m["per_sex"]})
    shared = shared_datasets(next(iter(models.values()))["per_sex"])
    lines = [
        f"By speaker sex: mean UAR over {' and '.join(shared)} (the datasets with test speakers of both sexes), clips:",
        "",
        "| model | " + " | ".join(sexes) + " |",
        "|---|" + "---|" * len(sexes),
    ]
    for name, m in models.items():
        cells = []
        for s in sexes:
            g = m["per_sex"].get(s)
            n = sum(g["per_dataset"][d]["n"] for d in shared) if g else 0
            cells.append(f"{np.mean([g['per_dataset'][d]['uar'] for d in shared]):.3f} ({n})" if g else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown(result: dict, title: str) -> str:
    lines = [f"# {title}", "", "Corpus-balanced UAR = mean over datasets of the per-dataset UAR (headline metric).", ""]
    conditions = result.get("conditions") or {"clean": {"models": result["models"]}}
    if len(conditions) > 1:
        lines += _side_by_side(result) + [""]
    if "answer_shares" in result:
        lines += _answer_shares(result) + [""]
    for cond, c in conditions.items():
        if len(conditions) > 1 or cond != "clean":
            lines += [f"## Condition: {cond}", ""]
        lines += _model_tables(c["models"]) + [""]
        refused = max((m.get("no_answer", 0) for m in c["models"].values()), default=0)
        lines += (
            [
                f"{refused} clip(s) got no answer here: the app found too little speech in them. Each counts as a "
                "miss (it is in n, not in the confusion matrix).",
                "",
            ]
            if refused
            else []
        )
        lines += by_sex_lines(c["models"]) + [""] if by_sex_lines(c["models"]) else []
    return "\n".join(lines).rstrip("\n") + "\n"


def confusion_figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = result.get("conditions") or {"clean": {"models": result["models"]}}
    names = list(result["models"])
    fig, axes = plt.subplots(
        len(conditions), len(names), figsize=(3.6 * len(names), 3.8 * len(conditions)), squeeze=False
    )
    short = [lab[:4] for lab in LABELS]
    for row, (cond, c) in zip(axes, conditions.items(), strict=False):
        for ax, name in zip(row, names, strict=False):
            cm = np.array(c["models"][name]["confusion"], dtype=float)
            norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            for i in range(len(LABELS)):
                for j in range(len(LABELS)):
                    if cm[i].sum() > 0:
                        ax.text(
                            j,
                            i,
                            f"{norm[i, j]:.2f}".lstrip("0"),
                            ha="center",
                            va="center",
                            fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black",
                        )
            cb = corpus_balanced_uar(c["models"][name]["per_dataset"])
            label = f"{name}, {cond}" if len(conditions) > 1 or cond != "clean" else name
            ax.set_title(f"{label} (cb-UAR {cb:.2f})", fontsize=9)
            ax.set_xticks(range(len(LABELS)), short, rotation=90, fontsize=7)
            ax.set_yticks(range(len(LABELS)), short, fontsize=7)
            ax.set_xlabel("predicted", fontsize=8)
        row[0].set_ylabel("true (row-normalised)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
