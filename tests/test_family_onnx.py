"""The 2D family in ONNX Runtime (issue 25): a family that declares exports_to_onnx gives torch's logits through
its exported graph at every batch size and length; the graph is exported once per weights and read back; the
recognizer answers the same through it; and when it cannot be made, torch keeps answering."""

import numpy as np
import pytest
import torch

from emotion_core import load_audio
from emotion_core.models import onnx_runtime
from emotion_core.models.base import load_checkpoint
from emotion_core.paths import checkpoint_dir
from emotion_core.recognizer import Recognizer

from .shared_paths import MANIFEST, real_speech
from .test_load_audio import speechlike


@pytest.fixture(scope="module")
def cnn2d():
    model, _meta = load_checkpoint(checkpoint_dir() / "cnn2d.pt")
    return model


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory):
    """Every shipped family but Whisper (its encoder is tested in test_whisper_onnx), all in torch."""
    return Recognizer(device="cpu", whisper=str(tmp_path_factory.mktemp("no-encoder")), fast=False)


def log_mels(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(-6, 3, (batch, 80, frames)).astype(np.float32))


def test_only_the_2d_family_declares_that_it_exports(recognizer):
    assert {n for n, m in recognizer.models.items() if m.exports_to_onnx} == {"cnn2d"}


def test_the_exported_2d_family_gives_the_torch_logits(cnn2d, tmp_path):
    session = onnx_runtime.family_session(cnn2d, threads=1, directory=tmp_path)
    for batch, frames in ((1, 300), (3, 300), (2, 173), (9, 300)):  # 9: three runs of at most 4 windows
        x = log_mels(batch, frames, seed=batch)
        with torch.inference_mode():
            want = cnn2d(x)
        got = session(x)
        assert got.shape == want.shape == (batch, 7)
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), float((got - want).abs().max())


def test_it_is_exported_once_per_weights_and_read_back(cnn2d, tmp_path, monkeypatch):
    onnx_runtime.family_session(cnn2d, threads=1, directory=tmp_path)
    (exported,) = tmp_path.glob("*.onnx")
    assert exported.name.startswith("efficientat-mn04-audioset-") and not list(tmp_path.glob(".*partial"))

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_runtime, "export", no_export)
    assert onnx_runtime.family_session(cnn2d, threads=1, directory=tmp_path).path == exported
    other, _ = load_checkpoint(checkpoint_dir() / "cnn2d.pt")
    with torch.no_grad():
        other.head[-1].bias += 1.0  # other weights: another graph
    with pytest.raises(AssertionError, match="exported again"):
        onnx_runtime.family_session(other, threads=1, directory=tmp_path)


def test_the_recognizer_answers_the_same_with_the_2d_family_in_onnx_runtime(recognizer, tmp_path):
    clips = [load_audio((16000, speechlike(16000, 4.0, f0=240.0))), load_audio((16000, speechlike(16000, 9.0)))]
    if MANIFEST.is_file():
        clips.append(real_speech(seconds_of_pause=0.5)[0])  # three actors' utterances and a pause
    recognizer.sessions.clear()
    before = [recognizer.predict_all(a) for a in clips]
    assert not recognizer.use_onnx(tmp_path)  # no Whisper encoder here; the 2D family moves all the same
    assert set(recognizer.sessions) == {"cnn2d"}
    try:
        after = [recognizer.predict_all(a) for a in clips]
    finally:
        recognizer.sessions.clear()
    for b, a in zip(before, after, strict=True):
        assert set(a.models) == set(b.models) and "cnn2d" in a.models
        for name in b.models:
            want, got = b.models[name].window_probabilities, a.models[name].window_probabilities
            np.testing.assert_allclose(got, want, atol=1e-4)
            assert a.models[name].label == b.models[name].label


def test_a_failed_export_leaves_the_2d_family_in_torch(recognizer, tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no space left on device")

    monkeypatch.setattr(onnx_runtime, "export", broken)
    recognizer.sessions.clear()
    recognizer.use_onnx(tmp_path / "new")
    assert not recognizer.sessions and "cnn2d stays in torch" in caplog.text and "no space left" in caplog.text
    assert "cnn2d" in recognizer.predict_all(load_audio((16000, speechlike(16000, 3.0)))).models


def test_no_onnx_runtime_off_the_cpu(recognizer, tmp_path):
    recognizer.sessions.clear()
    recognizer.device = "cuda"
    try:
        recognizer.use_onnx(tmp_path)
        assert not recognizer.sessions and not list(tmp_path.glob("*.onnx"))
    finally:
        recognizer.device = "cpu"
