"""The Whisper encoder in ONNX Runtime (issue 25): the exported graph gives the torch encoder's pooled states at
every batch size, length and depth; it is exported once and read back afterwards; the recognizer answers the same
through it; and when it cannot be made the torch encoder keeps answering."""

import numpy as np
import pytest
import torch

from emotion_core import load_audio
from emotion_core.models import onnx_runtime, whisper_onnx
from emotion_core.models.whisper import load_encoder, pooled_states

from .shared_paths import MANIFEST, WHISPER_DIR, needs_whisper, real_speech
from .synthetic_cache import build_tiny_whisper
from .test_load_audio import speechlike


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    return load_encoder(str(build_tiny_whisper(tmp_path_factory.mktemp("encoder"))))


def log_mels(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(-4, 2, (batch, 80, frames)).astype(np.float32))


@pytest.mark.parametrize("layers", [6, 3])
def test_the_exported_encoder_gives_the_torch_pooled_states(tiny_encoder, tmp_path, layers):
    onnx = whisper_onnx.onnx_encoder(tiny_encoder, layers, threads=1, directory=tmp_path)
    # a short clip's window is shorter than 3 s; 9 windows go in three runs of at most 4
    for batch, frames in ((1, 300), (3, 300), (2, 173), (9, 300)):
        x = log_mels(batch, frames, seed=batch)
        with torch.inference_mode():
            want = pooled_states(tiny_encoder, x, layers=layers)
        got = onnx(x)
        assert got.shape == want.shape == (batch, layers + 1, 1024)
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), float((got - want).abs().max())


def test_the_encoder_is_exported_once_and_read_back(tiny_encoder, tmp_path, monkeypatch):
    whisper_onnx.onnx_encoder(tiny_encoder, 6, threads=1, directory=tmp_path)
    (exported,) = tmp_path.glob("*.onnx")
    assert not list(tmp_path.glob(".*partial"))  # written whole: no partial file left

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_runtime, "export", no_export)
    again = whisper_onnx.onnx_encoder(tiny_encoder, 6, threads=1, directory=tmp_path)
    assert again.path == exported
    with pytest.raises(AssertionError, match="exported again"):  # another depth is another graph
        whisper_onnx.onnx_encoder(tiny_encoder, 3, threads=1, directory=tmp_path)


@pytest.fixture(scope="module")
def recognizer():
    from emotion_core.recognizer import Recognizer

    return Recognizer(device="cpu", whisper=str(WHISPER_DIR), fast=False)


@needs_whisper
def test_the_recognizer_answers_the_same_through_onnx_runtime(recognizer, tmp_path):
    clips = [load_audio((16000, speechlike(16000, 4.0, f0=240.0)))]
    if MANIFEST.is_file():
        clips.append(real_speech(seconds_of_pause=0.5)[0])  # three actors' utterances and a pause
    recognizer.encoder.onnx = None
    before = [recognizer.predict_all(a) for a in clips]
    assert recognizer.use_onnx(tmp_path) and recognizer.encoder.onnx is not None
    try:
        after = [recognizer.predict_all(a) for a in clips]
    finally:
        recognizer.encoder.onnx = None
    for b, a in zip(before, after, strict=True):
        assert set(a.models) == set(b.models) and "whisper" in a.models
        for name in b.models:
            np.testing.assert_allclose(a.models[name].probabilities, b.models[name].probabilities, atol=1e-4)
            assert a.models[name].label == b.models[name].label


@needs_whisper
def test_a_failed_export_leaves_the_torch_encoder_answering(recognizer, tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no space left on device")

    monkeypatch.setattr(onnx_runtime, "export", broken)
    recognizer.encoder.onnx = None
    assert not recognizer.use_onnx(tmp_path / "new")
    assert recognizer.encoder.onnx is None and "stays in torch" in caplog.text and "no space left" in caplog.text
    pred = recognizer.predict_all(load_audio((16000, speechlike(16000, 3.0))))
    assert "whisper" in pred.models


def test_no_onnx_runtime_on_the_int8_path_or_without_the_encoder(tmp_path):
    from emotion_core.recognizer import Recognizer

    rec = Recognizer(device="cpu", whisper=str(tmp_path / "no-encoder"), fast=False)
    assert "whisper" in rec.unavailable and not rec.use_onnx(tmp_path)


@needs_whisper
def test_a_later_start_answers_from_the_exported_graph_without_loading_the_encoder(recognizer, tmp_path, monkeypatch):
    """Start to ready (issue 25): once a start has checked and exported the encoder, a later start with the same
    files answers from the exported graph without loading the encoder; its answers are the torch encoder's; the
    torch encoder loads only when something asks for it; other files (a changed config) load and are checked."""
    import shutil

    from emotion_core.models import whisper_runtime
    from emotion_core.recognizer import Recognizer

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = Recognizer(device="cpu", whisper=str(WHISPER_DIR), fast=False, onnx_at_start=True)
    assert first.encoder.onnx is None  # nothing exported yet: loaded and checked as ever
    assert first.use_onnx() and list((tmp_path / "cache" / "emotion-recognition").glob("whisper-source-*.json"))
    loads = []
    real_load = whisper_runtime.load_encoder
    monkeypatch.setattr(whisper_runtime, "load_encoder", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    later = Recognizer(device="cpu", whisper=str(WHISPER_DIR), fast=False, onnx_at_start=True)
    assert later.encoder.onnx is not None and loads == []
    assert later.encoder.parameter_count == first.encoder.parameter_count > 20_000_000
    clip = load_audio((16000, speechlike(16000, 4.0, f0=240.0)))
    recognizer.encoder.onnx = None  # the reference: the torch encoder
    want, got = recognizer.predict_all(clip).models["whisper"], later.predict_all(clip).models["whisper"]
    np.testing.assert_allclose(got.window_probabilities, want.window_probabilities, atol=1e-4)
    assert loads == [] and later.encoder.module is later.encoder.module and loads == [str(WHISPER_DIR)]
    edited = tmp_path / "edited"
    shutil.copytree(WHISPER_DIR, edited)
    (edited / "config.json").write_text((WHISPER_DIR / "config.json").read_text() + "\n")  # the same model, new files
    other = Recognizer(device="cpu", whisper=str(edited), fast=False, onnx_at_start=True)
    assert other.encoder.onnx is None and loads[-1] == str(edited)
