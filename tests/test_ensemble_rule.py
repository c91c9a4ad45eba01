"""The ensemble rule on synthetic validation probabilities: a mix that wins by less than the speaker-bootstrap
noise is not chosen; a mix that wins clearly is."""

import numpy as np
import pytest

from train.ensemble import choose, decision_report, speaker_resamples

N_CLASSES = 7
DATASETS = {"A": 12, "B": 8}  # speakers per dataset
CLIPS_PER_SPEAKER = 14
GRID = (0, 1, 2, 4, 10)


def validation_set(seed: int = 0):
    """Labels, datasets and speakers of a synthetic validation set."""
    rng = np.random.default_rng(seed)
    ds, spk = [], []
    for d, n in DATASETS.items():
        for s in range(n):
            ds += [d] * CLIPS_PER_SPEAKER
            spk += [f"{d}_{s}"] * CLIPS_PER_SPEAKER
    return rng.integers(0, N_CLASSES, len(ds)), np.array(ds), np.array(spk)


def family(y, signal: float, rng) -> np.ndarray:
    """Clip probabilities (n, C): softmax of (signal on the true class + independent Gaussian noise)."""
    logits = signal * np.eye(N_CLASSES)[y] + rng.normal(0, 1, (len(y), N_CLASSES))
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_resamples_keep_whole_speakers_within_datasets():
    y, ds, spk = validation_set()
    for idx in speaker_resamples(spk, ds, 20, seed=1):
        assert len(idx) == len(y)  # equal clips per speaker: same size
        for s in np.unique(spk[idx]):
            assert (spk[idx] == s).sum() % CLIPS_PER_SPEAKER == 0  # a speaker comes with all of its clips


@pytest.mark.slow
def test_a_clear_win_is_chosen():
    y, ds, spk = validation_set()
    rng = np.random.default_rng(1)
    probs = {"a": family(y, 1.5, rng), "b": family(y, 1.5, rng), "c": family(y, 1.5, rng)}  # independent errors
    spec = choose(probs, y, ds, spk, grid=GRID, bootstraps=200)
    d = spec["decision"]
    assert d["chosen"] == "mix", d
    assert d["margin"] > 0.05 and d["bootstrap"]["mix_wins_share"] >= 0.95
    assert sum(w > 0 for w in spec["weights"]) >= 2
    assert spec["val_cb_uar"] == d["best_mix"]["val_cb_uar"] > max(d["val_cb_uar_single"].values())
    assert "Chosen: mix" in decision_report(spec)


@pytest.mark.slow
def test_a_win_within_the_noise_is_not_chosen():
    """A strong family and a near-chance one: the grid finds a mix that beats the strong one on the whole
    validation set (the old rule would take it), but not on 95% of speaker resamples, so the strong one is kept."""
    y, ds, spk = validation_set()
    rng = np.random.default_rng(3)
    probs = {"strong": family(y, 2.0, rng), "weak": family(y, 0.2, rng)}
    spec = choose(probs, y, ds, spk, grid=GRID, bootstraps=200)
    d = spec["decision"]
    assert d["margin"] > 0, "the synthetic case must give the mix a (spurious) win on the whole set"
    assert d["bootstrap"]["mix_wins_share"] < 0.95
    assert d["chosen"] == "single: strong"
    assert spec["weights"] == [1.0, 0.0]
    assert spec["val_cb_uar"] == d["val_cb_uar_single"]["strong"]
    assert "Chosen: single: strong" in decision_report(spec)


def collapsed(n: int, answer: int) -> np.ndarray:
    """Clip probabilities of a family that answers one emotion for everything (the classroom failure)."""
    p = np.full((n, N_CLASSES), 0.05)
    p[:, answer] = 1 - 0.05 * (N_CLASSES - 1)
    return p


def test_with_classroom_copies_the_rule_scores_the_mean_of_both_conditions():
    """A family best on clean clips that collapses onto one answer in the classroom loses to one that holds up
    in both, once the classroom copy is given; on clean clips alone it wins."""
    y, ds, spk = validation_set()
    rng = np.random.default_rng(5)
    clean = {"studio": family(y, 3.0, rng), "robust": family(y, 2.0, rng)}
    classroom = {"studio": collapsed(len(y), 4), "robust": family(y, 1.5, rng)}
    on_clean = choose(clean, y, ds, spk, grid=(0, 1), bootstraps=50)
    assert on_clean["decision"]["best_single"] == "studio"
    spec = choose(clean, y, ds, spk, grid=(0, 1), bootstraps=50, simulated={"classroom": classroom})
    d = spec["decision"]
    assert d["best_single"] == "robust" and d["chosen"] == "single: robust", d
    by = d["by_condition"]
    assert by["clean"]["studio"] > by["clean"]["robust"] and by["classroom"]["studio"] < 0.2
    assert d["val_cb_uar_single"]["robust"] == pytest.approx((by["clean"]["robust"] + by["classroom"]["robust"]) / 2)
    assert spec["val_cb_uar"] == d["val_cb_uar_single"]["robust"]
    report = decision_report(spec)
    assert "mean of clean, classroom" in report and "| classroom |" in report
