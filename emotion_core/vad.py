"""Voice activity detection for long clips: Silero VAD, whose model ships inside its PyPI package."""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import torch

from .audio import SAMPLE_RATE

MIN_SPEECH_S = 0.25  # s: shorter bursts are not speech regions
MIN_SILENCE_S = 0.3  # s: shorter pauses do not split a region
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
                                       min_speech_duration_ms=int(MIN_SPEECH_S * 1000),
                                       min_silence_duration_ms=int(MIN_SILENCE_S * 1000))
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]
