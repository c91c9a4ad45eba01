"""When to say "not sure", and how far the probabilities can be trusted: read from reports/reliability.json
(`python -m train.reliability`, on the validation speakers, clean and in the classroom; never the test speakers).

The rule: a model is not sure when its (calibrated) top probability is below the threshold chosen there, the level
below which its answers were wrong more often than right; the models together are not sure when no answer is given
by more than half of the families running, or when the leading answer is not sure."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from emotion_core.labels import LABELS, MODEL_NAMES
from emotion_core.models.registry import FAMILIES

from .plots import MODEL_COLOURS
from .report_figures import PANEL_TITLES, REPORT_DIR

RELIABILITY_REPORT = "reliability.json"


def load_reliability(report_dir: Path = REPORT_DIR) -> dict:
    """train.reliability's document, or {} when there is none."""
    try:
        return json.loads((Path(report_dir) / RELIABILITY_REPORT).read_text())
    except (OSError, ValueError):
        return {}


def threshold_sentence(threshold: float) -> str:
    """What the threshold means, in one sentence."""
    return (
        f"A model says **not sure** when its top probability is below **{threshold:.0%}**: on voices the models never "
        "trained on (the validation speakers), answers less sure than that were wrong more often than right."
    )


def not_sure(probabilities: dict[str, np.ndarray], threshold: float) -> dict[str, bool]:
    """{model: (n_labels,) probabilities} -> {model: its top probability is below the threshold}."""
    return {name: float(np.max(p)) < threshold for name, p in probabilities.items()}


def families_disagree(probabilities: dict[str, np.ndarray]) -> bool:
    """True when no answer is given by more than half of the families among the outputs (the ensemble is not one)."""
    answers = [LABELS[int(np.argmax(p))] for name, p in probabilities.items() if name in FAMILIES]
    return bool(answers) and Counter(answers).most_common(1)[0][1] * 2 <= len(answers)


def verdict_unsure(probabilities: dict[str, np.ndarray], lead: str, threshold: float) -> str | None:
    """Why the models together are not sure ('the models disagree', 'the <lead> is not sure'), or None."""
    if families_disagree(probabilities):
        return "the models disagree"
    if lead in probabilities and not_sure({lead: probabilities[lead]}, threshold)[lead]:
        return f"the {MODEL_NAMES.get(lead, lead)} is not sure"
    return None


def reliability_figure(doc: dict) -> go.Figure | None:
    """One panel per condition: each family's share of right answers against its mean top probability, per bin
    (points sized by their clips), the diagonal of perfect calibration and the threshold. None without data."""
    if not doc.get("families"):
        return None
    conditions = doc["conditions"]
    fig = make_subplots(
        rows=1,
        cols=len(conditions),
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=[PANEL_TITLES.get(c, c) for c in conditions],
    )
    for col, condition in enumerate(conditions, start=1):
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                line=dict(color="#999999", dash="dot", width=1),
                name="as sure as right",
                showlegend=col == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
        for family, f in doc["families"].items():
            bins = [b for b in f["conditions"].get(condition, []) if b["n"] >= 5]
            shown = MODEL_NAMES.get(family, family) + ("" if f.get("calibrated") else " (uncalibrated)")
            fig.add_trace(
                go.Scatter(
                    x=[b["confidence"] for b in bins],
                    y=[b["accuracy"] for b in bins],
                    mode="lines+markers",
                    name=shown,
                    legendgroup=family,
                    showlegend=col == 1,
                    line=dict(color=MODEL_COLOURS.get(family), width=2),
                    marker=dict(size=[4 + 2 * np.sqrt(b["n"]) / 3 for b in bins], color=MODEL_COLOURS.get(family)),
                    customdata=[b["n"] for b in bins],
                    hovertemplate=shown + ": %{x:.0%} sure, %{y:.0%} right (%{customdata} clips)<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.add_vline(x=doc["threshold"], line=dict(color="#d62728", width=1, dash="dash"), row=1, col=col)
        # ticks off the panel edges, so that one panel's 100% never meets the next one's 0% on a phone
        fig.update_xaxes(range=[0, 1], tickvals=[0.25, 0.5, 0.75], tickformat=".0%", row=1, col=col)
    # one axis title for the panels side by side
    fig.add_annotation(
        text="how sure (top probability)",
        xref="paper",
        yref="paper",
        x=0.5,
        y=-0.09,
        yanchor="top",
        showarrow=False,
        font_size=13,
    )
    fig.update_yaxes(range=[0, 1.04], tickformat=".0%", title="share right", row=1, col=1)  # room for 100% points
    fig.update_layout(
        height=450,
        margin=dict(l=60, r=20, t=40, b=120),
        legend=dict(orientation="h", y=-0.2, yanchor="top", x=0, xanchor="left"),
    )
    return fig
