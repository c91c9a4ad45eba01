"""When the models say "not sure" (issue 27): the reliability of each family's probabilities on the validation
speakers, clean and in the classroom (train.reliability -> reports/reliability.json), the threshold chosen there,
the rule, the diagram of How it works and the game's reveal."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from emotion_core.labels import LABELS
from train.clip_answers import checkpoint_hashes
from train.reliability import not_sure_threshold, reliability, reliability_bins
from webapp import certainty, game

from .shared_paths import CHECKPOINTS

COMMITTED = certainty.load_reliability()


def probs(label, sure):
    p = np.full(len(LABELS), (1 - sure) / (len(LABELS) - 1))
    p[LABELS.index(label)] = sure
    return p


def test_bins_count_each_answer_once_with_its_mean_probability_and_share_right():
    top = [0.12, 0.18, 0.52, 0.58, 0.97, 1.0]
    right = [False, True, True, True, True, False]
    bins = reliability_bins(top, right, width=0.25)
    assert [(b["lo"], b["hi"], b["n"]) for b in bins] == [(0.0, 0.25, 2), (0.5, 0.75, 2), (0.75, 1.0, 2)]
    assert bins[0]["confidence"] == pytest.approx(0.15) and bins[0]["accuracy"] == 0.5
    assert bins[2]["confidence"] == pytest.approx(0.985) and bins[2]["accuracy"] == 0.5  # 1.0 falls in the last bin


def test_the_threshold_is_where_answers_stop_being_wrong_more_often_than_right():
    bins = [
        {"lo": lo, "n": n, "accuracy": acc}
        for lo, n, acc in (
            (0.2, 100, 0.3),
            (0.3, 100, 0.45),
            (0.4, 100, 0.55),
            (0.5, 10, 0.2),
            (0.6, 100, 0.7),
            (0.7, 100, 0.9),
        )
    ]
    assert not_sure_threshold(bins, min_clips=30) == 0.4  # the 10-answer bin at 0.5 says too little
    assert not_sure_threshold(bins, min_clips=5) == 0.6
    assert not_sure_threshold([{"lo": 0.9, "n": 100, "accuracy": 0.4}]) == 1.0  # never right more often: never sure


def test_reliability_pools_families_and_conditions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(LABELS), 400)
    perfect = np.eye(len(LABELS))[labels] * 0.9 + 0.1 / len(LABELS)  # always right, 90% sure
    guessing = rng.dirichlet(np.ones(len(LABELS)), 400)
    r = reliability({"lstm": {"clean": perfect, "classroom": guessing}}, labels)
    assert sum(b["n"] for b in r["pooled"]) == 800
    assert [b["accuracy"] for b in r["families"]["lstm"]["clean"]] == [1.0]
    assert r["threshold"] == 0.9  # the guesses (top probability well below 0.9) are mostly wrong


def test_the_rule_not_sure_below_the_threshold_or_when_the_families_disagree():
    agree = {
        "cnn1d": probs("sad", 0.6),
        "lstm": probs("sad", 0.7),
        "cnn2d": probs("angry", 0.5),
        "whisper": probs("sad", 0.3),
    }
    assert certainty.not_sure(agree, 0.4) == {"cnn1d": False, "lstm": False, "cnn2d": False, "whisper": True}
    assert not certainty.families_disagree(agree)  # 3 of 4 say sad
    assert certainty.verdict_unsure(agree, "lstm", 0.4) is None
    assert certainty.verdict_unsure(agree, "whisper", 0.4) == "the Whisper encoder is not sure"
    split = {**agree, "whisper": probs("happy", 0.9), "ensemble": probs("sad", 0.9)}  # the ensemble is not a family
    assert certainty.families_disagree(split)  # sad 2, angry 1, happy 1: no majority
    assert certainty.verdict_unsure(split, "lstm", 0.4) == "the models disagree"
    assert "below **45%**" in certainty.threshold_sentence(0.45)


def test_the_game_reveal_marks_answers_less_sure_than_the_threshold():
    clip = SimpleNamespace(label="sad", dataset="RAVDESS", votes=())
    answers = game.model_answers({"cnn1d": probs("sad", 0.3), "lstm": probs("angry", 0.8)}, "sad")
    text = game.reveal_markdown("sad", clip, answers, threshold=0.4, unsure="the models disagree")
    assert "| 1D CNN | sad (not sure) | 30% | yes |" in text and "| LSTM | angry | 80% | no |" in text
    assert "**Not sure:** the models disagree." in text
    assert "not sure" not in game.reveal_markdown("sad", clip, answers).lower()


def test_the_committed_reliability_is_of_the_validation_speakers_and_the_shipped_models():
    """Fails after retraining or recalibrating until `python -m train.reliability` has run again."""
    assert COMMITTED["split"] == "val" and COMMITTED["conditions"] == ["clean", "classroom"]
    assert COMMITTED["checkpoints"] == checkpoint_hashes(CHECKPOINTS)
    assert COMMITTED["threshold"] == not_sure_threshold(COMMITTED["pooled"])
    for family, f in COMMITTED["families"].items():
        for condition in COMMITTED["conditions"]:
            assert sum(b["n"] for b in f["conditions"][condition]) == COMMITTED["clips"], (family, condition)
    calibration = json.loads((CHECKPOINTS / "calibration.json").read_text())
    assert {f: x["calibrated"] for f, x in COMMITTED["families"].items()} == {
        f: bool(calibration.get(f, {}).get("adopted")) for f in COMMITTED["families"]
    }


def test_the_diagram_has_a_panel_per_condition_and_a_line_per_family():
    fig = certainty.reliability_figure(COMMITTED)
    families = list(COMMITTED["families"])
    lines = [t for t in fig.data if t.legendgroup in families]
    assert len(lines) == len(families) * len(COMMITTED["conditions"])
    first = lines[0]
    bins = [b for b in COMMITTED["families"][families[0]]["conditions"]["clean"] if b["n"] >= 5]
    assert list(first.x) == pytest.approx([b["confidence"] for b in bins]) and list(first.y) == pytest.approx(
        [b["accuracy"] for b in bins]
    )
    assert [s.x0 for s in fig.layout.shapes] == [COMMITTED["threshold"]] * len(COMMITTED["conditions"])
    assert certainty.reliability_figure({}) is None


def test_try_it_and_the_api_use_the_same_rule():
    """Issue 27: the Try-it summary, the timeline and the API's JSON say "not sure" by the rule the game uses."""
    import torch

    from emotion_core.prediction import ClipWindows, ModelOutput, Prediction
    from webapp import plots, service

    threshold = COMMITTED["threshold"]
    clip = ClipWindows(
        torch.zeros(80, 300), np.zeros(48000, np.float32), torch.zeros(2, 80, 301), [(0.0, 3.0), (1.0, 3.0)], (0.0, 3.0)
    )

    def prediction(answers):
        pred = Prediction(3.0, "cpu", LABELS, clip, lead="whisper")
        for name, (label, sure) in answers.items():
            p = probs(label, sure)
            pred.models[name] = ModelOutput(label, p, np.stack([p, p]), 1.0)
        return pred

    hesitant = prediction({"lstm": ("sad", 0.9), "cnn2d": ("sad", 0.8), "whisper": ("sad", threshold - 0.05)})
    answer = service.answer_json(hesitant)
    assert (
        answer["not_sure"]
        == certainty.verdict_unsure({n: o.probabilities for n, o in hesitant.models.items()}, "whisper", threshold)
        == "the Whisper encoder is not sure"
    )
    assert [answer["models"][n]["not_sure"] for n in ("lstm", "cnn2d", "whisper")] == [False, False, True]
    summary = service.summary_markdown(hesitant)
    assert summary.splitlines()[0].endswith(", not sure") and "Not sure" in summary and f"{threshold:.0%}" in summary
    sure = prediction({"lstm": ("sad", 0.9), "cnn2d": ("sad", 0.8), "whisper": ("sad", threshold + 0.05)})
    assert service.answer_json(sure)["not_sure"] is None and "not sure" not in service.summary_markdown(sure).lower()
    split = prediction({"lstm": ("sad", 0.9), "cnn2d": ("angry", 0.8), "whisper": ("happy", 0.9)})
    assert service.answer_json(split)["not_sure"] == "the models disagree"
    timeline = plots.timeline_figure(
        clip.times_s, hesitant.models["whisper"].window_probabilities, 3.0, "whisper", not_sure=threshold
    )
    assert [s.y0 for s in timeline.layout.shapes] == [threshold]  # the line a window's answer must clear
