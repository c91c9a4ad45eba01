"""Plotly figures of one analysis. Each function returns a Figure and needs no Gradio."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .audio import SAMPLE_RATE
from .features import DEFAULT_FEATURES, mel_centres_hz
from .labels import LABELS

MODEL_COLOURS = {"cnn1d": "#1f77b4", "lstm": "#ff7f0e", "cnn2d": "#2ca02c", "whisper": "#9467bd", "ensemble": "#222222"}
LABEL_COLOURS = dict(zip(LABELS, ["#d62728", "#8c564b", "#9467bd", "#ffbf00", "#7f7f7f", "#1f77b4", "#17becf"]))
HZ_TICKS = (100, 250, 500, 1000, 2000, 4000, 8000)
DB_PER_NEPER = 10 / np.log(10)  # natural-log power -> dB


def _band_ticks(cfg=DEFAULT_FEATURES):
    """Mel band positions of round frequencies, and their labels in Hz."""
    centres = mel_centres_hz(cfg)
    vals = [float(np.interp(f, centres, np.arange(cfg.n_mels))) for f in HZ_TICKS if centres[0] <= f <= centres[-1] * 1.05]
    text = [f"{f // 1000}k" if f >= 1000 else str(f) for f in HZ_TICKS if centres[0] <= f <= centres[-1] * 1.05]
    return vals, text


def pitch_contour(speech: np.ndarray, frames: int) -> np.ndarray:
    """Fundamental frequency (Hz, NaN where unvoiced or quiet) per 10 ms frame of `speech` (16 kHz)."""
    import librosa

    if len(speech) < 2048:
        return np.full(frames, np.nan)
    f0 = librosa.yin(speech, fmin=65, fmax=500, sr=SAMPLE_RATE, frame_length=1024, hop_length=DEFAULT_FEATURES.hop_length)
    f0 = np.asarray(f0[:frames], dtype=float)
    return np.pad(f0, (0, frames - len(f0)), constant_values=np.nan)


def spectrogram_figure(log_mel: np.ndarray, start_s: float, duration_s: float, speech: np.ndarray | None = None,
                       frame_step: int = 1) -> go.Figure:
    """Mel spectrogram (time in s, frequency in Hz on the mel scale) with loudness and pitch above it.

    log_mel: (n_mels, frames) natural-log mel power of the prepared speech that starts at start_s, each
    column frame_step model frames (long clips are averaged down for display); speech: that audio, for
    the pitch contour (None: no pitch)."""
    cfg = DEFAULT_FEATURES
    frames = log_mel.shape[1]
    t = start_s + np.arange(frames) * frame_step / cfg.frames_per_s
    db = log_mel * DB_PER_NEPER
    loud = DB_PER_NEPER * np.log(np.exp(log_mel).sum(0) + 1e-10)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.28, 0.72], vertical_spacing=0.04,
                        specs=[[{"secondary_y": True}], [{}]])
    fig.add_trace(go.Scatter(x=t, y=loud, name="loudness (dB)", line=dict(color="#888", width=1)), row=1, col=1)
    if speech is not None:
        f0 = pitch_contour(speech, frames)
        quiet = loud < loud.max() - 30
        f0[quiet] = np.nan
        fig.add_trace(go.Scatter(x=t, y=f0, name="pitch (Hz)", mode="lines", line=dict(color="#d62728", width=2)),
                      row=1, col=1, secondary_y=True)
    fig.add_trace(go.Heatmap(x=t, z=db, zmin=float(db.max() - 80), zmax=float(db.max()), colorscale="Magma",
                             colorbar=dict(title="dB", len=0.7, y=0.36), name="mel spectrogram",
                             hovertemplate="%{x:.2f} s, band %{y}<br>%{z:.0f} dB<extra></extra>"), row=2, col=1)
    vals, text = _band_ticks(cfg)
    fig.update_yaxes(title_text="frequency (Hz, mel scale)", tickvals=vals, ticktext=text, row=2, col=1)
    fig.update_yaxes(title_text="dB", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="Hz", row=1, col=1, secondary_y=True)
    fig.update_xaxes(title_text="time (s)", range=[0, duration_s], row=2, col=1)
    fig.update_layout(height=430, margin=dict(l=60, r=20, t=30, b=40), title="What the models hear: mel spectrogram",
                      legend=dict(orientation="h", y=1.1, x=0.5, xanchor="center"))
    return fig


def probabilities_figure(probabilities: dict[str, np.ndarray]) -> go.Figure:
    """Grouped bars: one trace per model over the labels. probabilities: {model: (n_labels,)}."""
    fig = go.Figure()
    for name, p in probabilities.items():
        fig.add_trace(go.Bar(x=list(LABELS), y=np.asarray(p, dtype=float), name=name,
                             marker_color=MODEL_COLOURS.get(name), hovertemplate="%{x}: %{y:.0%}<extra>" + name + "</extra>"))
    fig.update_layout(barmode="group", height=330, margin=dict(l=50, r=20, t=40, b=40), yaxis=dict(range=[0, 1], tickformat=".0%"),
                      title="Each model's probabilities", legend=dict(orientation="h", y=-0.15, x=0.5, xanchor="center"))
    return fig


def timeline_figure(timeline: list[dict], duration_s: float, model: str = "ensemble") -> go.Figure:
    """Probability of each label over time (window centres), on the spectrogram's time axis."""
    fig = go.Figure()
    centres = [(w["start_s"] + w["end_s"]) / 2 for w in timeline]
    for lab in LABELS:
        fig.add_trace(go.Scatter(x=centres, y=[w["probabilities"][lab] for w in timeline], name=lab, mode="lines+markers",
                                 line=dict(color=LABEL_COLOURS[lab])))
    fig.update_layout(height=300, margin=dict(l=60, r=20, t=40, b=40), title=f"Emotion over time ({model}, 3 s windows over speech)",
                      xaxis=dict(title="time (s)", range=[0, duration_s]), yaxis=dict(range=[0, 1], tickformat=".0%"))
    return fig


def explanation_figure(log_mel: np.ndarray, maps: dict[str, np.ndarray], start_s: float, labels: dict[str, str]) -> go.Figure:
    """The explained window's spectrogram once per model, with the occlusion map drawn over it.

    log_mel: (n_mels, frames) of the window; maps: {model: (n_mels, frames) drop in the chosen label's
    probability when that patch is hidden}; labels: {model: label explained}."""
    cfg = DEFAULT_FEATURES
    names = list(maps)
    cols = 2 if len(names) > 1 else 1
    rows = int(np.ceil(len(names) / cols)) or 1
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{n}: why '{labels[n]}'" for n in names],
                        shared_xaxes=True, vertical_spacing=0.12, horizontal_spacing=0.06)
    t = start_s + np.arange(log_mel.shape[1]) / cfg.frames_per_s
    db = log_mel * DB_PER_NEPER
    vals, text = _band_ticks(cfg)
    for i, name in enumerate(names):
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(go.Heatmap(x=t, z=db, colorscale="Greys", reversescale=True, showscale=False, zmin=float(db.max() - 80),
                                 zmax=float(db.max()), hoverinfo="skip"), row=r, col=c)
        m = maps[name]
        peak = max(float(np.abs(m).max()), 1e-6)
        fig.add_trace(go.Heatmap(x=t, z=np.where(m > 0.1 * peak, m, np.nan), colorscale="Reds", opacity=0.6, zmin=0, zmax=peak,
                                 showscale=(i == 0), colorbar=dict(title="drop", len=0.5),
                                 hovertemplate="%{x:.2f} s<br>hiding this lowers '" + labels[name] + "' by %{z:.0%}<extra>" + name + "</extra>"),
                      row=r, col=c)
        fig.update_yaxes(tickvals=vals, ticktext=text, row=r, col=c)
    fig.update_layout(height=260 * rows + 60, margin=dict(l=50, r=20, t=60, b=40),
                      title="Which parts of the spectrogram drove each decision (occlusion: red = hiding it changes the answer most)")
    return fig
