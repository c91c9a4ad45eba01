"""train.calibration: the temperature and bias undo a family's over-answering of one emotion, are judged on
speakers the fit has not seen, and leave a calibrated family's clip probabilities a distribution."""

from __future__ import annotations

import numpy as np
import torch

from emotion_core.labels import LABELS
from train.calibration import (
    SHARE_SLACK,
    TOLERANCE,
    balanced_bias,
    calibrate_family,
    fit,
    speaker_folds,
)
from train.validation import calibrated_clip_probs

N_CLASSES = len(LABELS)


def biased_family(n_clips: int = 700, skew: float = 2.0, seed: int = 0):
    """Window logits of a family that knows the answer (signal 1.5) but adds `skew` to "angry" on every window;
    two windows a clip; rows of two datasets, 7 speakers each, every speaker acting every emotion."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_clips) % N_CLASSES
    speaker = (np.arange(n_clips) // N_CLASSES) % 14  # every speaker acts every emotion
    rows = [{"label": LABELS[k], "dataset": "AB"[s % 2], "speaker": f"s{s}"} for k, s in zip(y, speaker, strict=False)]
    owners = np.repeat(np.arange(n_clips), 2)
    z = rng.normal(0, 1.0, (2 * n_clips, N_CLASSES))
    z[np.arange(2 * n_clips), y[owners]] += 1.5
    z[:, 0] += skew
    return torch.tensor(z, dtype=torch.float32), owners, y, rows


def test_the_bias_removes_an_over_answered_emotion():
    z, owners, y, rows = biased_family()
    w = np.full(len(y), 1.0 / len(y))
    t, b = fit([(z, owners, y, w)])
    assert t > 0 and b.argmin() == 0 and b[0] < -0.5 and abs(b.sum()) < 1e-5
    before = calibrated_clip_probs(z, owners, len(y), 1.0, torch.zeros(N_CLASSES)).numpy()
    after = calibrated_clip_probs(z, owners, len(y), t, torch.tensor(b)).numpy()
    np.testing.assert_allclose(after.sum(1), 1.0, rtol=1e-5)
    share = lambda p: np.bincount(p.argmax(1), minlength=N_CLASSES).max() / len(p)  # noqa: E731
    assert share(before) > 0.4 and share(after) < 0.25
    assert (after.argmax(1) == y).mean() > (before.argmax(1) == y).mean()


def test_balancing_brings_every_answer_share_near_the_true_share():
    # likelihood alone leaves a family answering one emotion too often when that emotion's logit is noisier than
    # the others' (no bias undoes a spread); balancing shifts the bias until every share is near the truth's
    z, owners, y, rows = biased_family(skew=0.0, seed=2)
    z[:, 0] += torch.tensor(np.random.default_rng(5).normal(0, 3.0, len(z)), dtype=torch.float32)
    w = np.full(len(y), 1.0 / len(y))
    t, b = fit([(z, owners, y, w)])
    truth = np.bincount(y, minlength=N_CLASSES) / len(y)

    def excess(bias):
        p = calibrated_clip_probs(z, owners, len(y), t, torch.tensor(bias, dtype=torch.float32)).numpy()
        return (np.bincount(p.argmax(1), minlength=N_CLASSES) / len(y) - truth).max()

    bb = balanced_bias([(z, owners, y, w)], t, b)
    assert excess(b) > 2 * SHARE_SLACK and excess(bb) <= SHARE_SLACK and abs(bb.sum()) < 1e-6


def test_adoption_is_judged_out_of_fold():
    z, owners, y, rows = biased_family()
    folds = speaker_folds(rows)
    assert set(folds) == {0, 1} and all(
        len({folds[i] for i, r in enumerate(rows) if r["speaker"] == s}) == 1 for s in {r["speaker"] for r in rows}
    )
    cal = calibrate_family({"clean": z}, {"clean": owners}, rows)
    v = cal["val"]
    assert cal["adopted"] and v["out_of_fold"]["largest_share"] < v["uncalibrated"]["largest_share"]
    assert cal["kind"] in ("plain", "balanced") and v["out_of_fold"] == v[f"out_of_fold_{cal['kind']}"]
    assert v["out_of_fold"]["mean_cb_uar"] > v["uncalibrated"]["mean_cb_uar"]
    # a family without a skew gains nothing the fit could confirm on the other fold: it stays as it is
    z0, owners0, _, rows0 = biased_family(skew=0.0, seed=1)
    cal0 = calibrate_family({"clean": z0}, {"clean": owners0}, rows0)
    v0 = cal0["val"]
    assert not cal0["adopted"] and v0["out_of_fold"]["mean_cb_uar"] < v0["uncalibrated"]["mean_cb_uar"] - TOLERANCE


def test_the_recognizer_applies_a_calibration_only_to_its_own_checkpoint(tmp_path, caplog):
    """An adopted calibration moves the family's answers and is flagged in the API; one made for another
    checkpoint (sha256) is ignored with a warning."""
    import json
    import shutil

    from emotion_core.audio import SAMPLE_RATE
    from emotion_core.calibration import CALIBRATION_FILE, file_sha256
    from emotion_core.recognizer import Recognizer

    from .shared_paths import CHECKPOINTS
    from .test_load_audio import speechlike

    shutil.copy(CHECKPOINTS / "cnn1d.pt", tmp_path / "cnn1d.pt")
    audio = speechlike(SAMPLE_RATE, 2.5, f0=150, seed=3)
    plain = Recognizer(tmp_path, "cpu").predict_all(audio).to_json()["models"]["cnn1d"]
    bias = [0.0] * N_CLASSES
    bias[LABELS.index("sad")] = 50.0
    entry = {"temperature": 1.0, "bias": bias, "adopted": True, "checkpoint_sha256": file_sha256(tmp_path / "cnn1d.pt")}
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"cnn1d": entry}))
    moved = Recognizer(tmp_path, "cpu").predict_all(audio).to_json()["models"]["cnn1d"]
    assert moved["calibrated"] and not plain["calibrated"]
    assert moved["label"] == "sad" and moved["probabilities"]["sad"] > 0.99
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"cnn1d": {**entry, "checkpoint_sha256": "0" * 64}}))
    again = Recognizer(tmp_path, "cpu").predict_all(audio).to_json()["models"]["cnn1d"]
    assert again == plain or (again["probabilities"] == plain["probabilities"] and not again["calibrated"])
    assert any("another checkpoint" in r.getMessage() for r in caplog.records)
