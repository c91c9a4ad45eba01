"""Where things live. Each path is a setting (emotion_core.settings) and a CLI flag where a command takes it."""
from pathlib import Path

from . import settings
from .settings import PROJECT_DIR

DATA_ENV = "EMOTION_DATA_DIR"  # the datasets (RAVDESS, CREMA-D, TESS, SAVEE) in their own layouts
WHISPER_ENV = "EMOTION_WHISPER"  # the Whisper encoder: a local directory or a Hub id
CHECKPOINT_ENV = "EMOTION_CHECKPOINTS"  # trained checkpoints
DEFAULT_DATA_DIR = settings.SETTINGS[DATA_ENV].default
DEFAULT_WHISPER = settings.SETTINGS[WHISPER_ENV].default
DEFAULT_CHECKPOINT_DIR = settings.SETTINGS[CHECKPOINT_ENV].default

__all__ = ["PROJECT_DIR", "checkpoint_dir", "data_dir", "whisper_source"]


def data_dir(cli_value: str | None = None) -> Path:
    return settings.get(DATA_ENV, cli_value)


def whisper_source(cli_value: str | None = None) -> str:
    return settings.get(WHISPER_ENV, cli_value)


def checkpoint_dir(cli_value: str | None = None) -> Path:
    return settings.get(CHECKPOINT_ENV, cli_value)
