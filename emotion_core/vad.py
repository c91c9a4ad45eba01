"""Voice activity detection for long clips: Silero VAD, whose model ships inside its PyPI package."""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import torch

from .audio import SAMPLE_RATE

MIN_SPEECH_S = 0.25  # s: shorter bursts are not speech regions
MIN_SILENCE_S = 0.3  # s: shorter pauses do not split a region
# Speech probability above which a 32 ms chunk is speech. Silero's default (0.5) finds no speech at all in
# many of CREMA-D's shouted clips; at 0.2 the synthetic non-speech of bench/no_speech.py still holds no
# region, and fewer real clips are missed (bench/no_speech.json).
VAD_THRESHOLD = 0.2
# The "no speech" gate (see enough_speech), chosen with `python -m bench.no_speech` (bench/no_speech.json)
MIN_SPEECH_TOTAL_S = 0.25  # s of speech the VAD must find in the prepared clip
MIN_SPEECH_SHARE = 0.0  # fraction of the prepared clip that must be speech
NO_SPEECH_MESSAGE = ("I could not find speech in this clip: no voice was detected, only other sound (noise, music, a tone "
                     "or silence). Please record someone speaking, close to the microphone.")
_LOCK = threading.Lock()  # the TorchScript model carries state between chunks: one caller at a time


@lru_cache(maxsize=1)
def _model():
    from silero_vad import load_silero_vad

    return load_silero_vad()


def speech_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """16 kHz mono float32 (samples,) -> [(start_s, end_s)] of speech, in seconds of `audio`."""
    from silero_vad import get_speech_timestamps

    with _LOCK, torch.inference_mode():
        stamps = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(audio)), _model(), sampling_rate=SAMPLE_RATE,
                                       threshold=VAD_THRESHOLD,
                                       min_speech_duration_ms=int(MIN_SPEECH_S * 1000),
                                       min_silence_duration_ms=int(MIN_SILENCE_S * 1000))
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def enough_speech(regions: list[tuple[float, float]], duration_s: float) -> bool:
    """Is there enough speech to judge? regions from speech_regions over a clip of duration_s seconds:
    at least MIN_SPEECH_TOTAL_S seconds of speech that are at least MIN_SPEECH_SHARE of the clip."""
    speech_s = sum(b - a for a, b in regions)
    return speech_s >= MIN_SPEECH_TOTAL_S and speech_s >= MIN_SPEECH_SHARE * duration_s
