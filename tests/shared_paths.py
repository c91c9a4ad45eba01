"""Where the tests find the shared corpus and weights: the environment variables, else ../shared."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DATA_DIR = Path(os.environ.get("EMOTION_DATA_DIR") or SHARED / "data" / "audio")
MANIFEST = DATA_DIR.parent / "manifest.csv"
WHISPER_DIR = Path(os.environ.get("EMOTION_WHISPER") or SHARED / "weights" / "whisper-base-encoder-hf")
CHECKPOINTS = REPO / "checkpoints"

needs_corpus = pytest.mark.skipif(not MANIFEST.is_file(), reason=f"shared corpus not found at {DATA_DIR}")
