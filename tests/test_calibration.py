"""train.calibration: the temperature and bias undo a family's over-answering of one emotion, are judged on
speakers the fit has not seen, and leave a calibrated family's clip probabilities a distribution."""
from __future__ import annotations

import numpy as np
import torch

from emotion_core.labels import LABELS
from train.calibration import calibrate_family, calibrated_clip_probs, fit, speaker_folds

N_CLASSES = len(LABELS)


def biased_family(n_clips: int = 700, skew: float = 2.0, seed: int = 0):
    """Window logits of a family that knows the answer (signal 1.5) but adds `skew` to "angry" on every window;
    two windows a clip; rows of two datasets, 7 speakers each."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_clips) % N_CLASSES
    rows = [{"label": LABELS[k], "dataset": "A" if i % 2 else "B", "speaker": f"s{i % 14}"} for i, k in enumerate(y)]
    owners = np.repeat(np.arange(n_clips), 2)
    z = rng.normal(0, 1.0, (2 * n_clips, N_CLASSES))
    z[np.arange(2 * n_clips), y[owners]] += 1.5
    z[:, 0] += skew
    return torch.tensor(z, dtype=torch.float32), owners, y, rows


def test_the_bias_removes_an_over_answered_emotion():
    z, owners, y, rows = biased_family()
    w = np.full(len(y), 1.0 / len(y))
    t, b = fit([(z, owners, y, w)])
    assert 0.5 < t < 2.0 and b.argmin() == 0 and b[0] < -1.0 and abs(b.sum()) < 1e-5
    before = calibrated_clip_probs(z, owners, len(y), 1.0, torch.zeros(N_CLASSES)).numpy()
    after = calibrated_clip_probs(z, owners, len(y), t, torch.tensor(b)).numpy()
    np.testing.assert_allclose(after.sum(1), 1.0, rtol=1e-5)
    share = lambda p: np.bincount(p.argmax(1), minlength=N_CLASSES).max() / len(p)  # noqa: E731
    assert share(before) > 0.4 and share(after) < 0.25
    assert (after.argmax(1) == y).mean() > (before.argmax(1) == y).mean()


def test_adoption_is_judged_out_of_fold():
    z, owners, y, rows = biased_family()
    folds = speaker_folds(rows)
    assert set(folds) == {0, 1} and all(len({folds[i] for i, r in enumerate(rows) if r["speaker"] == s}) == 1
                                        for s in {r["speaker"] for r in rows})
    cal = calibrate_family({"clean": z}, {"clean": owners}, rows)
    v = cal["val"]
    assert cal["adopted"] and v["out_of_fold"]["largest_share"] < v["uncalibrated"]["largest_share"]
    assert v["out_of_fold"]["mean_cb_uar"] > v["uncalibrated"]["mean_cb_uar"]
    # a family without a skew gains nothing the fit could find on one fold and confirm on the other
    z0, owners0, _, rows0 = biased_family(skew=0.0, seed=1)
    cal0 = calibrate_family({"clean": z0}, {"clean": owners0}, rows0)
    assert abs(cal0["val"]["out_of_fold"]["mean_cb_uar"] - cal0["val"]["uncalibrated"]["mean_cb_uar"]) < 0.03
