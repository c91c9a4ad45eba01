"""Where emotions sit: the seven emotions at their places on Russell's circumplex, and each model's answer as one
point, the probability-weighted mean of those places."""

import numpy as np
import pytest

from emotion_core.labels import LABELS, MODEL_NAMES
from webapp import plots
from webapp.circumplex import PLACES, circumplex_figure, circumplex_point


def one_hot(label):
    p = np.zeros(len(LABELS))
    p[LABELS.index(label)] = 1.0
    return p


def test_the_emotions_sit_where_russell_puts_them():
    valence = {lab: v for lab, (v, _) in PLACES.items()}
    arousal = {lab: a for lab, (_, a) in PLACES.items()}
    assert PLACES["neutral"] == (0.0, 0.0)
    for lab in ("angry", "fearful", "disgust"):
        assert valence[lab] < 0 < arousal[lab], lab  # unpleasant and aroused
    assert valence["sad"] < 0 and arousal["sad"] < 0  # unpleasant and calm
    assert valence["happy"] > 0 and valence["surprised"] > 0 and arousal["surprised"] > arousal["happy"]
    assert all(np.hypot(*PLACES[lab]) == pytest.approx(1) for lab in LABELS if lab != "neutral")
    # angry and fearful are neighbours (both tense, loud), far from sad
    near = np.hypot(valence["angry"] - valence["fearful"], arousal["angry"] - arousal["fearful"])
    far = np.hypot(valence["angry"] - valence["sad"], arousal["angry"] - arousal["sad"])
    assert near < 0.5 < 1.5 < far


def test_a_models_point_is_the_probability_weighted_mean_of_the_places():
    for lab in LABELS:
        assert circumplex_point(one_hot(lab)) == pytest.approx(PLACES[lab])
    half = 0.5 * one_hot("angry") + 0.5 * one_hot("sad")
    assert circumplex_point(half) == pytest.approx(np.add(PLACES["angry"], PLACES["sad"]) / 2)
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(len(LABELS)))
    expected = sum(p[k] * np.array(PLACES[lab]) for k, lab in enumerate(LABELS))
    assert circumplex_point(p) == pytest.approx(tuple(expected))
    assert circumplex_point(2 * p) == pytest.approx(tuple(expected))  # normalised
    for bad in (np.zeros(len(LABELS)), -p, p[:3]):
        with pytest.raises(ValueError):
            circumplex_point(bad)


def test_the_figure_has_every_emotion_and_one_point_per_model_in_its_colour():
    rng = np.random.default_rng(7)
    probabilities = {m: rng.dirichlet(np.ones(len(LABELS))) for m in ("cnn1d", "lstm", "whisper")}
    fig = circumplex_figure(probabilities)
    emotions = next(t for t in fig.data if t.name == "emotions")
    assert list(emotions.text) == list(LABELS)
    assert np.column_stack([emotions.x, emotions.y]) == pytest.approx(np.array([PLACES[lab] for lab in LABELS]))
    assert list(emotions.marker.color) == [plots.LABEL_COLOURS[lab] for lab in LABELS]
    points = {t.name: t for t in fig.data if t.name in MODEL_NAMES.values()}
    assert list(points) == [MODEL_NAMES[m] for m in probabilities]
    for m, p in probabilities.items():
        t = points[MODEL_NAMES[m]]
        assert (t.x[0], t.y[0]) == pytest.approx(circumplex_point(p)) and t.marker.color == plots.MODEL_COLOURS[m]
    assert not any(t.name.startswith("acted") for t in fig.data)
    ringed = circumplex_figure(probabilities, truth="sad")
    ring = next(t for t in ringed.data if t.name == "acted: sad")
    assert (ring.x[0], ring.y[0]) == pytest.approx(PLACES["sad"])
    assert len(circumplex_figure({}).data) == 2  # the circle and the emotions only
