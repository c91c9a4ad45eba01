"""Features: shapes, dtype, device, and batched == per-clip."""

import numpy as np
import pytest
import torch

from emotion_core.features import (
    DEFAULT_FEATURES,
    frame_features,
    log_mel,
    log_mel_batch,
    mfcc_from_log_mel,
    whisper_input,
    window_starts,
    windows,
)

RNG = np.random.default_rng(0)


def speechlike(seconds, rate=16000, f0=150.0):
    t = np.arange(int(seconds * rate)) / rate
    sig = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 3 * t) > -0.3).astype(float)
    return (0.1 * sig * envelope + 0.003 * RNG.standard_normal(t.size)).astype(np.float32)


def test_log_mel_shape_dtype_and_tone_position():
    cfg = DEFAULT_FEATURES
    t = np.arange(16000) / 16000
    lm = log_mel(torch.from_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32)))
    assert lm.shape == (cfg.n_mels, 16000 // cfg.hop_length + 1) and lm.dtype == torch.float32
    from train.augment import mel_centres_hz

    peak_band = int(lm[:, 10:-10].mean(1).argmax())
    assert abs(mel_centres_hz()[peak_band] - 1000) < 60


def test_batched_equals_per_clip():
    clips = [speechlike(s) for s in (0.5, 1.234, 3.0, 2.01)]
    batched = log_mel_batch(clips)
    for c, b in zip(clips, batched, strict=False):
        single = log_mel(torch.from_numpy(c))
        assert b.shape == single.shape
        torch.testing.assert_close(b, single, rtol=1e-5, atol=1e-4)
    lm = log_mel(torch.from_numpy(clips[1]))
    fb = frame_features(torch.stack([lm * 0.5, lm, lm * 2]))
    fs = frame_features(lm)
    torch.testing.assert_close(fb[1], fs, rtol=1e-5, atol=1e-4)


def test_frame_features_and_mfcc():
    lm = log_mel(torch.from_numpy(speechlike(2.0)))
    ff = frame_features(lm)
    assert ff.shape == (DEFAULT_FEATURES.n_frame_features, lm.shape[1]) and ff.dtype == torch.float32
    assert torch.isfinite(ff).all()
    # MFCC is the orthonormal DCT of the log-mel: the DCT of a constant spectrum is all in c0
    flat = torch.full((80, 5), 2.0)
    m = mfcc_from_log_mel(flat)
    assert m[0].abs().min() > 1 and m[1:].abs().max() < 1e-4


def test_windows_cover_the_clip_and_pad_short_ones():
    cfg = DEFAULT_FEATURES
    assert window_starts(120, cfg) == [0]
    starts = window_starts(1000, cfg)
    assert starts[0] == 0 and starts[-1] == 1000 - cfg.window_frames
    assert max(np.diff(starts)) <= cfg.hop_frames
    lm = log_mel(torch.from_numpy(speechlike(1.0)))
    w, s = windows(lm, cfg)
    assert w.shape == (1, cfg.n_mels, cfg.window_frames) and s == [0]
    assert (w[0, :, 0] == cfg.pad_value).all()  # short clips are centred in silence


def test_whisper_scaling_range():
    x = whisper_input(log_mel(torch.from_numpy(speechlike(1.0))))
    assert x.max() <= 1.5 + 1e-6 and (x.max() - x.min()) <= 2.0 + 1e-6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_features_on_cuda_match_cpu():
    x = torch.from_numpy(speechlike(1.0))
    torch.testing.assert_close(log_mel(x.cuda()).cpu(), log_mel(x), rtol=1e-4, atol=1e-3)


def test_features_stay_on_the_input_device():
    x = torch.from_numpy(speechlike(1.0)).to("cpu")
    lm = log_mel(x)
    assert lm.device == x.device and frame_features(lm).device == x.device
