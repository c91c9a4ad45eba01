"""Features: one log-mel spectrogram per clip, and every family's input derived from it.

The mel is Whisper's: 80 Slaney mel bands over 0-8 kHz from a 400-sample (25 ms) Hann STFT every
160 samples (10 ms), power 2. The image CNN reads it as a picture, MFCCs are its DCT, and the Whisper
encoder reads it after Whisper's own log10/clamp scaling, so the STFT is computed once per clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache

import numpy as np
import torch
import torchaudio.functional as AF

from .audio import SAMPLE_RATE

MEL_BLOCK_FRAMES = 3000  # frames (30 s) of a long clip's STFT taken at a time (mel_power)


@dataclass(frozen=True)
class FeatureConfig:
    """How model inputs are made. Saved in every checkpoint; a checkpoint refuses a different one."""

    sample_rate: int = SAMPLE_RATE  # Hz
    n_fft: int = 400  # samples (25 ms window)
    hop_length: int = 160  # samples (10 ms): 100 frames per second
    n_mels: int = 80
    f_min: float = 0.0  # Hz
    f_max: float = 8000.0  # Hz
    log_floor: float = 1e-10  # mel power floor before the natural log
    window_s: float = 3.0  # s: the models' input window; shorter clips are padded, longer ones windowed
    hop_s: float = 1.5  # s: step between windows over long clips
    n_mfcc: int = 40  # cepstra (c0..c39) for the frame-level families

    @property
    def frames_per_s(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def window_frames(self) -> int:
        return int(round(self.window_s * self.frames_per_s))

    @property
    def hop_frames(self) -> int:
        return int(round(self.hop_s * self.frames_per_s))

    @property
    def pad_value(self) -> float:
        """Log-mel value of digital silence, used to pad windows."""
        return float(np.log(self.log_floor))

    @property
    def n_frame_features(self) -> int:
        """Channels of `frame_features`: (n_mfcc + log energy) x (static, delta, delta-delta), + validity."""
        return 3 * (self.n_mfcc + 1) + 1

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_FEATURES = FeatureConfig()


def slaney_hz_to_mel(f) -> np.ndarray:
    """Hz -> Slaney mel (linear below 1 kHz, logarithmic above)."""
    f = np.asarray(f, dtype=np.float64)
    log = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f < 1000.0, f / (200.0 / 3), log)


def mel_centres_hz(cfg: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """(n_mels,) centre frequency in Hz of each mel band."""
    m = np.linspace(slaney_hz_to_mel(cfg.f_min), slaney_hz_to_mel(cfg.f_max), cfg.n_mels + 2)[1:-1]
    return np.where(m < 15.0, m * (200.0 / 3), 1000.0 * np.exp((m - 15.0) * (np.log(6.4) / 27.0)))


@cache
def _mel_filters(cfg: FeatureConfig, device: str) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) Slaney filterbank, cached per device."""
    fb = AF.melscale_fbanks(cfg.n_fft // 2 + 1, cfg.f_min, cfg.f_max, cfg.n_mels, cfg.sample_rate, "slaney", "slaney")
    return fb.to(device)


@cache
def _window(cfg: FeatureConfig, device: str) -> torch.Tensor:
    return torch.hann_window(cfg.n_fft, device=device)


@cache
def _dct(cfg: FeatureConfig, device: str) -> torch.Tensor:
    """(n_mels, n_mfcc) orthonormal DCT-II."""
    return AF.create_dct(cfg.n_mfcc, cfg.n_mels, "ortho").to(device)


def mel_power(audio: torch.Tensor, cfg: FeatureConfig = DEFAULT_FEATURES) -> torch.Tensor:
    """Mel power spectrogram. audio (B, samples) or (samples,) float -> (B, n_mels, frames) or (n_mels, frames).

    frames = samples // hop_length + 1 (centred STFT with reflect padding).
    The STFT of a long clip is taken MEL_BLOCK_FRAMES frames at a time (each frame reads only its own samples,
    so the result is the same up to float rounding, ~1e-7), so its complex spectrum never exists whole: 10
    minutes of it would be ~100 MB.
    """
    squeeze = audio.dim() == 1
    x = audio[None] if squeeze else audio
    padded = torch.nn.functional.pad(x[:, None], (cfg.n_fft // 2,) * 2, mode="reflect")[:, 0]
    n_frames = (padded.shape[-1] - cfg.n_fft) // cfg.hop_length + 1
    step = MEL_BLOCK_FRAMES * cfg.hop_length
    mel = torch.cat(
        [
            _mel_of_padded(padded[:, a : a + step - cfg.hop_length + cfg.n_fft], cfg)
            for a in range(0, n_frames * cfg.hop_length, step)
        ],
        dim=-1,
    )
    return mel[0] if squeeze else mel


def _mel_of_padded(x: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """(B, samples + n_fft) already reflect-padded -> (B, n_mels, frames), non-centred STFT."""
    dev = str(x.device)
    spec = torch.stft(x, cfg.n_fft, cfg.hop_length, window=_window(cfg, dev), center=False, return_complex=True)
    return _mel_filters(cfg, dev).T @ spec.abs().pow(2)


def log_mel(audio: torch.Tensor, cfg: FeatureConfig = DEFAULT_FEATURES) -> torch.Tensor:
    """Natural-log mel spectrogram, same shapes as `mel_power`."""
    return mel_power(audio, cfg).clamp(min=cfg.log_floor).log()


def log_mel_batch(
    clips: list[np.ndarray], cfg: FeatureConfig = DEFAULT_FEATURES, device: str = "cpu"
) -> list[torch.Tensor]:
    """Log-mel of clips of different lengths in one batched STFT; each result (n_mels, len_i // hop + 1),
    equal to `log_mel` of that clip alone (each clip is reflect-padded on its own before batching)."""
    if not clips:
        return []
    half = cfg.n_fft // 2
    padded = [
        torch.nn.functional.pad(torch.as_tensor(c, device=device)[None, None], (half, half), mode="reflect")[0, 0]
        for c in clips
    ]
    batch = torch.nn.utils.rnn.pad_sequence(padded, batch_first=True)
    lm = _mel_of_padded(batch, cfg).clamp(min=cfg.log_floor).log()
    return [lm[i, :, : len(c) // cfg.hop_length + 1] for i, c in enumerate(clips)]


def mfcc_from_log_mel(lm: torch.Tensor, cfg: FeatureConfig = DEFAULT_FEATURES) -> torch.Tensor:
    """MFCC as the DCT of the log-mel. (..., n_mels, frames) -> (..., n_mfcc, frames)."""
    return torch.einsum("...mt,mc->...ct", lm, _dct(cfg, str(lm.device)))


def valid_frames(lm: torch.Tensor, cfg: FeatureConfig = DEFAULT_FEATURES) -> torch.Tensor:
    """(..., n_mels, frames) -> (..., 1, frames) float: 1 for frames of the clip, 0 for window padding."""
    return (lm > cfg.pad_value + 1e-3).any(dim=-2, keepdim=True).to(lm.dtype)


def frame_features(lm: torch.Tensor, cfg: FeatureConfig = DEFAULT_FEATURES) -> torch.Tensor:
    """Frame-level acoustic features for the 1D CNN and LSTM families.

    (..., n_mels, frames) log-mel -> (..., 3 * (n_mfcc + 1) + 1, frames): MFCC c0..c39 and log energy,
    their deltas and delta-deltas (5-frame regression), all zero on window padding, and last a validity
    channel (1 = clip, 0 = padding) so that models normalise and pool over the clip's frames only.
    Energy is the log of the summed mel power.
    """
    mfcc = mfcc_from_log_mel(lm, cfg)
    energy = torch.logsumexp(lm, dim=-2, keepdim=True)
    static = torch.cat([mfcc, energy], dim=-2)
    d1 = AF.compute_deltas(static)
    d2 = AF.compute_deltas(d1)
    valid = valid_frames(lm, cfg)
    return torch.cat([torch.cat([static, d1, d2], dim=-2) * valid, valid], dim=-2)


def whisper_input(lm: torch.Tensor) -> torch.Tensor:
    """Whisper's input scaling of the same mel: log10, clamp to 8 decades below the peak, (x + 4) / 4.

    (..., 80, frames) natural-log mel -> same shape.
    """
    l10 = lm / np.log(10.0)
    peak = l10.amax(dim=(-2, -1), keepdim=True)
    return (torch.maximum(l10, peak - 8.0) + 4.0) / 4.0


def window_starts(n_frames: int, cfg: FeatureConfig = DEFAULT_FEATURES) -> list[int]:
    """Start frames of the windows that cover a clip of n_frames: evenly spaced, first at 0 and last
    ending at the clip's end, at most hop_frames apart. A clip no longer than a window has one, at 0."""
    w, h = cfg.window_frames, cfg.hop_frames
    if n_frames <= w:
        return [0]
    n = int(np.ceil((n_frames - w) / h)) + 1
    return [int(round(i * (n_frames - w) / (n - 1))) for i in range(n)]


def starts_over_regions(
    regions: list[tuple[int, int]], n_frames: int, hop_frames: int, cfg: FeatureConfig = DEFAULT_FEATURES
) -> list[int]:
    """Window starts that slide over speech regions [(first, end) frames]: every hop_frames inside a
    region, the last window ending at the region's end; a region shorter than a window gets one window
    centred on it. Starts stay inside the clip and are unique and sorted."""
    w = cfg.window_frames
    top = max(0, n_frames - w)
    starts = set()
    for a, b in regions:
        if b - a <= w:
            starts.add(min(max(0, (a + b - w) // 2), top))
            continue
        s = a
        while s + w < b:
            starts.add(min(s, top))
            s += hop_frames
        starts.add(min(b - w, top))
    return sorted(starts) or window_starts(n_frames, cfg)


MIN_TIMELINE_HOP_S = 1.0  # s: step of the windows that slide over the speech of clips longer than a window
TIMELINE_WINDOWS = 20  # windows over a long clip's speech before the step grows (up to one window: no gaps)


def timeline_hop_s(speech_s: float, window_s: float) -> float:
    """Step of the sliding windows for speech_s seconds of speech: MIN_TIMELINE_HOP_S, or longer for long
    speech so that about TIMELINE_WINDOWS windows cover it (the work of a long clip grows with its length
    only once the windows no longer overlap), never longer than a window."""
    return min(window_s, max(MIN_TIMELINE_HOP_S, speech_s / TIMELINE_WINDOWS))


def speech_window_starts(
    regions_s: list[tuple[float, float]], n_frames: int, cfg: FeatureConfig = DEFAULT_FEATURES
) -> list[int]:
    """Window starts of a clip longer than a window, sliding over its speech regions [(start_s, end_s)] only
    (starts_over_regions), timeline_hop_s apart."""
    frames = [(int(a * cfg.frames_per_s), int(b * cfg.frames_per_s)) for a, b in regions_s]
    hop_s = timeline_hop_s(sum(b - a for a, b in regions_s), cfg.window_s)
    return starts_over_regions(frames, n_frames, int(hop_s * cfg.frames_per_s), cfg)


def fit_window(lm: torch.Tensor, start: int, cfg: FeatureConfig = DEFAULT_FEATURES) -> torch.Tensor:
    """One model window: (n_mels, frames) -> (n_mels, window_frames), centred and padded with silence
    when the clip is shorter than a window."""
    w = cfg.window_frames
    seg = lm[:, start : start + w]
    if seg.shape[1] == w:
        return seg
    missing = w - seg.shape[1]
    left = missing // 2
    return torch.nn.functional.pad(seg, (left, missing - left), value=cfg.pad_value)


def windows(
    lm: torch.Tensor, cfg: FeatureConfig = DEFAULT_FEATURES, starts: list[int] | None = None
) -> tuple[torch.Tensor, list[int]]:
    """Model windows of a clip: (n_mels, frames) -> (n_windows, n_mels, window_frames), start frames.
    By default the evenly spaced windows of window_starts."""
    starts = window_starts(lm.shape[1], cfg) if starts is None else starts
    return torch.stack([fit_window(lm, s, cfg) for s in starts]), starts
