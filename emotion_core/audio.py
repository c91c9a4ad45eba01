"""Audio in: decode anything a browser, phone or dataset produces into 16 kHz mono float32.

`load_audio` decodes, down-mixes, resamples and validates. It never trims or normalises: that is
`prepare_speech`, a separate step with the policy written below, applied identically in training and
inference.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torchaudio.functional as AF

from . import settings

# --- constants (units in the names) -------------------------------------------------------------
SAMPLE_RATE = 16_000  # Hz: every model and feature in this project works at this rate
MIN_DURATION_S = 0.5  # s: shorter clips hold at most a syllable; no family can judge them
MAX_DURATION_S = settings.get("EMOTION_MAX_SECONDS")  # s: 10 minutes by default
MIN_INPUT_RATE_HZ = 4_000  # below this nothing of a voice's emotion survives
MAX_INPUT_RATE_HZ = 384_000  # the highest rate real audio interfaces record at
SILENCE_PEAK = 2.0**-15  # peak below one 16-bit step = digital silence

# The one resampler: torchaudio's windowed-sinc with a Kaiser window at "kaiser_best" settings
# (librosa/resampy's name for them): 64 zero crossings, roll-off 0.9475, beta 14.77. Attenuation in the
# stop band is above 100 dB, so 44.1/48/96 kHz material arrives at 16 kHz without aliasing.
RESAMPLER = dict(
    lowpass_filter_width=64, rolloff=0.9475, resampling_method="sinc_interp_kaiser", beta=14.769656459379492
)

# prepare_speech policy (see its docstring)
TRIM_TOP_DB = 40.0  # dB below the loudest 25 ms frame counts as silence at the ends
TRIM_MARGIN_S = 0.10  # s of context kept before the first and after the last active frame
TARGET_RMS_DBFS = -20.0  # dBFS: loudness of the active part after normalisation
PEAK_LIMIT = 0.99  # never scale a sample beyond this

AudioSource = Union[str, os.PathLike, bytes, bytearray, tuple]


class AudioError(ValueError):
    """Input that cannot be used. The message is written for the person who supplied the audio."""


# --- decoding -----------------------------------------------------------------------------------
def _int_to_float(x: np.ndarray) -> np.ndarray:
    """Integer PCM of any width to float32 in [-1, 1]."""
    if x.dtype == np.uint8:
        return (x.astype(np.float32) - 128.0) / 128.0
    info = np.iinfo(x.dtype)
    return (x.astype(np.float64) / float(-info.min)).astype(np.float32)


def _as_float_frames(x: np.ndarray) -> np.ndarray:
    """Any numeric array to float32 (samples, channels)."""
    x = np.asarray(x)
    if x.size == 0:
        raise AudioError("The recording is empty: it contains no samples.")
    if x.dtype.kind in "iu":
        x = _int_to_float(x)
    elif x.dtype.kind == "f":
        x = x.astype(np.float32, copy=False)
    elif x.dtype.kind == "b":
        raise AudioError("That is not audio: the samples are true/false values.")
    else:
        raise AudioError("That is not audio: the samples are not numbers.")
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim == 2:
        # Gradio and soundfile give (samples, channels); accept (channels, samples) when it is unambiguous.
        if x.shape[0] <= 16 < x.shape[1]:
            x = x.T
    else:
        raise AudioError(f"That is not audio: expected samples x channels, got an array of {x.ndim} dimensions.")
    return x


def _decode_soundfile(data: bytes):
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as f:
        rate, frames = f.samplerate, f.frames
        _check_rate(rate)
        if frames > 0 and frames / rate > MAX_DURATION_S:
            raise _too_long(frames / rate)
        x = f.read(dtype="float32", always_2d=True)
    return x, rate


def _decode_av(data: bytes):
    """Containers libsndfile cannot open (m4a/aac, webm, mp4...). PyAV bundles its own FFmpeg."""
    import av

    chunks, rate = [], None
    with av.open(io.BytesIO(data), mode="r") as container:
        streams = container.streams.audio
        if not streams:
            raise AudioError("This file contains no sound: it may be a picture, a video without audio, or a document.")
        stream = streams[0]
        # keep the stream's own rate and channels: resampling is done once, by the project's resampler
        to_float = av.AudioResampler(format="fltp")
        total = 0
        for frame in container.decode(stream):
            rate = rate or frame.sample_rate
            for out in to_float.resample(frame):
                a = out.to_ndarray()  # (channels, samples)
                chunks.append(a)
                total += a.shape[1]
            if rate and total / rate > MAX_DURATION_S:
                raise _too_long(total / rate)
    if rate is None or not chunks:
        raise AudioError("The recording is empty: it contains no samples.")
    _check_rate(rate)
    n_ch = max(c.shape[0] for c in chunks)
    x = np.concatenate([c if c.shape[0] == n_ch else np.repeat(c[:1], n_ch, 0) for c in chunks], axis=1)
    return x.T.astype(np.float32), rate


def _decode_bytes(data: bytes):
    if len(data) == 0:
        raise AudioError("The file is empty (0 bytes).")
    try:
        return _decode_soundfile(data)
    except AudioError:
        raise
    except Exception:
        pass
    try:
        return _decode_av(data)
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(
            "This file could not be read as audio. It may be damaged, cut short, or not a sound file "
            "(wav, flac, ogg/opus, mp3, m4a, aiff and webm work)."
        ) from e


def _check_rate(rate) -> None:
    if not isinstance(rate, (int, np.integer)) or not MIN_INPUT_RATE_HZ <= int(rate) <= MAX_INPUT_RATE_HZ:
        raise AudioError(
            f"The sample rate {rate} Hz is not usable: audio must be recorded at "
            f"{MIN_INPUT_RATE_HZ // 1000}-{MAX_INPUT_RATE_HZ // 1000} kHz."
        )


def _too_long(seconds: float) -> AudioError:
    return AudioError(
        f"The recording is {seconds / 60:.1f} minutes long; the limit is {MAX_DURATION_S / 60:g} minutes. "
        "Please cut it shorter."
    )


# --- resampling ---------------------------------------------------------------------------------
def resample(x: np.ndarray, orig_rate: int, new_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample float32 (samples,) with the project's one resampler (see RESAMPLER)."""
    if orig_rate == new_rate:
        return x
    g = math.gcd(int(orig_rate), int(new_rate))
    y = AF.resample(torch.from_numpy(np.ascontiguousarray(x)), int(orig_rate) // g, int(new_rate) // g, **RESAMPLER)
    return y.numpy()


# --- the public loader --------------------------------------------------------------------------
def load_audio(source: AudioSource) -> np.ndarray:
    """Decode `source` to 16 kHz mono float32 in [-1, 1], shape (samples,).

    source: a path, raw bytes of a file, or Gradio's (sample_rate, array) tuple with int16, int32 or
    float samples shaped (samples,) or (samples, channels).
    Raises AudioError (a ValueError) with a message for non-programmers for every unusable input.
    """
    try:
        if isinstance(source, tuple):
            if len(source) != 2:
                raise AudioError("Expected (sample_rate, samples) from the recorder.")
            rate, array = source
            if isinstance(rate, float) and rate.is_integer():
                rate = int(rate)
            _check_rate(rate)
            x = _as_float_frames(array)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            x, rate = _decode_bytes(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise AudioError(f"No audio file was found at '{path.name}'.")
            x, rate = _decode_bytes(path.read_bytes())
        else:
            raise AudioError(f"Cannot read audio from a {type(source).__name__}; give a file or a recording.")
        return _finish(x, int(rate))
    except AudioError:
        raise
    except MemoryError as e:
        raise AudioError("The recording is too large to process.") from e
    except Exception as e:  # nothing but AudioError escapes
        raise AudioError("This audio could not be processed. It may be damaged or in an unusual format.") from e


def _finish(x: np.ndarray, rate: int) -> np.ndarray:
    """(samples, channels) float32 at `rate` -> validated 16 kHz mono float32."""
    if x.shape[0] == 0:
        raise AudioError("The recording is empty: it contains no samples.")
    if not np.isfinite(x).all():
        raise AudioError("The recording is damaged: some samples are not numbers (NaN or infinite).")
    seconds = x.shape[0] / rate
    if seconds > MAX_DURATION_S:
        raise _too_long(seconds)
    if seconds < MIN_DURATION_S:
        raise AudioError(
            f"The recording is too short ({seconds:.2f} s). Please record at least {MIN_DURATION_S:g} s of speech."
        )
    mono = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    if float(np.abs(x).max()) < SILENCE_PEAK:
        raise AudioError("The recording is silent: no sound at all was captured. Check the microphone.")
    mono = resample(np.ascontiguousarray(mono, dtype=np.float32), rate)
    peak = float(np.abs(mono).max())
    if peak > 1.0:  # float files may carry headroom above full scale; bring them into range
        mono = mono / peak
    return mono.astype(np.float32, copy=False)


# --- the separate speech preparation step -------------------------------------------------------
FRAME_S, FRAME_HOP_S = 0.025, 0.010  # s: frames for the energy measurements of prepare_speech


def _speech_activity(audio: np.ndarray):
    """(start, end, rms): the kept span of prepare_speech and the RMS of its active frames."""
    win, hop = int(FRAME_S * SAMPLE_RATE), int(FRAME_HOP_S * SAMPLE_RATE)
    if audio.shape[0] < win:
        return 0, audio.shape[0], float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, win)[::hop]
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    energy_db = 10 * np.log10(power + 1e-12)
    active = energy_db > energy_db.max() - TRIM_TOP_DB
    idx = np.flatnonzero(active)
    margin = int(TRIM_MARGIN_S * SAMPLE_RATE)
    start, end = max(0, idx[0] * hop - margin), min(audio.shape[0], idx[-1] * hop + win + margin)
    return int(start), int(end), float(np.sqrt(np.mean(power[active])))


def speech_bounds(audio: np.ndarray) -> tuple[int, int]:
    """(start, end) sample indices of the span that prepare_speech keeps."""
    start, end, _ = _speech_activity(np.asarray(audio, dtype=np.float32))
    return start, end


def prepare_speech(audio: np.ndarray) -> np.ndarray:
    """Trim silence at both ends and normalise loudness. (samples,) -> (samples',) float32, 16 kHz.

    Policy, identical for training clips and user recordings:
    1. Frame energy in 25 ms frames every 10 ms. Frames within TRIM_TOP_DB (40 dB) of the loudest frame
       are active. Everything before the first and after the last active frame is cut, keeping
       TRIM_MARGIN_S (0.1 s) of context on each side. Pauses inside the speech are kept.
    2. The active frames are scaled to TARGET_RMS_DBFS (-20 dBFS) RMS, then scaled down if needed so
       that no sample exceeds PEAK_LIMIT (0.99). Loudness says little about emotion once the microphone
       distance is unknown, and this puts studio clips and laptop recordings on one footing.
    """
    audio = np.asarray(audio, dtype=np.float32)
    start, end, rms = _speech_activity(audio)
    out = audio[start:end]
    if rms > 0 and out.size:
        gain = 10 ** (TARGET_RMS_DBFS / 20) / rms
        peak = float(np.abs(out).max())
        gain = min(gain, PEAK_LIMIT / peak) if peak > 0 else gain
        out = out * gain
    return out.astype(np.float32)
