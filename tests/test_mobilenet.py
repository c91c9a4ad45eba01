"""The EfficientAT mn04 network and the 2D family on it: strict load, AudioSet sanity on synthesized and real
sounds, our log-mel mapped onto the network's input, shapes, and a checkpoint that loads without ../shared."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from emotion_core.features import DEFAULT_FEATURES, log_mel
from emotion_core.models.base import load_checkpoint, save_checkpoint
from emotion_core.models.mobilenet import (
    NET_SAMPLE_RATE,
    Efficientat2d,
    Efficientat2dConfig,
    MobileNetMN,
    efficientat_weights,
    network_input,
)
from tests.shared_paths import DATA_DIR, SHARED, needs_corpus

WEIGHTS = Path(
    os.environ.get("EMOTION_EFFICIENTAT") or SHARED / "weights" / "efficientat-mn04-as" / "mn04_as_mAP_432.pt"
)
needs_weights = pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"EfficientAT mn04 weights not found at {WEIGHTS}")
SPEECH, BEEP, SINE_WAVE = 0, 481, 501  # AudioSet class_labels_indices: "Speech", "Beep, bleep", "Sine wave"
SPEECH_FAMILY = range(0, 8)  # Speech, Male/Female/Child speech, Conversation, Narration, Babbling, Speech synthesizer


@pytest.fixture(scope="module")
def audioset_net():
    net = MobileNetMN()
    net.load_state_dict(torch.load(WEIGHTS, weights_only=True), strict=True)
    return net.eval()


def tags(net, audio_32k: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(net(network_input(audio_32k[None])))[0]


@needs_weights
def test_every_tensor_loads_strictly():
    net = MobileNetMN()
    state = torch.load(WEIGHTS, weights_only=True)
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert sum(v.numel() for v in state.values()) == 993_485  # as the weights' README states


@needs_weights
def test_tone_is_tagged_tonal_and_noise_is_not_speech(audioset_net):
    t = torch.arange(3 * NET_SAMPLE_RATE) / NET_SAMPLE_RATE
    tone = tags(audioset_net, 0.3 * torch.sin(2 * np.pi * 1000 * t))
    assert int(tone.argmax()) in (BEEP, SINE_WAVE)
    assert tone[SPEECH] < 0.1
    noise = tags(audioset_net, 0.1 * torch.randn(3 * NET_SAMPLE_RATE, generator=torch.Generator().manual_seed(0)))
    assert int(noise.argmax()) not in SPEECH_FAMILY and noise[SPEECH] < 0.1


@needs_weights
@needs_corpus
def test_speech_is_tagged_speech_through_both_front_ends(audioset_net):
    """A corpus utterance: "Speech" on top through EfficientAT's own front end (checks the network), and through
    our 16 kHz log-mel mapped by Efficientat2d.image (checks the mapping)."""
    from emotion_core import load_audio

    audio = torch.from_numpy(load_audio(DATA_DIR / "CREMA-D/AudioWAV/1015_IEO_HAP_HI.opus"))
    own = tags(audioset_net, AF.resample(audio, DEFAULT_FEATURES.sample_rate, NET_SAMPLE_RATE))
    assert int(own.argmax()) == SPEECH and own[SPEECH] > 0.5
    model = Efficientat2d(Efficientat2dConfig(), 7, weights=str(WEIGHTS)).eval()
    with torch.no_grad():
        mapped = torch.sigmoid(audioset_net(model.image(log_mel(audio)[None])))[0]
    assert int(mapped.argmax()) == SPEECH and mapped[SPEECH] > 0.5


@needs_weights
def test_mapped_log_mel_matches_the_networks_own_input():
    """Our log-mel of a 1 kHz tone, mapped, lands on the same band and level as the network's own front end."""
    model = Efficientat2d(Efficientat2dConfig(), 7, weights=str(WEIGHTS)).eval()
    t = torch.arange(3 * DEFAULT_FEATURES.sample_rate) / DEFAULT_FEATURES.sample_rate
    tone = 0.3 * torch.sin(2 * np.pi * 1000 * t)
    mine = model.image(log_mel(tone)[None])[0, 0]
    theirs = network_input(AF.resample(tone, DEFAULT_FEATURES.sample_rate, NET_SAMPLE_RATE)[None])[0, 0]
    frames = min(mine.shape[-1], theirs.shape[-1])
    mine, theirs = mine[:, 10 : frames - 10].mean(-1), theirs[:, 10 : frames - 10].mean(-1)
    assert abs(int(mine.argmax()) - int(theirs.argmax())) <= 1
    assert abs(float(mine.max() - theirs.max())) < 0.2  # normalised units (0.2 = 1 in ln power)


def test_forward_shapes_and_embedding():
    model = Efficientat2d(Efficientat2dConfig(), 7, pretrained=False).eval()
    lm = torch.randn(2, 80, DEFAULT_FEATURES.window_frames) - 8
    assert model(lm).shape == (2, 7)
    assert model.embed(lm).shape == (2, model.embed_dim) == (2, 384)
    assert all(p.requires_grad for p in model.parameters())  # the whole network trains


def test_weights_path_from_flag_then_environment(environment):
    environment(EMOTION_EFFICIENTAT="/from/env.pt")
    assert efficientat_weights("/from/flag.pt") == "/from/flag.pt"
    assert efficientat_weights(None) == "/from/env.pt"


@needs_weights
def test_checkpoint_round_trip_needs_no_shared_file(tmp_path, environment):
    model = Efficientat2d(Efficientat2dConfig(), 7, weights=str(WEIGHTS)).eval()
    path = tmp_path / "cnn2d.pt"
    save_checkpoint(path, model, DEFAULT_FEATURES, [str(i) for i in range(7)], {"note": "test"})
    assert path.stat().st_size < 6_000_000
    environment(EMOTION_EFFICIENTAT=str(tmp_path / "absent.pt"))  # loading must not read pretrained weights
    loaded, meta = load_checkpoint(path)
    assert meta["config"]["backbone"] == "efficientat-mn04"
    lm = torch.randn(3, 80, DEFAULT_FEATURES.window_frames) - 8
    with torch.no_grad():
        torch.testing.assert_close(loaded(lm), model(lm))


@needs_weights
@pytest.mark.slow
def test_train_fit_trains_every_layer_of_mn04_on_a_cache(tmp_path):
    """Two steps on the synthetic cache: the whole network moves, and validation is scored."""
    from tests.synthetic_cache import build_cache
    from train.cache import load_cache
    from train.fit import fit_end_to_end
    from train.recipe import Recipe

    build_cache(tmp_path)
    rows, mels = load_cache(tmp_path)
    start = Efficientat2d(Efficientat2dConfig(), 7, weights=str(WEIGHTS)).state_dict()
    recipe = Recipe("cnn2d", lr=1e-3, architecture="efficientat-mn04-audioset", epochs=1, steps=2, batch=4, augment=0.0)
    model, result = fit_end_to_end(rows, mels, recipe, efficientat=str(WEIGHTS))
    moved = {
        k.split(".")[0] + "." + k.split(".")[1]
        for k, v in model.state_dict().items()
        if k.startswith("features.") and v.is_floating_point() and not torch.equal(v, start[k])
    }
    assert {"features.0", "features.8", "features.16"} <= moved  # stem, middle and last layers all trained
    assert 0.0 <= result["val"]["corpus_balanced_uar"] <= 1.0 and len(result["history"]) == 1
