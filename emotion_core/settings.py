"""Every setting of the app, the training commands and the benchmarks: the EMOTION_* environment variables,
each read here and nowhere else, with its default, unit and meaning on one line.

    python -c "from emotion_core import settings; print(settings.markdown_table())"   # the README's table

To add a setting, add one line to SETTINGS (and paste the printed table into the README; a test checks it).
Values are read when asked for (`get`), so a test or a command can set a variable before using it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    parse: Callable[[str], Any]  # text of the variable -> value
    default: Any  # value when the variable is unset or empty
    unit: str
    meaning: str


SETTINGS = {s.name: s for s in (
    Setting("EMOTION_DATA_DIR", Path, Path("data"), "directory", "the datasets (RAVDESS, CREMA-D, TESS, SAVEE) in their official layouts, any audio extension"),
    Setting("EMOTION_WHISPER", str, "openai/whisper-base", "directory or Hub id", "the Whisper encoder the whisper family reads"),
    Setting("EMOTION_CHECKPOINTS", Path, PROJECT_DIR / "checkpoints", "directory", "trained checkpoints (`<family>.pt`, `ensemble.json`)"),
    Setting("EMOTION_CACHE_DIR", Path, PROJECT_DIR / "cache", "directory", "training feature cache (`mels.npy`, `clips.csv`)"),
    Setting("EMOTION_CONCURRENCY", int, 2, "requests", "requests the app runs at once; each gets cores / this many torch threads"),
    Setting("EMOTION_QUEUE_SIZE", int, 64, "requests", "requests waiting in the app's queue before new ones are refused"),
    Setting("EMOTION_MAX_UPLOAD", str, "25mb", "size (Gradio's `25mb` form)", "largest upload the app accepts"),
    Setting("EMOTION_MAX_SECONDS", float, 600.0, "s", "longest audio analysed; longer clips are refused with a message"),
    Setting("EMOTION_SWEEP_S", float, 60.0, "s", "an upload no request or open page holds is deleted after this long; the app sweeps this often"),
    Setting("EMOTION_UPLOAD_S", float, 120.0, "s", "longest one upload request may take; a slower upload is cut off, refused and deleted"),
    Setting("EMOTION_FAST", str, "off", "`on` or `off`", "`on`: the Whisper encoder with int8 linear layers on CPU (not adopted: 0.004 lower validation cbUAR, up to 0.009; docs/speed.md)"),
    Setting("EMOTION_EFFICIENTAT", str, "", "file", "training only: the AudioSet-pretrained EfficientAT mn04 state dict (empty: `../shared/weights/efficientat-mn04-as/mn04_as_mAP_432.pt`)"),
    Setting("EMOTION_TEMP_DIR", str, "", "directory", "the app's own temporary directory, cleared at start-up and exit (empty: `<system temp>/emotion-app`)"),
)}


def is_set(name: str) -> bool:
    """True when the variable is given (not unset, not empty)."""
    return bool(os.environ.get(SETTINGS[name].name))


def get(name: str, cli_value: str | None = None) -> Any:
    """The value of a setting: a command-line value if given, else the environment variable, else the default.
    A value that does not parse raises ValueError naming the variable."""
    s = SETTINGS[name]
    text = cli_value or os.environ.get(name)
    if not text:
        return s.default
    try:
        return s.parse(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a valid {s.unit} value ({s.meaning})") from None


def _shown(value: Any) -> str:
    if isinstance(value, Path):
        return f"`{value.relative_to(PROJECT_DIR)}/`" if value.is_absolute() else f"`{value}/` (of the working directory)"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def markdown_table() -> str:
    """The README's table: one row per setting."""
    rows = ["| variable | meaning | unit | default |", "|---|---|---|---|"]
    rows += [f"| `{s.name}` | {s.meaning} | {s.unit} | {_shown(s.default)} |" for s in SETTINGS.values()]
    return "\n".join(rows)
