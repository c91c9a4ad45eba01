"""Where emotions sit: the seven emotions on Russell's circumplex of affect (valence across, arousal up) and each
model's answer as one point, the probability-weighted mean of the emotions' places.

Placement. Russell, J. A. (1980), A circumplex model of affect, Journal of Personality and Social Psychology
39(6), 1161-1178, doi:10.1037/h0077714, places affect words on a circle: pleasure at 0 degrees, excitement 45,
arousal 90, distress 135, displeasure 180, depression 225, sleepiness 270, relaxation 315. The angles below are
those of his words for our emotions, as his circular scaling of 28 words puts them (approximate, to the degree):
happy 8, astonished 70 (our "surprised"), angry 99, afraid 116 (our "fearful"), sad 208. Disgust is not among
Russell's words: this module places it at 140 degrees, beside his "distressed" and "frustrated" (unpleasant,
fairly aroused); that place is ours, not his. Neutral is the centre: neither pleasant nor
unpleasant, neither calm nor aroused. Every other emotion sits on the unit circle.

What it shows a class: angry, fearful and surprised sit close together at the top (loud, tense, aroused voices),
so a model that mixes them up lands between them; sad sits low and unpleasant, on the far side of neutral from
the aroused emotions, so a voice that is merely flat lands between sad and neutral.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from emotion_core.labels import LABELS, MODEL_NAMES
from webapp.plots import LABEL_COLOURS, MODEL_COLOURS, built_once

RUSSELL_DEGREES = {"happy": 8, "surprised": 70, "angry": 99, "fearful": 116, "disgust": 140, "sad": 208}  # see above
PLACES = {
    lab: (
        (float(np.cos(np.radians(RUSSELL_DEGREES[lab]))), float(np.sin(np.radians(RUSSELL_DEGREES[lab]))))
        if lab in RUSSELL_DEGREES
        else (0.0, 0.0)
    )
    for lab in LABELS
}  # (valence, arousal); neutral (0, 0)
COORDINATES = np.array([PLACES[lab] for lab in LABELS])  # (n_labels, 2), rows in LABELS order
AXIS = 1.35  # the axes reach a little past the circle, room for the emotions' names


def circumplex_point(probabilities) -> tuple[float, float]:
    """(n_labels,) probabilities -> (valence, arousal): the mean of the emotions' places weighted by them
    (normalised, so that a vector that does not quite sum to 1 still lands inside the circle)."""
    p = np.asarray(probabilities, dtype=float)
    if p.shape != (len(LABELS),) or p.min() < 0 or p.sum() <= 0:
        raise ValueError(f"expected {len(LABELS)} non-negative probabilities, got {p}")
    valence, arousal = (p / p.sum()) @ COORDINATES
    return float(valence), float(arousal)


def circumplex_figure(probabilities: dict[str, np.ndarray], truth: str | None = None) -> go.Figure:
    """The circle, the seven emotions at their places (emotion colours) and one point per model (model colours,
    named in the legend) at its probability-weighted place. probabilities: {model: (n_labels,)}; truth: the
    emotion acted, ringed (the game's reveal), or None. Like the spectrogram (webapp.plots), the circle, the
    emotions and the layout are built and checked by plotly once (circumplex_skeleton); each answer adds its points."""
    skeleton = circumplex_skeleton()
    data = [dict(trace) for trace in skeleton["data"]]
    if truth is not None:
        v, a = PLACES[truth]
        data.append(
            {
                "type": "scatter",
                "x": [v],
                "y": [a],
                "mode": "markers",
                "name": f"acted: {truth}",
                "hoverinfo": "name",
                "marker": {"size": 26, "color": "rgba(0,0,0,0)", "line": {"color": LABEL_COLOURS[truth], "width": 3}},
            }
        )
    for name, p in probabilities.items():
        v, a = circumplex_point(p)
        top = LABELS[int(np.argmax(p))]
        shown = MODEL_NAMES.get(name, name)
        data.append(
            {
                "type": "scatter",
                "x": [v],
                "y": [a],
                "mode": "markers",
                "name": shown,
                "marker": {
                    "size": 13,
                    "symbol": "diamond",
                    "color": MODEL_COLOURS.get(name),
                    "line": {"color": "white", "width": 1},
                },
                "hovertemplate": f"{shown}: mostly {top}<br>valence %{{x:.2f}}, arousal %{{y:.2f}}<extra></extra>",
            }
        )
    return go.Figure({"data": data, "layout": skeleton["layout"]}, _validate=False)


@built_once
def circumplex_skeleton() -> dict:
    """The figure without any answer, made once with plotly's checks: {"data": [the circle, the emotions],
    "layout": ...}."""
    fig = go.Figure()
    turn = np.linspace(0, 2 * np.pi, 121)
    fig.add_trace(
        go.Scatter(
            x=np.cos(turn),
            y=np.sin(turn),
            mode="lines",
            line=dict(color="#bbbbbb", width=1, dash="dot"),
            hoverinfo="skip",
            showlegend=False,
            name="circle",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=COORDINATES[:, 0],
            y=COORDINATES[:, 1],
            mode="markers+text",
            text=list(LABELS),
            name="emotions",
            textposition=[_text_position(*PLACES[lab]) for lab in LABELS],
            showlegend=False,
            marker=dict(size=14, color=[LABEL_COLOURS[lab] for lab in LABELS], symbol="circle"),
            hovertemplate="%{text}<extra></extra>",
        )
    )
    axis = dict(
        range=[-AXIS, AXIS],
        zeroline=True,
        zerolinecolor="#cccccc",
        showgrid=False,
        showticklabels=False,
        fixedrange=True,
    )
    # below: titles stay clear
    fig.update_layout(
        height=520,
        margin=dict(l=30, r=10, t=40, b=10),
        title=dict(
            text="Where the answers sit (Russell's circle of emotions)", x=0.5, xanchor="center", font=dict(size=14)
        ),
        xaxis=dict(axis, title="unpleasant ← valence → pleasant", constrain="domain"),  # a square, not a band
        yaxis=dict(axis, title="calm ← arousal → aroused", scaleanchor="x", scaleratio=1, constrain="domain"),
        legend=dict(orientation="h", y=-0.08, yanchor="top", x=0.5, xanchor="center"),
    )
    skeleton = fig.to_plotly_json()
    # to_plotly_json writes arrays in plotly.js's base64 form; the figure keeps the arrays, as a freshly built one does
    circle, emotions = skeleton["data"]
    circle.update(x=np.cos(turn), y=np.sin(turn))
    emotions.update(x=COORDINATES[:, 0], y=COORDINATES[:, 1])
    return skeleton


def _text_position(valence: float, arousal: float) -> str:
    """An emotion's name on the outside of the circle (neutral's below its dot)."""
    if abs(valence) < 1e-9 and abs(arousal) < 1e-9:
        return "bottom center"
    vertical = "top" if arousal > 0.3 else "bottom" if arousal < -0.3 else "middle"
    horizontal = "right" if valence > 0.3 else "left" if valence < -0.3 else "center"
    return f"{vertical} {horizontal}"
