"""train.calibrate: the per-class bias fit on synthetic probabilities (no corpus needed)."""
import numpy as np
import pytest

from train.calibrate import apply_bias, balanced_weights, fit_bias, fit_on, out_of_fold, symptoms
from train.metrics import evaluate_predictions

N_CLASSES = 7
SHIFT = 2.5  # log-probability units the synthetic classifier adds to one class
SHIFTED = 1  # "disgust"


def symmetric_logits(n: int, seed: int, signal: float = 2.0):
    """Labels uniform over the classes, logits = signal on the true class + unit Gaussian noise: by symmetry
    the best bias of this classifier is zero."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)
    return y, signal * np.eye(N_CLASSES)[y] + rng.normal(size=(n, N_CLASSES))


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_a_biased_classifier_gets_its_bias_removed():
    y, logits = symmetric_logits(14000, seed=0)
    shift = np.zeros(N_CLASSES)
    shift[SHIFTED] = SHIFT
    probs = softmax(logits + shift)
    before = (probs.argmax(1) == SHIFTED).mean()
    assert before > 0.4  # the shifted class swallows the answers

    bias = fit_bias(probs, y, np.full(len(y), 1 / len(y)))
    np.testing.assert_allclose(bias, -(shift - shift.mean()), atol=0.15)
    assert abs(bias.sum()) < 1e-6
    fixed = apply_bias(probs, bias).argmax(1)
    assert (fixed == SHIFTED).mean() == pytest.approx(1 / N_CLASSES, abs=0.03)
    assert (fixed == y).mean() > (probs.argmax(1) == y).mean() + 0.1


def test_an_unbiased_classifier_is_left_alone():
    y, logits = symmetric_logits(14000, seed=1)
    bias = fit_bias(softmax(logits), y, np.full(len(y), 1 / len(y)))
    assert np.abs(bias).max() < 0.15


def test_balanced_weights_weigh_every_dataset_and_class_the_same():
    y = np.array([0, 0, 0, 1, 2, 2, 0, 1])
    ds = np.array(["A", "A", "A", "A", "A", "A", "B", "B"])
    w = balanced_weights(y, ds)
    assert w.sum() == pytest.approx(1.0)
    assert w[ds == "A"].sum() == pytest.approx(0.5) and w[ds == "B"].sum() == pytest.approx(0.5)
    for d in ("A", "B"):
        per_class = {c: w[(ds == d) & (y == c)].sum() for c in set(y[ds == d].tolist())}
        assert max(per_class.values()) == pytest.approx(min(per_class.values()))


def test_out_of_fold_never_fits_on_the_speaker_it_scores():
    y, logits = symmetric_logits(2100, seed=2)
    probs = softmax(logits)
    speakers = np.repeat(["s1", "s2", "s3"], 700)
    ds = np.repeat(["A"], 2100)
    probs[speakers == "s1"] = softmax(logits[speakers == "s1"] + 3.0 * np.eye(N_CLASSES)[SHIFTED])
    oof = out_of_fold(probs, y, ds, speakers)
    held = speakers == "s1"
    expected = apply_bias(probs[held], fit_on(probs, y, ds, np.flatnonzero(~held)))
    np.testing.assert_allclose(oof[held], expected)
    in_sample = apply_bias(probs[held], fit_on(probs, y, ds, np.arange(len(y))))
    assert not np.allclose(oof[held], in_sample)


def test_symptoms_count_the_confusions():
    #        angry disgust happy happy happy neutral sad surprised
    y = np.array([0, 1, 3, 3, 3, 4, 5, 6])
    pred = np.array([0, 1, 6, 6, 3, 1, 1, 6])
    ds = np.array(["R"] * 8)
    s = symptoms(pred, y, ds)
    assert s["happy_to_surprised"] == [2, 3] and s["happy_to_surprised_where_surprised_exists"] == [2, 3]
    assert s["neutral_to_disgust"] == [1, 1] and s["sad_to_disgust"] == [1, 1]
    assert s["disgust_share"] == pytest.approx(3 / 8)
    assert s["cb_uar"] == pytest.approx(evaluate_predictions(y, pred, ds, N_CLASSES)["corpus_balanced_uar"])
