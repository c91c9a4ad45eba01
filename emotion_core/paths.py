"""Where things live. Each path comes from an environment variable (and a CLI flag where a command takes it)."""
import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_ENV = "EMOTION_DATA_DIR"  # the datasets (RAVDESS, CREMA-D, TESS, SAVEE) in their own layouts
WHISPER_ENV = "EMOTION_WHISPER"  # the Whisper encoder: a local directory or a Hub id
CHECKPOINT_ENV = "EMOTION_CHECKPOINTS"  # trained checkpoints
DEFAULT_DATA_DIR = "data"
DEFAULT_WHISPER = "openai/whisper-base"
DEFAULT_CHECKPOINT_DIR = PROJECT_DIR / "checkpoints"


def data_dir(cli_value: str | None = None) -> Path:
    return Path(cli_value or os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR)


def whisper_source(cli_value: str | None = None) -> str:
    return cli_value or os.environ.get(WHISPER_ENV) or DEFAULT_WHISPER


def checkpoint_dir(cli_value: str | None = None) -> Path:
    return Path(cli_value or os.environ.get(CHECKPOINT_ENV) or DEFAULT_CHECKPOINT_DIR)
