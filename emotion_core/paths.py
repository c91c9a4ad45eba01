"""Where things live. Each path is a setting (emotion_core.settings) and a CLI flag where a command takes it:
a command-line value wins over the setting."""

from pathlib import Path

from .settings import PROJECT_DIR, Settings, current

DEFAULT_CHECKPOINT_DIR = Settings().checkpoints  # where the shipped checkpoints live (whatever the setting says)

__all__ = ["PROJECT_DIR", "checkpoint_dir", "data_dir", "whisper_source"]


def data_dir(cli_value: str | None = None) -> Path:
    """The datasets directory: --data, else EMOTION_DATA_DIR, else ./data."""
    return current().or_cli("data_dir", cli_value)


def whisper_source(cli_value: str | None = None) -> str:
    """The Whisper encoder: --whisper, else EMOTION_WHISPER, else the Hub id openai/whisper-base."""
    return current().or_cli("whisper", cli_value)


def checkpoint_dir(cli_value: str | None = None) -> Path:
    """The checkpoints: --checkpoints, else EMOTION_CHECKPOINTS, else ./checkpoints of the project."""
    return current().or_cli("checkpoints", cli_value)
