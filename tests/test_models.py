"""Shipped checkpoints: they load alone, know their inputs, give probabilities, and are well above chance
on real clips of speakers they never heard."""

import json

import numpy as np
import pytest
import torch

from corpus import splits_hash
from emotion_core import DEFAULT_FEATURES, LABELS, load_audio
from emotion_core.features import frame_features
from emotion_core.models.base import load_checkpoint
from emotion_core.recognizer import FAMILY_ORDER, Recognizer

from .shared_paths import CHECKPOINTS, DATA_DIR, REPO, WHISPER_DIR, needs_corpus, needs_whisper

SHIPPED = sorted(p.stem for p in CHECKPOINTS.glob("*.pt"))
GUARD_REPORT = REPO / "reports" / "guard.json"
GUARD_MIN_ACCURACY = 0.45  # chance is 1/7 = 0.14
GUARD_TOLERANCE = 0.03  # ~4 of 140 clips: float differences between CPUs may flip borderline clips


def test_all_families_are_shipped():
    assert set(FAMILY_ORDER) <= set(SHIPPED), f"missing checkpoints: {set(FAMILY_ORDER) - set(SHIPPED)}"


@pytest.mark.parametrize("family", SHIPPED)
def test_checkpoint_is_self_describing_and_small(family):
    path = CHECKPOINTS / f"{family}.pt"
    assert path.stat().st_size <= 25 * 2**20
    model, meta = load_checkpoint(path)
    assert meta["family"] == family and tuple(meta["labels"]) == LABELS
    assert meta["features"] == DEFAULT_FEATURES
    rec = meta["record"]
    assert rec["splits_sha256"] == splits_hash(), "trained on another split than the committed one"
    assert len(rec["data_fingerprint"]) == 64
    assert 0 < rec["val"]["corpus_balanced_uar"] <= 1
    assert not model.training, "a loaded checkpoint must be in eval mode (dropout off, batch norm frozen)"


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer(CHECKPOINTS, "cpu", str(WHISPER_DIR))


def speechlike(seconds=2.0, f0=180.0):
    t = np.arange(int(seconds * 16000)) / 16000
    sig = sum(np.sin(2 * np.pi * f0 * k * t * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))) / k for k in range(1, 15))
    return (0.1 * sig * (np.sin(2 * np.pi * 2.5 * t) > -0.2)).astype(np.float32)


def real_clips():
    paths = (
        sorted(DATA_DIR.glob("RAVDESS/Actor_*/03-01-05-*"))[:1] + sorted(DATA_DIR.glob("CREMA-D/AudioWAV/*_SAD_*"))[:1]
    )
    return [load_audio(p) for p in paths] or [speechlike()]


@needs_whisper
def test_every_family_gives_a_probability_vector(recognizer):
    assert not recognizer.unavailable, recognizer.unavailable
    for audio in real_clips() + [speechlike(7.5)]:
        pred = recognizer.predict_all(audio)
        assert list(pred.models) == recognizer.names and {"cnn1d", "lstm", "cnn2d", "whisper"} <= set(pred.models)
        for out in pred.models.values():
            assert out.probabilities.shape == (len(LABELS),)
            assert np.isclose(out.probabilities.sum(), 1.0, atol=1e-4) and (out.probabilities >= 0).all()
            assert out.label == LABELS[int(out.probabilities.argmax())]
        assert len(pred.window_times_s) == pred.models["cnn1d"].window_probabilities.shape[0]


def test_window_batching_does_not_change_answers(recognizer):
    audio = real_clips()[0]
    wins = recognizer.model_windows(audio).windows
    one = recognizer.window_probabilities(wins[:1])
    batch = recognizer.window_probabilities(torch.cat([wins[:1], wins[:1].flip(-1), wins[:1] * 0.9]))
    for name in one:
        np.testing.assert_allclose(one[name][0][0], batch[name][0][0], atol=1e-4)


@pytest.mark.slow
@needs_corpus
def test_quality_guard_on_held_out_speakers(recognizer):
    from train.evaluate import guard_clips, run
    from train.report import report

    clips = guard_clips(DATA_DIR)
    assert len(clips) == 140
    preds, kept, refused = run(recognizer, clips)
    assert not refused
    now = report(preds, kept)["models"]
    committed = json.loads(GUARD_REPORT.read_text())["models"]
    for name, m in now.items():
        acc = m["overall"]["accuracy"]
        assert acc >= GUARD_MIN_ACCURACY, f"{name}: {acc:.3f} on the guard set"
        assert abs(acc - committed[name]["overall"]["accuracy"]) <= GUARD_TOLERANCE, name


@needs_whisper
def test_whisper_head_refuses_another_encoder():
    from emotion_core.models.whisper import EncoderError, check_encoder, load_encoder

    model, meta = load_checkpoint(CHECKPOINTS / "whisper.pt")
    enc = load_encoder(str(WHISPER_DIR))
    check_encoder(model.cfg, enc, str(WHISPER_DIR))  # the right one passes
    with torch.no_grad():
        enc.layers[0].fc1.weight.mul_(1.5)
    with pytest.raises(EncoderError, match="not the one this model was trained on"):
        check_encoder(model.cfg, enc, "tampered")


def test_missing_encoder_leaves_the_other_families_running(tmp_path):
    rec = Recognizer(CHECKPOINTS, "cpu", str(tmp_path / "no-such-encoder"))
    assert "whisper" in rec.unavailable and "could not be loaded" in rec.unavailable["whisper"]
    pred = rec.predict_all(speechlike())
    assert {"cnn1d", "lstm", "cnn2d"} <= set(pred.models) and "whisper" not in pred.models


@pytest.mark.parametrize("family", ["cnn1d", "lstm"])
def test_frame_families_classify_their_pooled_embedding(family):
    """forward(x) is head(embed(x)): the embedding the --hint experiments train on is the one the head reads."""
    model, _ = load_checkpoint(CHECKPOINTS / f"{family}.pt")
    lm = torch.log(torch.rand(2, DEFAULT_FEATURES.n_mels, DEFAULT_FEATURES.window_frames) + 1e-3)
    x = frame_features(lm)
    with torch.inference_mode():
        assert model.embed(x).shape == (2, model.embed_dim)
        assert torch.allclose(model(x), model.head(model.embed(x)))


def test_the_fast_path_is_chosen_by_device_and_setting(environment):
    from emotion_core.models.whisper_runtime import fast_path

    environment(EMOTION_FAST="")
    assert not fast_path("cpu") and not fast_path("cuda")  # off unless asked for
    assert fast_path("cpu", True) and not fast_path("cpu", False) and not fast_path("cuda", True)
    environment(EMOTION_FAST="on")
    assert fast_path("cpu") and not fast_path("cuda")  # int8 kernels are CPU kernels


@needs_whisper
def test_the_fast_whisper_encoder_is_int8_and_close_to_float32():
    """The int8 encoder really is quantized (its linear layers), the other families are untouched, and the
    Whisper family's probabilities stay near the float32 ones (validation accuracy of both: README)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    fast, exact = (Recognizer(CHECKPOINTS, "cpu", str(WHISPER_DIR), fast=f) for f in (True, False))
    from emotion_core.models.whisper import FLOAT32_LINEARS

    for name, module in fast.encoder.module.named_modules():  # every linear layer in int8 but the outlier ones
        if name.endswith(("fc1", "fc2", "_proj")):
            assert isinstance(module, torch.nn.Linear if name in FLOAT32_LINEARS else DynamicInt8Linear), name
    assert type(exact.encoder.module.layers[0].fc1) is torch.nn.Linear
    clip = speechlike(3.0)
    a, b = fast.predict_all(clip), exact.predict_all(clip)
    for name in a.models:
        diff = np.abs(a.models[name].probabilities - b.models[name].probabilities).max()
        if name in ("cnn1d", "lstm", "cnn2d"):
            assert diff == 0, name
        else:
            assert 0 < diff < 0.15, (name, diff)


def test_a_shallower_whisper_head_runs_only_the_layers_it_reads(tmp_path):
    """A head on the first 3 encoder layers: the encoder stops after layer 3 (layers 4-6 never run), its states
    equal the first 4 of a full run (the cache of all seven serves it), and the family answers the same on both."""
    from emotion_core.features import whisper_input
    from emotion_core.models.whisper import WhisperFamily, WhisperHeadConfig, hidden_states, load_encoder

    from .synthetic_cache import build_tiny_whisper

    encoder = load_encoder(str(build_tiny_whisper(tmp_path / "encoder")))
    ran = []
    for i, layer in enumerate(encoder.layers):
        layer.register_forward_hook(lambda *_, i=i: ran.append(i))
    mel = torch.from_numpy(np.random.default_rng(0).normal(-4, 2, (2, 80, 300)).astype(np.float32))
    torch.manual_seed(0)
    family = WhisperFamily(WhisperHeadConfig(n_states=4, members=2), len(LABELS)).eval()
    with torch.inference_mode():
        shallow = family.encoder_input(encoder, mel)
        assert ran == [0, 1, 2] and shallow.shape == (2, 4, 1024)
        full_states = hidden_states(encoder, whisper_input(mel))
        assert len(ran) == 3 + 6 and full_states.shape[0] == 7
        assert torch.allclose(hidden_states(encoder, whisper_input(mel), layers=3), full_states[:4], atol=1e-5)
        full = WhisperFamily(WhisperHeadConfig(), len(LABELS)).encoder_input(encoder, mel)
        assert torch.allclose(family(shallow), family(full), atol=1e-5)
        assert not torch.allclose(full[:, 3], full[:, 6])  # the states it leaves out differ
