"""Voice activity detection: Silero VAD, whose model ships inside its PyPI package. One pass over a clip gives
both the speech regions (where the timeline's windows go) and the "no speech" gate's score.

The model runs in ONNX Runtime (the package's silero_vad.onnx, one thread): the same speech probabilities as
its TorchScript model (tests/test_no_speech.py), in less CPU time (issue 25)."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soxr
import torch

from .audio import SAMPLE_RATE

VAD_RATE = 8000  # Hz: Silero reads the speech at its 8 kHz rate (32 ms chunks of 256 samples)
LEAD_IN_S = 0.5  # s of digital silence put before the speech: prepare_speech cuts a clip 0.1 s before its first
# sound, and with no quiet to start from Silero misses some shouted clips entirely (bench/no_speech.json)
CHUNK = 256  # samples at VAD_RATE: Silero's chunk
CONTEXT = 32  # samples at VAD_RATE: the end of the previous chunk Silero reads with each chunk
MIN_SPEECH_S = 0.25  # s: shorter bursts are not speech regions
MIN_SILENCE_S = 0.3  # s: shorter pauses do not split a region
VAD_THRESHOLD = 0.2  # speech probability above which a chunk belongs to a speech region (Silero's default 0.5
# misses much of CREMA-D's shouting)
# The "no speech" gate (enough_speech), chosen with `python -m bench.no_speech --clips 0` (bench/no_speech.json):
# the score is the mean speech probability of the most speech-like SCORE_S of the clip. Every decodable corpus
# clip scores at least 0.15; none of the synthetic non-speech sounds (noise, tones, hum, music...) above 0.08.
SCORE_S = 0.25  # s
MIN_SPEECH_SCORE = 0.11  # between the two, nearer neither
NO_SPEECH_MESSAGE = (
    "I could not find speech in this clip: no voice was detected, only other sound (noise, music, a tone "
    "or silence). Please record someone speaking, close to the microphone."
)
_LOCK = threading.Lock()  # the TorchScript model carries state between chunks: one caller at a time


@dataclass
class SpeechActivity:
    regions: list  # [(start_s, end_s)] of speech, in seconds of the audio given
    score: float  # mean speech probability of the most speech-like SCORE_S (0..1)


@lru_cache(maxsize=2)
def _model(onnx: bool = True):
    """Silero VAD: its ONNX model in ONNX Runtime (the app's), or its TorchScript model (onnx=False: the
    reference the ONNX one is checked against)."""
    return _silero().load_silero_vad(onnx=onnx)


@lru_cache(maxsize=1)
def _silero():
    """The silero_vad package. Its import sets torch's threads to 1 for the whole process: the count the app, the
    lab or a benchmark chose is put back."""
    threads = torch.get_num_threads()
    import silero_vad

    torch.set_num_threads(threads)
    return silero_vad


class _Recorder:
    """The Silero model as get_speech_timestamps calls it, keeping each chunk's speech probability (the TorchScript
    reference, whose state lives in the model: one caller at a time)."""

    def __init__(self, model):
        self.model, self.probabilities = model, []

    def reset_states(self):
        self.model.reset_states()
        self.probabilities = []

    def __call__(self, chunk, sampling_rate):
        p = self.model(chunk, sampling_rate)
        self.probabilities.append(float(p))
        return p


class _Replay:
    """get_speech_timestamps' model, answering each chunk with its probability computed beforehand
    (chunk_probabilities): Silero's own rules then turn them into regions."""

    def __init__(self, probabilities: np.ndarray):
        self.probabilities, self.next = probabilities.tolist(), 0

    def reset_states(self):
        self.next = 0

    def __call__(self, chunk, sampling_rate):
        p = self.probabilities[self.next]
        self.next += 1
        return torch.tensor([[p]])


def chunk_probabilities(session, x: np.ndarray) -> np.ndarray:
    """(samples,) float32 at VAD_RATE -> (ceil(samples / CHUNK),) Silero's speech probability of each CHUNK (the last
    one padded with zeros), from its ONNX session (`session`), computed as its OnnxWrapper computes them: each
    chunk with the CONTEXT samples before it and the state the previous chunk left. The same numbers, without the
    wrapper's per-chunk torch conversions (a third of the detector's time), and with the state kept here, so that
    requests run it side by side."""
    x = np.pad(x, (0, -len(x) % CHUNK)).astype(np.float32).reshape(-1, CHUNK)
    state, context = np.zeros((2, 1, 128), np.float32), np.zeros((1, CONTEXT), np.float32)
    rate = np.array(VAD_RATE, dtype=np.int64)
    out = np.empty(len(x), np.float32)
    for k, chunk in enumerate(x):
        framed = np.concatenate([context, chunk[None]], axis=1)
        p, state = session.run(None, {"input": framed, "state": state, "sr": rate})
        out[k], context = p[0, 0], framed[:, -CONTEXT:]
    return out


def speech_activity(audio: np.ndarray, onnx: bool = True) -> SpeechActivity:
    """16 kHz mono float32 (samples,) -> its speech regions and the gate's score, from one Silero pass over
    LEAD_IN_S of silence and the audio at VAD_RATE (onnx: which of Silero's two models, see _model)."""
    get_speech_timestamps = _silero().get_speech_timestamps
    lead = int(LEAD_IN_S * VAD_RATE)
    x = np.concatenate(
        [np.zeros(lead, np.float32), soxr.resample(np.asarray(audio, np.float32), SAMPLE_RATE, VAD_RATE)]
    )
    with nullcontext() if onnx else _LOCK, torch.inference_mode():
        model = _Replay(chunk_probabilities(_model(True).session, x)) if onnx else _Recorder(_model(False))
        stamps = get_speech_timestamps(
            torch.from_numpy(x.astype(np.float32)),
            model,
            sampling_rate=VAD_RATE,
            threshold=VAD_THRESHOLD,
            min_speech_duration_ms=int(MIN_SPEECH_S * 1000),
            min_silence_duration_ms=int(MIN_SILENCE_S * 1000),
        )
        probabilities = np.array(model.probabilities[lead // CHUNK :])
    regions = [
        (max(0.0, (s["start"] - lead) / VAD_RATE), (s["end"] - lead) / VAD_RATE) for s in stamps if s["end"] > lead
    ]
    k = max(1, round(SCORE_S * VAD_RATE / CHUNK))
    score = float(np.sort(probabilities)[-k:].mean()) if probabilities.size else 0.0
    return SpeechActivity(regions, score)


def speech_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """16 kHz mono float32 (samples,) -> [(start_s, end_s)] of speech, in seconds of `audio`."""
    return speech_activity(audio).regions


def enough_speech(activity: SpeechActivity) -> bool:
    """Is there enough speech to judge? The clip's most speech-like SCORE_S must score MIN_SPEECH_SCORE."""
    return activity.score >= MIN_SPEECH_SCORE
