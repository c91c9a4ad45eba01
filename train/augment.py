"""Augmentation of training windows, applied after the split, to training clips only.

Everything works on the cached log-mel (natural log of mel power), so an epoch costs no decoding. In the
power domain the effects of a room, a microphone and background noise are (to first order) products
and sums per mel band and frame:

- speed perturbation (0.9-1.1): time resampled and the frequency axis warped by the same factor;
- room reverberation: each band convolved over frames with an exponential tail (RT60 0.2-0.9 s,
  direct-to-reverberant ratio -2..12 dB), the late reverberation of a room in the power domain;
- microphone and channel: a smooth random EQ (+-4 dB), low-pass at 3.4-8 kHz (telephone and cheap
  codecs), high-pass at 80-400 Hz (laptop and phone microphones);
- noise at 0-30 dB SNR: white, pink or brown with per-band fluctuations, or another training window
  (babble / interfering speech);
- gain +-6 dB; time shift (random crop and placement); SpecAugment (2 frequency and 2 time masks).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from emotion_core.features import DEFAULT_FEATURES, FeatureConfig, mel_centres_hz, slaney_hz_to_mel

LN10_OVER_10 = math.log(10) / 10  # dB -> natural log of power


def _warp_bands(lm: torch.Tensor, factor: float, cfg: FeatureConfig) -> torch.Tensor:
    """Shift every frequency by `factor` (speed-up raises pitch and formants). lm (80, T)."""
    centres = mel_centres_hz(cfg)
    mel_c = slaney_hz_to_mel(centres)
    src = np.interp(slaney_hz_to_mel(centres / factor), mel_c, np.arange(cfg.n_mels))
    i0 = np.clip(np.floor(src).astype(int), 0, cfg.n_mels - 1)
    i1 = np.clip(i0 + 1, 0, cfg.n_mels - 1)
    w = torch.tensor(src - i0, dtype=lm.dtype)[:, None]
    return lm[i0] * (1 - w) + lm[i1] * w


def random_window(
    lm: torch.Tensor,
    gen: torch.Generator,
    cfg: FeatureConfig = DEFAULT_FEATURES,
    speed=(0.9, 1.1),
    p_speed: float = 0.5,
) -> torch.Tensor:
    """A random training window from a clip (80, T) -> (80, window_frames): random crop (or random
    placement in silence when the clip is short), with speed perturbation."""
    w = cfg.window_frames
    factor = 1.0
    if torch.rand((), generator=gen) < p_speed:
        factor = float(speed[0] + (speed[1] - speed[0]) * torch.rand((), generator=gen))
    need = int(round(w * factor))  # source frames that become one window
    T = lm.shape[1]
    if T > need:
        s = int(torch.randint(0, T - need + 1, (), generator=gen))
        seg = lm[:, s : s + need]
    else:
        seg = lm
    if factor != 1.0:
        seg = _warp_bands(seg, factor, cfg)
        new_len = max(1, int(round(seg.shape[1] / factor)))
        seg = torch.nn.functional.interpolate(seg[None], size=new_len, mode="linear", align_corners=False)[0]
    seg = seg[:, :w]
    if seg.shape[1] < w:
        missing = w - seg.shape[1]
        left = int(torch.randint(0, missing + 1, (), generator=gen))
        seg = torch.nn.functional.pad(seg, (left, missing - left), value=cfg.pad_value)
    return seg


class Augmenter:
    """Random acoustic degradations of log-mel windows (B, 80, T) -> (B, 80, T)."""

    def __init__(self, gen: torch.Generator, cfg: FeatureConfig = DEFAULT_FEATURES, strength: float = 1.0):
        self.gen, self.cfg, self.strength = gen, cfg, strength
        self.hz = torch.tensor(mel_centres_hz(cfg), dtype=torch.float32)

    def _u(self, lo, hi, n=()):
        return lo + (hi - lo) * torch.rand(n, generator=self.gen)

    def _p(self, p, n):
        return torch.rand(n, generator=self.gen) < p * self.strength

    def __call__(self, lm: torch.Tensor) -> torch.Tensor:
        B, F, T = lm.shape
        p = lm.float().exp()
        floor = self.cfg.log_floor
        sig_power = p.sum(1).mean(1)  # (B,) mean power per frame

        # reverberation: exponential tail per band, in the power domain
        rev = self._p(0.4, B)
        if rev.any():
            rt60 = self._u(0.2, 0.9, B)
            drr_db = self._u(-2.0, 12.0, B)
            k = torch.arange(1, 91, dtype=torch.float32)  # up to 0.9 s of tail
            r = 10 ** (-6 * (1 / self.cfg.frames_per_s) / rt60)  # per-frame power decay
            g = 10 ** (-drr_db / 10) * (1 - r) / r
            tail = g[:, None] * r[:, None] ** k[None]  # (B, 90)
            kernel = torch.cat([torch.ones(B, 1), tail], 1)  # direct + tail
            n = T + kernel.shape[1]
            conv = torch.fft.irfft(torch.fft.rfft(p, n) * torch.fft.rfft(kernel, n)[:, None], n)[..., :T]
            p = torch.where(rev[:, None, None], conv.clamp(min=0), p)

        # microphone / channel: smooth EQ, low-pass, high-pass (gains in dB per band)
        gain_db = torch.zeros(B, F)
        eq = self._p(0.5, B)
        if eq.any():
            x = torch.linspace(0, math.pi, F)
            for order in (1, 2, 3):
                a = self._u(-4.0 / order, 4.0 / order, B) * eq
                phase = self._u(0, 2 * math.pi, B)
                gain_db += a[:, None] * torch.cos(order * x[None] + phase[:, None])
        lp = self._p(0.3, B)
        if lp.any():
            fc = self._u(3400.0, 8000.0, B)
            gain_db -= lp[:, None] * 40 * torch.sigmoid((self.hz[None] - fc[:, None]) / 150.0)
        hp = self._p(0.3, B)
        if hp.any():
            fc = self._u(80.0, 400.0, B)
            gain_db -= hp[:, None] * 30 * torch.sigmoid((fc[:, None] - self.hz[None]) / 40.0)
        p = p * (10 ** (gain_db / 10))[..., None]

        # additive noise: coloured with fluctuations, or another window (babble)
        noisy = self._p(0.5, B)
        if noisy.any():
            snr_db = self._u(0.0, 30.0, B)
            colour = torch.randint(0, 4, (B,), generator=self.gen)
            shapes = torch.stack([torch.ones(F), 1000 / self.hz, (1000 / self.hz) ** 2, torch.ones(F)])
            shape = shapes[colour]
            shape = shape / shape.sum(1, keepdim=True)
            fluct = torch._standard_gamma(torch.full((B, F, T), 4.0), generator=self.gen) / 4.0
            noise = shape[..., None] * fluct
            babble = colour == 3
            if babble.any():
                other = p.roll(1, 0)
                other = other / other.sum(1, keepdim=True).mean(2, keepdim=True).clamp(min=floor)
                noise = torch.where(babble[:, None, None], other, noise)
            level = sig_power / 10 ** (snr_db / 10)
            p = p + noisy[:, None, None] * level[:, None, None] * noise

        out = p.clamp(min=floor).log()
        out = out + (self._p(0.5, B) * self._u(-6.0, 6.0, B) * LN10_OVER_10)[:, None, None]

        # SpecAugment: masks filled with the window's mean
        mean = out.mean(dim=(1, 2), keepdim=True)
        for _ in range(2):
            f0 = torch.randint(0, F, (B,), generator=self.gen)
            fw = (torch.rand(B, generator=self.gen) * 9 * self.strength).long()
            fmask = (torch.arange(F)[None] >= f0[:, None]) & (torch.arange(F)[None] < (f0 + fw)[:, None])
            t0 = torch.randint(0, T, (B,), generator=self.gen)
            tw = (torch.rand(B, generator=self.gen) * 26 * self.strength).long()
            tmask = (torch.arange(T)[None] >= t0[:, None]) & (torch.arange(T)[None] < (t0 + tw)[:, None])
            out = torch.where(fmask[:, :, None] | tmask[:, None, :], mean, out)
        return out.to(lm.dtype)
