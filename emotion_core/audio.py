"""Audio in: decode anything a browser, phone or dataset produces into 16 kHz mono float32.

`load_audio` decodes, down-mixes, resamples and validates. It never trims or normalises: that is
`prepare_speech`, a separate step with the policy written below, applied identically in training and
inference.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from . import settings

# --- constants (units in the names) -------------------------------------------------------------
SAMPLE_RATE = 16_000  # Hz: every model and feature in this project works at this rate
MIN_DURATION_S = 0.5  # s: shorter clips hold at most a syllable; no family can judge them
MIN_INPUT_RATE_HZ = 4_000  # below this nothing of a voice's emotion survives
MAX_INPUT_RATE_HZ = 384_000  # the highest rate real audio interfaces record at
SILENCE_PEAK = 2.0**-15  # peak below one 16-bit step = digital silence


def max_duration_s() -> float:
    """s: the longest audio analysed (EMOTION_MAX_SECONDS, 10 minutes by default), read when asked."""
    return settings.current().max_seconds


BLOCK_S = 1.0  # s of input decoded, checked, mixed and resampled at a time (see MonoStream)
MIX_CANCEL_DB = -20.0  # dB: a channel mean this far below the channels' own energy cancelled; take one channel

# The one resampler: libsoxr (the SoX resampler) at "VHQ", streamed block by block. Its pass band ends
# at 95% of the new Nyquist frequency and its stop band is attenuated by 175 dB, so 44.1/48/96/384 kHz
# material arrives at 16 kHz without aliasing, and any rate ratio (24414 Hz, 22051 Hz...) costs memory
# for one block only. The corpus is 16 kHz already: training never resamples.
RESAMPLER_QUALITY = "VHQ"

# prepare_speech policy (see its docstring)
TRIM_TOP_DB = 40.0  # dB below the loudest 25 ms frame counts as silence at the ends
TRIM_MARGIN_S = 0.10  # s of context kept before the first and after the last active frame
TARGET_RMS_DBFS = -20.0  # dBFS: loudness of the active part after normalisation
PEAK_LIMIT = 0.99  # never scale a sample beyond this

AudioSource = str | os.PathLike | bytes | bytearray | tuple


class AudioError(ValueError):
    """Input that cannot be used. The message is written for the person who supplied the audio."""


# --- decoding: blocks in, 16 kHz mono out --------------------------------------------------------
def _int_to_float(x: np.ndarray) -> np.ndarray:
    """Integer PCM of any width to float32 in [-1, 1]."""
    if x.dtype == np.uint8:
        return (x.astype(np.float32) - 128.0) / 128.0
    info = np.iinfo(x.dtype)
    return (x.astype(np.float64) / float(-info.min)).astype(np.float32)


def _as_frames(x: np.ndarray) -> np.ndarray:
    """Any numeric array to (samples, channels), dtype unchanged (converted block by block later)."""
    x = np.asarray(x)
    if x.size == 0:
        raise AudioError("The recording is empty: it contains no samples.")
    if x.dtype.kind == "b":
        raise AudioError("That is not audio: the samples are true/false values.")
    if x.dtype.kind not in "iuf":
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


def _as_float(block: np.ndarray) -> np.ndarray:
    """(frames, channels) of any numeric dtype -> float32."""
    return _int_to_float(block) if block.dtype.kind in "iu" else block.astype(np.float32, copy=False)


class MonoStream:
    """Blocks of (frames, channels) float32 at one input rate in; 16 kHz mono float32 out.

    Each block is checked (finite samples, duration so far), mixed to mono and resampled at once
    (soxr's streaming resampler), so memory holds the 16 kHz result and one block, never the decoded
    file. Two mixes are kept: the channel mean and the first channel alone. `result` returns the first
    channel when the mean lost more than MIX_CANCEL_DB of the channels' energy (channels in opposite
    polarity, e.g. a stereo file with one channel inverted), else the mean.
    """

    def __init__(self, rate: int):
        _check_rate(rate)
        self.rate = int(rate)
        self.frames = 0  # input frames seen
        self.peak = 0.0  # over every channel
        self.mix_energy = 0.0  # sum of squares of the channel mean
        self.channel_energy = 0.0  # sum of squares of the channels, averaged over channels
        self._stream = None  # soxr stream over (mean, first channel), created by the first block
        self._out: list[np.ndarray] = []  # (n, 2) blocks at SAMPLE_RATE

    def add(self, block: np.ndarray) -> None:
        """block: (frames, channels) float32 at self.rate."""
        if block.shape[0] == 0:
            return
        if not np.isfinite(block).all():
            raise AudioError("The recording is damaged: some samples are not numbers (NaN or infinite).")
        self.frames += block.shape[0]
        if self.frames > max_duration_s() * self.rate:
            raise _too_long(None)
        self.peak = max(self.peak, float(np.abs(block).max()))
        mean = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        self.mix_energy += float(np.dot(mean, mean))
        self.channel_energy += float(np.einsum("ij,ij->", block, block, dtype=np.float64)) / block.shape[1]
        self._resample(np.stack([mean, block[:, 0]], axis=1), last=False)

    def _resample(self, pair: np.ndarray, last: bool) -> None:
        if self.rate == SAMPLE_RATE:
            self._out.append(pair.astype(np.float32, copy=True))
            return
        if self._stream is None:
            self._stream = soxr.ResampleStream(self.rate, SAMPLE_RATE, 2, dtype="float32", quality=RESAMPLER_QUALITY)
        self._out.append(self._stream.resample_chunk(np.ascontiguousarray(pair, dtype=np.float32), last=last))

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def result(self) -> np.ndarray:
        """The validated 16 kHz mono float32 (samples,); raises AudioError for unusable audio."""
        if self.frames == 0:
            raise AudioError("The recording is empty: it contains no samples.")
        if self.seconds < MIN_DURATION_S:
            raise AudioError(
                f"The recording is too short ({self.seconds:.2f} s). "
                f"Please record at least {MIN_DURATION_S:g} s of speech."
            )
        if self.peak < SILENCE_PEAK:
            raise AudioError("The recording is silent: no sound at all was captured. Check the microphone.")
        self._resample(np.zeros((0, 2), np.float32), last=True)
        cancelled = self.mix_energy < self.channel_energy * 10 ** (MIX_CANCEL_DB / 10)
        column = 1 if cancelled else 0
        mono = np.empty(sum(len(b) for b in self._out), np.float32)
        i = 0
        for b in self._out:
            mono[i : i + len(b)] = b[:, column]
            i += len(b)
        self._out = []
        peak = float(np.abs(mono).max()) if mono.size else 0.0
        if peak > 1.0:  # float files may carry headroom above full scale; bring them into range
            mono /= peak
        return mono


def _decode_soundfile(data: bytes) -> np.ndarray:
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as f:
        rate, frames = f.samplerate, f.frames
        _check_rate(rate)
        if 0 < frames < 2**62 and frames / rate > max_duration_s():  # the header's length; unknown is huge or 0
            raise _too_long(frames / rate)
        mono = MonoStream(rate)
        block = max(1, int(BLOCK_S * rate))
        for x in f.blocks(block, dtype="float32", always_2d=True):
            mono.add(x)
    return mono.result()


def _decode_av(data: bytes) -> np.ndarray:
    """Containers libsndfile cannot open (m4a/aac, webm, mp4...). PyAV bundles its own FFmpeg; frame by frame."""
    import av

    mono = None
    with av.open(io.BytesIO(data), mode="r") as container:
        streams = container.streams.audio
        if not streams:
            raise AudioError("This file contains no sound: it may be a picture, a video without audio, or a document.")
        stream = streams[0]
        # keep the stream's own rate and channels: resampling is done once, by the project's resampler
        to_float = av.AudioResampler(format="fltp")
        for frame in container.decode(stream):
            for out in to_float.resample(frame):
                if mono is None:
                    mono = MonoStream(out.sample_rate)
                elif out.sample_rate != mono.rate:
                    raise AudioError(
                        "The sample rate changes inside this file; please convert it to a standard format."
                    )
                mono.add(out.to_ndarray().T)  # (channels, samples) -> (samples, channels)
    if mono is None:
        raise AudioError("The recording is empty: it contains no samples.")
    return mono.result()


def _decode_bytes(data: bytes) -> np.ndarray:
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


def _too_long(seconds: float | None) -> AudioError:
    """seconds: the real length when known; None when decoding stopped at the limit."""
    most = max_duration_s()
    limit = f"{most / 60:g} minutes" if most >= 60 else f"{most:g} seconds"
    shown = f"{seconds / 60:.1f} minutes" if seconds is not None and seconds >= 60 else f"{seconds or 0:.1f} seconds"
    if seconds is None or shown in (limit, f"{most / 60:.1f} minutes", f"{most:.1f} seconds"):
        return AudioError(f"The recording is longer than {limit}, the limit. Please cut it shorter.")
    return AudioError(f"The recording is {shown} long; the limit is {limit}. Please cut it shorter.")


# --- resampling ---------------------------------------------------------------------------------
def resample(x: np.ndarray, orig_rate: int, new_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample float32 (samples,) with the project's one resampler (see RESAMPLER_QUALITY)."""
    if orig_rate == new_rate:
        return x
    return soxr.resample(np.ascontiguousarray(x, dtype=np.float32), orig_rate, new_rate, quality=RESAMPLER_QUALITY)


# --- the public loader --------------------------------------------------------------------------
def load_audio(source: AudioSource) -> np.ndarray:
    """Decode `source` to 16 kHz mono float32 in [-1, 1], shape (samples,).

    source: a path, raw bytes of a file, or Gradio's (sample_rate, array) tuple with int16, int32 or
    float samples shaped (samples,) or (samples, channels).
    Files are decoded in blocks of BLOCK_S, each mixed to mono and resampled before the next is read
    (see MonoStream): memory is bounded by the 16 kHz mono result, whatever the file's rate and channels.
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
            return _from_array(_as_frames(array), int(rate))
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _decode_bytes(bytes(source))
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise AudioError(f"No audio file was found at '{path.name}'.")
            return _decode_bytes(path.read_bytes())
        raise AudioError(f"Cannot read audio from a {type(source).__name__}; give a file or a recording.")
    except AudioError:
        raise
    except MemoryError as e:
        raise AudioError("The recording is too large to process.") from e
    except Exception as e:  # nothing but AudioError escapes
        raise AudioError("This audio could not be processed. It may be damaged or in an unusual format.") from e


def _from_array(x: np.ndarray, rate: int) -> np.ndarray:
    """(samples, channels) of any numeric dtype at `rate` -> validated 16 kHz mono float32, block by block."""
    if x.shape[0] / rate > max_duration_s():
        raise _too_long(x.shape[0] / rate)
    mono = MonoStream(rate)
    step = max(1, int(BLOCK_S * rate))
    for i in range(0, x.shape[0], step):
        mono.add(_as_float(x[i : i + step]))
    return mono.result()


# --- the separate speech preparation step -------------------------------------------------------
FRAME_S, FRAME_HOP_S = 0.025, 0.010  # s: frames for the energy measurements of prepare_speech
ENERGY_BLOCK = 6000  # frames (60 s) measured at a time: a 10-minute clip's frames never all exist at once


def _speech_activity(audio: np.ndarray):
    """(start, end, rms): the kept span of prepare_speech and the RMS of its active frames."""
    win, hop = int(FRAME_S * SAMPLE_RATE), int(FRAME_HOP_S * SAMPLE_RATE)
    if audio.shape[0] < win:
        return 0, audio.shape[0], float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, win)[::hop]  # a view: no copy
    # bounded memory for long clips
    power = np.concatenate(
        [
            np.mean(frames[i : i + ENERGY_BLOCK].astype(np.float64) ** 2, axis=1)
            for i in range(0, len(frames), ENERGY_BLOCK)
        ]
    )
    energy_db = 10 * np.log10(power + 1e-12)
    active = energy_db > energy_db.max() - TRIM_TOP_DB
    idx = np.flatnonzero(active)
    margin = int(TRIM_MARGIN_S * SAMPLE_RATE)
    start, end = max(0, idx[0] * hop - margin), min(audio.shape[0], idx[-1] * hop + win + margin)
    return int(start), int(end), float(np.sqrt(np.mean(power[active])))


@dataclass
class PreparedSpeech:
    """prepare_speech's result with where it came from: audio (samples',) float32 at 16 kHz is
    input[start:end] scaled; start and end are sample indices of the input."""

    audio: np.ndarray
    start: int
    end: int


def speech_bounds(audio: np.ndarray) -> tuple[int, int]:
    """(start, end) sample indices of the span that prepare_speech keeps."""
    start, end, _ = _speech_activity(np.asarray(audio, dtype=np.float32))
    return start, end


def prepare_speech_span(audio: np.ndarray) -> PreparedSpeech:
    """prepare_speech and the span it kept, from one pass of the energy measurement."""
    audio = np.asarray(audio, dtype=np.float32)
    start, end, rms = _speech_activity(audio)
    out = audio[start:end]
    if rms > 0 and out.size:
        gain = 10 ** (TARGET_RMS_DBFS / 20) / rms
        peak = float(np.abs(out).max())
        gain = min(gain, PEAK_LIMIT / peak) if peak > 0 else gain
        out = out * np.float32(gain)
    return PreparedSpeech(out if out.base is None else out.copy(), start, end)  # never a view of the input


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
    return prepare_speech_span(audio).audio
