"""Where the tests find the shared corpus and weights: the environment variables, else ../shared."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DATA_DIR = Path(os.environ.get("EMOTION_DATA_DIR") or SHARED / "data" / "audio").resolve()
MANIFEST = DATA_DIR.parent / "manifest.csv"
WHISPER_DIR = Path(os.environ.get("EMOTION_WHISPER") or SHARED / "weights" / "whisper-base-encoder-hf").resolve()
CHECKPOINTS = REPO / "checkpoints"

HAVE_WHISPER = (WHISPER_DIR / "config.json").is_file()
RUNNING = ("cnn1d", "lstm", "cnn2d") + (("whisper",) if HAVE_WHISPER else ())  # the Whisper head needs the encoder


def _outputs() -> set:
    """The outputs the app answers with: the families running, and the ensemble when two or more of its weighted
    members run (one member alone is that member, answering under its own name)."""
    import json

    spec = json.loads((CHECKPOINTS / "ensemble.json").read_text())
    weighted = {
        m for m, w in zip(spec["members"], spec.get("weights", [1.0] * len(spec["members"])), strict=False) if w > 0
    }
    return set(RUNNING) | ({"ensemble"} if len(weighted & set(RUNNING)) >= 2 else set())


FAMILIES = _outputs()  # every output's name

needs_corpus = pytest.mark.skipif(not MANIFEST.is_file(), reason=f"shared corpus not found at {DATA_DIR}")
needs_whisper = pytest.mark.skipif(not HAVE_WHISPER, reason=f"Whisper encoder not found at {WHISPER_DIR}")


def real_speech(seconds_of_pause: float = 4.0):
    """Corpus utterances (RAVDESS, CREMA-D), a pause, another utterance: a long clip of real speech at
    16 kHz. Returns (audio, (pause start s, pause end s))."""
    import numpy as np

    from emotion_core import load_audio

    a = load_audio(DATA_DIR / "RAVDESS/Actor_03/03-01-05-02-01-01-03.opus")
    b = load_audio(DATA_DIR / "CREMA-D/AudioWAV/1015_IEO_HAP_HI.opus")
    c = load_audio(DATA_DIR / "RAVDESS/Actor_03/03-01-04-02-02-01-03.opus")
    pause = np.zeros(int(seconds_of_pause * 16000), np.float32)
    start = (len(a) + len(b)) / 16000
    return np.concatenate([a, b, pause, c]), (start, start + seconds_of_pause)
