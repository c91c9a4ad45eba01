"""Plotly figures of one analysis. Each function returns a Figure and needs no Gradio."""

from __future__ import annotations

import threading
from functools import lru_cache, wraps

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from emotion_core.features import DEFAULT_FEATURES, mel_centres_hz
from emotion_core.labels import LABELS, MODEL_NAMES

from .pitch import pitch_contour, voiced_median

# Two palettes that never share a colour (tests/test_palettes.py checks they stay apart): emotions in the
# colours people expect (angry red, sad blue), models in hues no emotion uses. Every figure uses them.
LABEL_COLOURS = {
    "angry": "#d62728",
    "disgust": "#7a9a01",
    "fearful": "#9467bd",
    "happy": "#f2b701",
    "neutral": "#a0a0a0",
    "sad": "#1f77b4",
    "surprised": "#ff7f0e",
}
MODEL_COLOURS = {"cnn1d": "#00a3a3", "lstm": "#e377c2", "cnn2d": "#8c564b", "whisper": "#303f9f", "ensemble": "#5a5a5a"}
HUMAN_COLOUR = "#7f7f7f"  # the human listeners' line (dashed) in the How-it-works charts
LOUDNESS_COLOUR = "#888888"
PITCH_COLOUR = "#2ca02c"
HZ_TICKS = (100, 500, 1000, 2000, 4000, 8000)  # 250 sat too close to 100 and 500 on the mel scale
DB_PER_NEPER = 10 / np.log(10)  # natural-log power -> dB
DB_RANGE = 80  # dB below the loudest cell that the colour scale spans
DB_TICKS = tuple(range(0, DB_RANGE + 1, 20))  # levels above the floor; labelled in dB from the loudest (0)
MAX_COLUMNS = (
    800  # spectrogram columns sent to the browser: about the plot's width in pixels on a laptop (8 s at 10 ms)
)


def built_once(build):
    """A figure part plotly builds and checks once, then every answer copies (the spectrogram's skeleton, the bars'
    layout...): cached per arguments, and built by one request at a time, so a class's first burst after a start
    builds it once instead of once per pupil."""
    cached = lru_cache(maxsize=8)(build)
    lock = threading.Lock()

    @wraps(build)
    def get(*args):
        with lock:
            return cached(*args)

    return get


def _band_ticks(cfg=DEFAULT_FEATURES):
    """Mel band positions of round frequencies, and their labels in Hz."""
    centres = mel_centres_hz(cfg)
    vals = [
        float(np.interp(f, centres, np.arange(cfg.n_mels))) for f in HZ_TICKS if centres[0] <= f <= centres[-1] * 1.05
    ]
    text = [f"{f // 1000}k" if f >= 1000 else str(f) for f in HZ_TICKS if centres[0] <= f <= centres[-1] * 1.05]
    return vals, text


def display_columns(x: np.ndarray, step: int, reduce=np.mean) -> np.ndarray:
    """(..., frames) -> (..., frames // step): each column the `reduce` of `step` frames (step 1: unchanged)."""
    if step <= 1:
        return x
    n = x.shape[-1] // step * step
    return reduce(x[..., :n].reshape(*x.shape[:-1], -1, step), axis=-1)


def display_levels(log_mel: np.ndarray, max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, np.ndarray, int]:
    """What a spectrogram sends to the browser. (n_mels, frames) natural-log mel power -> (power (n_mels,
    columns) float64, level (n_mels, columns) uint8: whole dB above the floor DB_RANGE below the loudest cell,
    step: frames a column). At most max_columns columns, each the mean power of step frames."""
    step = max(1, int(np.ceil(log_mel.shape[1] / max_columns)))
    power = display_columns(np.exp(log_mel.astype(np.float64)), step)
    db = DB_PER_NEPER * np.log(power + 1e-30)
    level = np.round(np.clip(db - (db.max() - DB_RANGE), 0, None)).astype(np.uint8)  # one byte a cell
    return power, level, step


def spectrogram_figure(
    log_mel: np.ndarray, start_s: float, duration_s: float, speech: np.ndarray | None = None
) -> go.Figure:
    """Mel spectrogram (time in s, frequency in Hz on the mel scale) with loudness and pitch above it.

    log_mel: (n_mels, frames) natural-log mel power of the prepared speech that starts at start_s; speech: that audio,
    for the pitch contour (None: no pitch). At most MAX_COLUMNS columns go to the browser (a long clip's frames are
    averaged in power, its pitch is the median of the voiced frames); levels in whole dB, 0 dB the loudest. The
    figure's layout and trace styles are built and checked by plotly once (spectrogram_skeleton); each clip only puts
    its arrays and its time range into a copy (plotly's checks took most of a first answer's drawing)."""
    cfg = DEFAULT_FEATURES
    power, level, step = display_levels(log_mel)
    frames = power.shape[1]
    t = (start_s + np.arange(frames) * step / cfg.frames_per_s).astype(np.float32)
    loud = (DB_PER_NEPER * np.log(power.sum(0) + 1e-10)).astype(np.float32)
    values = {"loudness (dB)": {"x": t, "y": loud}, "mel spectrogram": {"x": t, "z": level}}
    if speech is not None:
        f0 = display_columns(pitch_contour(speech, log_mel.shape[1]), step, voiced_median).astype(np.float32)
        f0[loud < loud.max() - 30] = np.nan  # quiet columns
        values["pitch (Hz)"] = {"x": t, "y": f0}
    skeleton = spectrogram_skeleton(speech is not None)
    data = [{**trace, **values[trace["name"]]} for trace in skeleton["data"]]
    time_axis = "xaxis" + skeleton["data"][-1]["xaxis"][1:]  # the spectrogram's own (bottom) time axis
    layout = {**skeleton["layout"], time_axis: {**skeleton["layout"][time_axis], "range": [0, duration_s]}}
    return go.Figure({"data": data, "layout": layout}, _validate=False)


@built_once
def spectrogram_skeleton(with_pitch: bool) -> dict:
    """The spectrogram figure without its values, made once with plotly's subplots and checks: {"data": trace
    properties without x, y, z (named "loudness (dB)", ["pitch (Hz)",] "mel spectrogram"), "layout": ...}."""
    cfg = DEFAULT_FEATURES
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.28, 0.72],
        vertical_spacing=0.04,
        specs=[[{"secondary_y": True}], [{}]],
    )
    fig.add_trace(go.Scatter(name="loudness (dB)", line=dict(color=LOUDNESS_COLOUR, width=1)), row=1, col=1)
    if with_pitch:
        fig.add_trace(
            go.Scatter(name="pitch (Hz)", mode="lines", line=dict(color=PITCH_COLOUR, width=2)),
            row=1,
            col=1,
            secondary_y=True,
        )
    fig.add_trace(
        go.Heatmap(
            zmin=0,
            zmax=DB_RANGE,
            colorscale="Magma",
            name="mel spectrogram",
            colorbar=dict(
                title="dB<br>(0: the<br>loudest)",
                len=0.7,
                y=0.36,
                tickvals=DB_TICKS,
                ticktext=[f"{v - DB_RANGE}".replace("-", "−") for v in DB_TICKS],
            ),
            hovertemplate="%{x:.2f} s, band %{y}<br>%{z} dB<extra></extra>",
        ),
        row=2,
        col=1,
    )
    vals, text = _band_ticks(cfg)
    fig.update_yaxes(title_text="frequency (Hz, mel scale)", tickvals=vals, ticktext=text, row=2, col=1)
    # the two curves are named on their own axes (no legend that could cover the panel on a phone)
    fig.update_yaxes(title_text="loudness (dB)", title_font_color=LOUDNESS_COLOUR, row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="pitch (Hz)", title_font_color=PITCH_COLOUR, row=1, col=1, secondary_y=True)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_layout(
        height=450, margin=dict(l=60, r=20, t=40, b=40), title="What the models hear: mel spectrogram", showlegend=False
    )
    skeleton = fig.to_plotly_json()
    for trace in skeleton["data"]:
        trace.setdefault("xaxis", "x")
    return skeleton


def probabilities_figure(probabilities: dict[str, np.ndarray]) -> go.Figure:
    """Grouped horizontal bars: one trace per model, one group per label (labels stay readable on a
    phone, the legend sits above the plot). probabilities: {model: (n_labels,)}. Like the spectrogram, the
    layout is checked by plotly once (probabilities_layout) and each answer only fills in its bars."""
    bars = []
    for name, p in probabilities.items():  # with the reversed y axis the first model is the top bar of each group
        shown = MODEL_NAMES.get(name, name)
        bars.append(
            {
                "type": "bar",
                "y": list(LABELS),
                "x": np.asarray(p, dtype=float),
                "name": shown,
                "orientation": "h",
                "marker": {"color": MODEL_COLOURS.get(name)},
                "hovertemplate": "%{y}: %{x:.0%}<extra>" + shown + "</extra>",
            }
        )
    return go.Figure({"data": bars, "layout": probabilities_layout()}, _validate=False)


@built_once
def probabilities_layout() -> dict:
    fig = go.Figure()
    fig.update_layout(
        barmode="group",
        height=120 + 45 * len(LABELS),
        margin=dict(l=80, r=20, t=40, b=40),
        xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
        yaxis=dict(autorange="reversed", title=None),  # no title: the legend takes the top, even on a phone
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, xanchor="left"),
    )
    return fig.to_plotly_json()["layout"]


def timeline_figure(
    times_s: list,
    window_probabilities: np.ndarray,
    duration_s: float,
    model: str = "ensemble",
    not_sure: float | None = None,
) -> go.Figure:
    """Probability of each label over time at the window centres, on the spectrogram's time axis.
    times_s: [(start_s, end_s)] of each window; window_probabilities: (windows, n_labels); not_sure: the "not sure"
    threshold (webapp.certainty), drawn as a dashed line: a window whose top answer stays under it is not sure.
    Like the spectrogram, the layout and line styles are checked by plotly once (timeline_layout); each answer fills
    in its lines and its time range."""
    centres = np.array([(a + b) / 2 for a, b in times_s], dtype=np.float32)
    lines = [
        {
            "type": "scatter",
            "x": centres,
            "y": np.asarray(window_probabilities[:, k], dtype=np.float32),
            "name": lab,
            "mode": "lines+markers",
            "line": {"color": LABEL_COLOURS[lab]},
        }
        for k, lab in enumerate(LABELS)
    ]
    layout = timeline_layout(model, not_sure)
    layout = {**layout, "xaxis": {**layout["xaxis"], "range": [0, duration_s]}}
    return go.Figure({"data": lines, "layout": layout}, _validate=False)


@built_once
def timeline_layout(model: str, not_sure: float | None) -> dict:
    """The timeline's layout for `model`'s answers and the "not sure" line (None: no line), without a time range."""
    fig = go.Figure()
    fig.update_layout(
        height=340,
        margin=dict(l=60, r=20, t=40, b=40),  # no title: the legend takes the top
        xaxis=dict(title="time (s), 3 s windows over the speech"),
        yaxis=dict(range=[0, 1], tickformat=".0%", title=f"probability ({MODEL_NAMES.get(model, model)})"),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, xanchor="left"),
    )
    if not_sure is not None:
        fig.add_hline(
            y=not_sure,
            line=dict(color="#666666", width=1, dash="dash"),
            annotation_text="not sure below",
            annotation_position="bottom right",
            annotation_font_size=11,
        )
    return fig.to_plotly_json()["layout"]


def explanation_figure(
    log_mel: np.ndarray,
    maps: dict[str, np.ndarray],
    start_s: float,
    labels: dict[str, str],
    duration_s: float | None = None,
) -> go.Figure:
    """The explained window's spectrogram once per model, with the occlusion map drawn over it.

    log_mel: (n_mels, frames) model window, possibly padded with silence (pad_value) around a short clip;
    maps: {model: (n_mels, frames) drop in the chosen label's probability when that patch is hidden};
    start_s: time of the window's first frame of audio (not padding), in seconds of the clip given;
    labels: {model: label explained}; duration_s: the clip's length, for the spectrogram's time axis.
    Padding columns are cut away, so the panels share the spectrogram's time axis, and one colour scale
    (0 to the largest drop of any panel) serves every panel."""
    cfg = DEFAULT_FEATURES
    audio_cols = np.flatnonzero((log_mel > cfg.pad_value + 1e-3).any(0))
    keep = slice(int(audio_cols[0]), int(audio_cols[-1]) + 1) if len(audio_cols) else slice(None)
    log_mel = log_mel[:, keep]
    maps = {n: m[:, keep] for n, m in maps.items()}
    names = list(maps)
    cols = 2 if len(names) > 1 else 1
    rows = int(np.ceil(len(names) / cols)) or 1
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"{MODEL_NAMES.get(n, n)}: why '{labels[n]}'" for n in names],
        shared_xaxes=True,
        vertical_spacing=0.12,
        horizontal_spacing=0.08,
    )
    t = start_s + np.arange(log_mel.shape[1]) / cfg.frames_per_s
    db = log_mel * DB_PER_NEPER
    vals, text = _band_ticks(cfg)
    peak = max([float(np.clip(m, 0, None).max()) for m in maps.values()] + [1e-6])
    for i, name in enumerate(names):
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(
            go.Heatmap(
                x=t,
                z=db,
                colorscale="Greys",
                reversescale=True,
                showscale=False,
                zmin=float(db.max() - DB_RANGE),
                zmax=float(db.max()),
                hoverinfo="skip",
            ),
            row=r,
            col=c,
        )
        m = maps[name]
        fig.add_trace(
            go.Heatmap(
                x=t,
                z=np.where(m > 0.1 * peak, m, np.nan),
                colorscale="Reds",
                opacity=0.6,
                zmin=0,
                zmax=peak,
                showscale=(i == 0),
                colorbar=dict(title="drop in<br>probability", tickformat=".0%"),
                hovertemplate="%{x:.2f} s<br>hiding this lowers '"
                + labels[name]
                + "' by %{z:.0%}<extra>"
                + MODEL_NAMES.get(name, name)
                + "</extra>",
            ),
            row=r,
            col=c,
        )
        fig.update_yaxes(tickvals=vals, ticktext=text, title_text="frequency (Hz)" if c == 1 else None, row=r, col=c)
        whole_clip = duration_s is not None and duration_s <= cfg.window_s + 0.5  # else zoom on the window
        fig.update_xaxes(
            range=[0, duration_s] if whole_clip else None, title_text="time (s)" if r == rows else None, row=r, col=c
        )
    fig.update_layout(
        height=260 * rows + 80,
        margin=dict(l=60, r=20, t=80, b=40),
        title="Which parts drove each decision (red: hiding that patch lowers the answer's probability)",
    )
    return fig
