"""The pitch line over the spectrogram: Praat's pitch of the prepared speech, its voiced frames only, smoothed, one
value per 10 ms frame (praat-parselmouth: compiled C++, nothing compiles on first use)."""

from __future__ import annotations

import warnings

import numpy as np

from emotion_core.audio import SAMPLE_RATE
from emotion_core.features import DEFAULT_FEATURES

PITCH_HZ = (65, 500)  # the pitch search range (a frame at either end found no pitch)
PITCH_NEIGHBOURHOOD = 25  # frames (250 ms): a frame an octave off their median is an octave error, folded back
PITCH_STEADY_SEMITONES = 2  # further than this from its neighbourhood's median: not a voiced frame
PITCH_MIN_RUN = 5  # frames (50 ms): a shorter voiced run is a syllable's edge, not a voice
PITCH_SMOOTH = 5  # frames: the drawn pitch is the running median of this many voiced frames


def pitch_contour(speech: np.ndarray, frames: int) -> np.ndarray:
    """Fundamental frequency (Hz, NaN where unvoiced or quiet) per 10 ms frame of `speech` (16 kHz): Praat's
    autocorrelation pitch (praat-parselmouth; compiled C++, nothing compiles on first use), its voiced frames
    only, smoothed (voiced_pitch)."""
    import parselmouth

    hop_s = DEFAULT_FEATURES.hop_length / SAMPLE_RATE
    if len(speech) < 2048:
        return np.full(frames, np.nan)
    pitch = parselmouth.Sound(np.asarray(speech, dtype=np.float64), sampling_frequency=SAMPLE_RATE).to_pitch_ac(
        time_step=hop_s, pitch_floor=PITCH_HZ[0], pitch_ceiling=PITCH_HZ[1]
    )
    f0 = pitch.selected_array["frequency"]  # 0 where Praat found the frame unvoiced
    at = np.clip(np.round((np.arange(frames) * hop_s - pitch.xs()[0]) / hop_s).astype(int), 0, len(f0) - 1)
    inside = (np.arange(frames) * hop_s >= pitch.xs()[0] - hop_s) & (
        np.arange(frames) * hop_s <= pitch.xs()[-1] + hop_s
    )
    f0 = np.where(inside & (f0[at] > 0), f0[at], np.nan)
    return voiced_pitch(f0)


def _running_median(x: np.ndarray, size: int) -> np.ndarray:
    """Median of the finite values among `size` frames centred on each frame (NaN where none is finite)."""
    window = np.lib.stride_tricks.sliding_window_view(np.pad(x, size // 2, constant_values=np.nan), size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        return np.nanmedian(window, axis=1)


def voiced_pitch(f0: np.ndarray) -> np.ndarray:
    """A frame-wise pitch estimate (Hz) -> its voiced frames only, smoothed; NaN elsewhere. Octave errors are folded
    back onto their neighbourhood; frames at the search range's ends, frames that jump away from their
    neighbourhood and voiced runs shorter than PITCH_MIN_RUN (the edges of syllables) are dropped."""
    f0 = np.where((f0 > PITCH_HZ[0] * 1.02) & (f0 < PITCH_HZ[1] * 0.98), f0, np.nan)
    semitones = 12 * np.log2(f0)
    octaves = np.round((semitones - _running_median(semitones, PITCH_NEIGHBOURHOOD)) / 12)
    semitones = semitones - 12 * np.nan_to_num(octaves)
    steady = np.abs(semitones - _running_median(semitones, PITCH_NEIGHBOURHOOD)) <= PITCH_STEADY_SEMITONES
    edges = np.flatnonzero(np.diff(np.concatenate([[0], steady.astype(int), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=False):
        if b - a < PITCH_MIN_RUN:
            steady[a:b] = False
    semitones = np.where(steady, semitones, np.nan)
    smoothed = np.where(steady, _running_median(semitones, PITCH_SMOOTH), np.nan)
    return 2 ** (smoothed / 12)


def voiced_median(f0: np.ndarray, axis: int) -> np.ndarray:
    """Median pitch of the voiced frames of each column; NaN where none is voiced."""
    voiced = np.isfinite(f0)
    filled = np.where(voiced, f0, np.inf)  # sorted after every voiced value
    k = voiced.sum(axis=axis)
    med = np.take_along_axis(np.sort(filled, axis=axis), np.expand_dims(np.maximum(k - 1, 0) // 2, axis), axis).squeeze(
        axis
    )
    return np.where(k > 0, med, np.nan)
