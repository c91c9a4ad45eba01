"""Pictures of the committed evaluation for the "How it works" tab, read from reports/*.json (no number is
written here except the human listeners' published accuracy), and the pipeline picture of one clip.

A report is the JSON of `python -m train.evaluate`: {"labels", "models": {name: {"overall", "per_dataset":
{dataset: {"n", "accuracy", "uar", ...}}, "confusion": (n_labels, n_labels) counts, rows true}}}. Results under
other conditions (classroom, young, young+classroom) sit beside the clean ones in its "conditions"; classroom
results may also be a second report of the same shape (reports/classroom.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from corpus.conditions import CONDITIONS
from emotion_core.audio import SAMPLE_RATE
from emotion_core.features import DEFAULT_FEATURES
from emotion_core.labels import LABELS, MODEL_NAMES
from emotion_core.paths import PROJECT_DIR

from .plots import DB_RANGE, HUMAN_COLOUR, MODEL_COLOURS, _band_ticks, built_once, display_levels

REPORT_DIR = PROJECT_DIR / "reports"
CLEAN_REPORT = "test.json"  # the test speakers, clean studio audio
CLASSROOM_REPORT = "classroom.json"  # the same speakers under classroom conditions (when evaluated)
HUMAN_LISTENER_ACCURACY = 0.409  # CREMA-D listeners, voice only (Cao et al., 2014); a published figure
BALANCED = "all (corpus-balanced)"
WAVEFORM_POINTS = 2000  # samples drawn of the waveform (min/max envelope beyond that)
PIPELINE_MAX_S = 6.0  # s of a clip drawn in the pipeline picture
CONFUSION_FONT_PX = 12  # the confusion matrix's cell numbers: "100%" fits a cell at phone width (390 px)


def load_reports(report_dir: Path = REPORT_DIR) -> dict[str, dict]:
    """{condition: report} for the conditions that have results, in CONDITIONS order ({} when none do)."""
    found = {}
    for condition, name in (("clean", CLEAN_REPORT), ("classroom", CLASSROOM_REPORT)):
        try:
            found[condition] = json.loads((Path(report_dir) / name).read_text())
        except (OSError, ValueError):
            continue
    clean = found.get("clean", {})
    for condition, c in clean.get("conditions", {}).items():  # train.evaluate --condition all writes them here
        if condition != "clean" and condition not in found:
            found[condition] = {"labels": clean.get("labels", list(LABELS)), "models": c["models"]}
    return {c: found[c] for c in CONDITIONS if c in found}


def corpus_balanced_uar(entry: dict) -> float:
    """Mean over datasets of the per-dataset UAR (the headline metric of reports/test.md)."""
    per = entry["per_dataset"]
    return float(np.mean([v["uar"] for v in per.values()])) if per else float("nan")


def model_order(reports: dict[str, dict]) -> list[str]:
    """Models in the order of the clean report (families, then the ensemble)."""
    first = next(iter(reports.values()), {"models": {}})
    return list(first["models"])


PANEL_TITLES = {
    "clean": "clean audio",
    "classroom": "in a classroom",
    "young": "a pupil's voice",
    "young+classroom": "pupil in class",
}  # short: two fit side by side on a phone
PANEL_HEIGHT_PX = 430
HUMAN_DATASET = "CREMA-D"  # the listeners' accuracy was measured on CREMA-D only: its line is drawn there only


def uar_figure(reports: dict[str, dict]) -> go.Figure:
    """Bars of each model's UAR per test dataset and corpus-balanced, one panel per condition with results
    (two panels a row), with the human listeners' accuracy drawn across the CREMA-D group. The legend sits
    above the plot; each panel's title sits inside its panel."""
    conditions = [c for c in CONDITIONS if c in reports]
    n_rows, n_cols = -(-max(len(conditions), 1) // 2), min(max(len(conditions), 1), 2)
    fig = make_subplots(rows=n_rows, cols=n_cols, shared_yaxes=True, horizontal_spacing=0.04, vertical_spacing=0.08)
    for i, condition in enumerate(conditions):
        row, col = i // 2 + 1, i % 2 + 1
        models = reports[condition]["models"]
        x = []
        for name in model_order(reports):
            if name not in models:
                continue
            entry = models[name]
            datasets = list(entry["per_dataset"])
            x = datasets + [BALANCED]
            y = [entry["per_dataset"][d]["uar"] for d in datasets] + [corpus_balanced_uar(entry)]
            n = [entry["per_dataset"][d]["n"] for d in datasets] + [entry["overall"]["n"]]
            shown = MODEL_NAMES.get(name, name)
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=y,
                    name=shown,
                    legendgroup=name,
                    showlegend=i == 0,
                    customdata=n,
                    marker_color=MODEL_COLOURS.get(name),
                    text=[f"{v:.0%}" for v in y],
                    textposition="outside",
                    textfont_size=9,
                    cliponaxis=False,
                    hovertemplate="%{x}: %{y:.1%} UAR (%{customdata} clips)<extra>" + shown + "</extra>",
                ),
                row=row,
                col=col,
            )
        if HUMAN_DATASET in x:  # a category's group spans its index +- 0.5 on the axis
            k = x.index(HUMAN_DATASET)
            fig.add_shape(
                type="line",
                x0=k - 0.45,
                x1=k + 0.45,
                y0=HUMAN_LISTENER_ACCURACY,
                y1=HUMAN_LISTENER_ACCURACY,
                line=dict(color=HUMAN_COLOUR, dash="dash", width=2),
                legendgroup="human",
                showlegend=i == 0,
                name=f"human listeners ({HUMAN_DATASET}) {HUMAN_LISTENER_ACCURACY:.1%}",
                row=row,
                col=col,
            )
        if len(conditions) > 1:
            axis = "" if i == 0 else i + 1
            fig.add_annotation(
                text=PANEL_TITLES[condition],
                showarrow=False,
                font_size=12,
                x=0.5,
                y=1.0,
                xref=f"x{axis} domain",
                yref=f"y{axis} domain",
                xanchor="center",
                yanchor="top",
            )
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title_text="UAR", col=1)
    fig.update_layout(
        barmode="group",
        height=PANEL_HEIGHT_PX * n_rows + 30,
        margin=dict(l=60, r=20, t=40, b=40),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, xanchor="left"),
    )
    return fig


def confusion_figure(reports: dict[str, dict], name: str, condition: str = "clean") -> go.Figure:
    """One model's confusion matrix as a heatmap: rows the true emotion, columns the model's answer, each
    row in percent of that emotion's clips (the counts in the hover)."""
    report = reports.get(condition) or {}
    entry = report.get("models", {}).get(name)
    fig = go.Figure()
    if entry is None:
        fig.update_layout(title=f"No {condition} results for {MODEL_NAMES.get(name, name)}", height=200)
        return fig
    labels = list(report.get("labels", LABELS))
    counts = np.asarray(entry["confusion"], dtype=float)
    totals = counts.sum(1, keepdims=True)
    share = np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)
    text = [[f"{v:.0%}" if np.isfinite(v) else "" for v in row] for row in share]
    # every cell prints its share, so no colour bar (it took a third of a phone's width); the numbers keep one
    # readable size at any width (plotly shrinks them to the cell otherwise: 7 px on a phone)
    fig.add_trace(
        go.Heatmap(
            z=share,
            x=labels,
            y=labels,
            customdata=counts,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=text,
            texttemplate="%{text}",
            textfont_size=CONFUSION_FONT_PX,
            showscale=False,
            hovertemplate="true %{y}, answered %{x}: %{z:.0%} (%{customdata:.0f} clips)<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="the model's answer", side="bottom", tickangle=-45)
    fig.update_yaxes(title_text="the true emotion", autorange="reversed")
    fig.update_layout(
        height=480,
        margin=dict(l=80, r=10, t=60, b=90),
        title=f"{MODEL_NAMES.get(name, name)}: its answers ({condition})",
    )
    return fig


def pipeline_figure(
    audio: np.ndarray, sample_rate: int, log_mel: np.ndarray, probabilities: dict[str, np.ndarray], start_s: float = 0.0
) -> go.Figure:
    """From sound to answer for one clip, top to bottom: the waveform, the mel spectrogram every model reads,
    and the probabilities the models give. audio: (samples,) the prepared speech starting at start_s;
    log_mel: (n_mels, frames) of it; probabilities: {model: (n_labels,)}. Like the page's figures (webapp.plots),
    the layout and trace styles are checked by plotly once (pipeline_skeleton); each clip fills in its arrays."""
    cfg = DEFAULT_FEATURES
    step = max(1, len(audio) // WAVEFORM_POINTS)
    env = audio[: len(audio) // step * step].reshape(-1, step)
    t_wave = (start_s + np.arange(len(env)) * step / sample_rate).astype(np.float32)
    _power, level, step = display_levels(log_mel)
    t = (start_s + np.arange(level.shape[1]) * step / cfg.frames_per_s).astype(np.float32)
    skeleton = pipeline_skeleton(tuple(probabilities))
    wave, heat, *bars = skeleton["data"]
    data = [
        {**wave, "x": np.repeat(t_wave, 2), "y": np.stack([env.max(1), env.min(1)], 1).ravel().astype(np.float32)},
        {**heat, "x": t, "z": level},
        *({**bar, "y": np.asarray(p, dtype=float)} for bar, p in zip(bars, probabilities.values(), strict=True)),
    ]
    return go.Figure({"data": data, "layout": skeleton["layout"]}, _validate=False)


@built_once
def pipeline_skeleton(models: tuple[str, ...]) -> dict:
    """The pipeline picture without its values, for these models' bars, made once with plotly's subplots and
    checks: {"data": [the waveform, the spectrogram, one bar trace per model], "layout": ...}."""
    cfg = DEFAULT_FEATURES
    families = [n for n in models if n != "ensemble"]
    fig = make_subplots(
        rows=3,
        cols=1,
        vertical_spacing=0.14,
        row_heights=[0.22, 0.38, 0.40],
        subplot_titles=[  # short: they must fit a phone
            "1. the sound wave",
            "2. the mel spectrogram every model reads",
            f"3. the {len(families)} models' answers",
        ],
    )
    fig.add_trace(
        go.Scatter(mode="lines", line=dict(color="#888888", width=1), hoverinfo="skip", showlegend=False),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Heatmap(zmin=0, zmax=DB_RANGE, colorscale="Magma", showscale=False, hoverinfo="skip"),
        row=2,
        col=1,
    )
    for name in models:
        shown = MODEL_NAMES.get(name, name)
        fig.add_trace(
            go.Bar(
                x=list(LABELS),
                name=shown,
                marker_color=MODEL_COLOURS.get(name),
                hovertemplate="%{x}: %{y:.0%}<extra>" + shown + "</extra>",
            ),
            row=3,
            col=1,
        )
    vals, text = _band_ticks(cfg)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_yaxes(tickvals=vals, ticktext=text, title_text="Hz", row=2, col=1)
    fig.update_yaxes(range=[0, 1], tickformat=".0%", row=3, col=1)
    fig.update_layout(
        barmode="group",
        height=760,
        margin=dict(l=50, r=20, t=40, b=40),  # titled by the page's heading
        legend=dict(orientation="h", y=-0.06, yanchor="top", x=0, xanchor="left"),
    )
    return fig.to_plotly_json()


def pipeline_of_analysis(analysis, max_s: float = PIPELINE_MAX_S) -> go.Figure:
    """pipeline_figure of an analysed clip (service.Analysis): its prepared speech from the most confident
    window on, at most max_s seconds, and the clip's probabilities."""
    clip = analysis.prediction.clip
    offset_s = max(0.0, analysis.best_window["start_s"] - clip.speech_s[0])
    a = int(offset_s * SAMPLE_RATE)
    f = int(offset_s * DEFAULT_FEATURES.frames_per_s)
    speech = clip.speech[a : a + int(max_s * SAMPLE_RATE)]
    log_mel = clip.log_mel[:, f : f + int(max_s * DEFAULT_FEATURES.frames_per_s)].float().cpu().numpy()
    probabilities = {n: o.probabilities for n, o in analysis.prediction.models.items()}
    return pipeline_figure(speech, SAMPLE_RATE, log_mel, probabilities, clip.speech_s[0] + offset_s)
