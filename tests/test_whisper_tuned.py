"""The Whisper family with fine-tuned top layers (WhisperHeadConfig.tuned_layers): it starts exactly where the
frozen family is, its checkpoint carries its layers and still refuses another encoder, the app runs it, and
train.fit tunes the layers and keeps the better of frozen and tuned on validation. All on the tiny random
Whisper encoder of tests/synthetic_cache.py, so nothing here needs ../shared."""
import dataclasses

import numpy as np
import pytest
import torch

from emotion_core.features import DEFAULT_FEATURES
from emotion_core.labels import LABELS
from emotion_core.models.base import load_checkpoint, save_checkpoint
from emotion_core.models.whisper import (EncoderError, WhisperFamily, WhisperHeadConfig, check_encoder,
                                         encoder_fingerprint, encoder_probe, load_encoder, packed_states,
                                         pooled_of_packed, pooled_states)
from tests.synthetic_cache import build_cache, build_tiny_whisper, voice
from train import fit


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tuned")
    build_cache(tmp / "cache")
    path = build_tiny_whisper(tmp / "encoder")
    return tmp, path, load_encoder(str(path))


def families(enc, tuned_layers: int):
    """(frozen family with one random head, tuned family started from the encoder's top and that head)."""
    cfg = WhisperHeadConfig(members=1, encoder_sha256=encoder_fingerprint(enc), encoder_probe=encoder_probe(enc),
                            attention_heads=enc.config.encoder_attention_heads, ffn_dim=enc.config.encoder_ffn_dim)
    torch.manual_seed(1)
    frozen = WhisperFamily(cfg, len(LABELS)).eval()
    tuned = WhisperFamily(dataclasses.replace(cfg, tuned_layers=tuned_layers), len(LABELS)).eval()
    tuned.heads[0].load_state_dict(frozen.heads[0].state_dict())
    tuned.init_top(enc)
    return frozen, tuned


def windows(n: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 80, DEFAULT_FEATURES.window_frames, generator=g) * 4 - 6


@pytest.mark.parametrize("k", [1, 2])
def test_a_tuned_family_starts_as_the_frozen_one(tiny, k):
    _, _, enc = tiny
    frozen, tuned = families(enc, k)
    x = windows()
    with torch.inference_mode():
        packed = tuned.encoder_input(enc, x)
        assert packed.shape == (3, 14 + DEFAULT_FEATURES.window_frames // 2, 512)
        assert torch.all(packed[:, 7 - k : 7] == 0) and torch.all(packed[:, 14 - k : 14] == 0)  # never computed
        full = packed_states(enc, x, k, all_stats=True)
        assert torch.equal(pooled_of_packed(full), pooled_states(enc, x))
        assert torch.allclose(frozen(frozen.encoder_input(enc, x)), tuned(packed), atol=1e-5)
        assert torch.allclose(tuned(full), tuned(packed), atol=1e-5)  # the training cache reads the same
        assert torch.allclose(tuned.tuned_stats(packed), pooled_states(enc, x), atol=1e-5)
        tuned.top[-1].fc2.weight.mul_(1.5)  # the family's own layer is the one that runs
        moved = (tuned.tuned_stats(packed) - pooled_states(enc, x)).abs().amax(dim=(0, 2))
        assert torch.all(moved[:6] < 1e-5) and moved[6] > 1e-2


def test_the_tuned_checkpoint_round_trips_and_refuses_another_encoder(tiny, tmp_path):
    tmp, _, enc = tiny
    _, tuned = families(enc, 1)
    with torch.no_grad():
        tuned.top[0].fc1.weight.add_(0.01)  # a tuned layer that is no longer the encoder's
    save_checkpoint(tmp_path / "whisper.pt", tuned, DEFAULT_FEATURES, LABELS, {})
    loaded, meta = load_checkpoint(tmp_path / "whisper.pt")
    assert meta["config"]["tuned_layers"] == 1 and any(k.startswith("top.0.") for k in loaded.state_dict())
    x = windows()
    with torch.inference_mode():
        assert torch.equal(loaded(loaded.encoder_input(enc, x)), tuned(tuned.encoder_input(enc, x)))
    check_encoder(loaded.cfg, enc, "tiny")  # its own encoder passes
    from transformers import WhisperConfig, WhisperForAudioClassification

    torch.manual_seed(5)  # the same shape with other weights: a different frozen part
    other = WhisperForAudioClassification(WhisperConfig(**{**enc.config.to_dict(), "num_labels": 2})).encoder
    with pytest.raises(EncoderError, match="not the one this model was trained on"):
        check_encoder(loaded.cfg, other, "other")


def test_the_app_runs_a_tuned_family(tiny, tmp_path):
    from emotion_core.recognizer import Recognizer

    _, path, enc = tiny
    _, tuned = families(enc, 1)
    save_checkpoint(tmp_path / "whisper.pt", tuned, DEFAULT_FEATURES, LABELS, {})
    rec = Recognizer(tmp_path, "cpu", str(path), fast=False)
    audio = voice(180.0, 4.0, 5.0, np.random.default_rng(0))
    pred = rec.predict_all(audio)
    assert "whisper" not in rec.unavailable and np.isclose(pred.models["whisper"].probabilities.sum(), 1.0)
    wins = rec.model_windows(audio).windows
    with torch.inference_mode():
        want = torch.softmax(tuned(packed_states(enc, wins, 1)), -1).numpy()
    got, _ = rec.window_probabilities(wins)["whisper"]
    assert np.allclose(got, want, atol=1e-5)


@pytest.mark.slow
def test_fit_tunes_the_top_and_keeps_the_better_on_validation(tiny, tmp_path):
    tmp, path, enc = tiny
    out = tmp_path / "out"
    small = ["--classroom", "0", "--epochs", "1", "--steps", "2", "--batch", "8", "--members", "2",
             "--tune-layers", "1", "--tune-epochs", "2", "--tune-steps", "3", "--tune-batch", "4"]
    assert fit.main(["--family", "whisper", "--cache", str(tmp / "cache"), "--out", str(out), "--whisper", str(path)]
                    + small) == 0
    model, meta = load_checkpoint(out / "whisper.pt")
    record = meta["record"]
    assert set(record["variants"]) == {"frozen", "tuned"}
    scores = {v: r["val_cb_uar"] for v, r in record["variants"].items()}
    chosen = record["chosen_variant"]
    assert scores[chosen] == max(scores.values())
    assert record["val"]["corpus_balanced_uar"] == pytest.approx(scores[chosen])
    assert len(record["tuned_history"]) == 2 and len(record["history"]) == 2  # tuned epochs; one list per member
    assert (model.cfg.tuned_layers, model.cfg.members) == ((1, 1) if chosen == "tuned" else (0, 2))
    # the packed cache it trained on: every state's statistics and the sequence entering the top layer
    packed = np.load(tmp / "cache" / "whisper_packed1_0.npy")
    assert packed.shape[1:] == (14 + DEFAULT_FEATURES.window_frames // 2, 512)


@pytest.mark.slow
def test_the_tuned_layers_move_from_the_encoders(tiny):
    """fit_whisper_top trains the layers (at top_lr) and the head (at tune_lr) together."""
    from train.cache import load_cache
    from train.recipe import RECIPES
    from train.trunk import trunk_cache, cached_val_set

    tmp, _, enc = tiny
    rows, mels = load_cache(tmp / "cache")
    packed = trunk_cache(tmp / "cache", "whisper_packed1", rows, mels,
                         lambda w: packed_states(enc, w, 1, all_stats=True), 0)
    frozen, _ = families(enc, 1)
    recipe = dataclasses.replace(RECIPES["whisper"], tune_layers=1, tune_epochs=1, tune_steps=3, tune_batch=4)
    tuned, result = fit.fit_whisper_top(rows, packed, {"clean": cached_val_set(rows, packed)}, frozen.heads[0], frozen.cfg,
                                        enc, recipe)
    before = enc.layers[-1].state_dict()
    moved = [n for n, v in tuned.top[0].state_dict().items() if not torch.equal(v, before[n])]
    assert "fc1.weight" in moved and "self_attn.q_proj.weight" in moved
    assert not torch.equal(tuned.heads[0].classifier[1].weight, frozen.heads[0].classifier[1].weight)
    assert 0.0 <= result["val"]["corpus_balanced_uar"] <= 1.0
