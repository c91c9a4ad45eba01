"""Every setting of the app, the training commands and the benchmarks: one typed, frozen `Settings`, read from
the EMOTION_* environment variables once (`current()`), each field with its variable, default, unit and meaning.

    from emotion_core.settings import current
    current().concurrency                     # 2 unless EMOTION_CONCURRENCY says otherwise
    python -c "from emotion_core import settings; print(settings.markdown_table())"   # the README's table

To add a setting, add one field to Settings (and paste the printed table into the README; a test checks it).
`current()` reads the environment the first time it is asked and keeps that object; a test that changes a
variable calls `reload()` (or builds `Settings.from_environ({...})` itself). An empty variable counts as unset.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _on_off(text: str) -> bool:
    if text.lower() not in ("on", "off"):
        raise ValueError(text)
    return text.lower() == "on"


def _setting(env: str, parse: Callable[[str], Any], default: Any, unit: str, meaning: str):
    """A field of Settings: the environment variable that sets it, how its text parses, its default and doc."""
    return field(default=default, metadata={"env": env, "parse": parse, "unit": unit, "meaning": meaning})


@dataclass(frozen=True)
class Settings:
    """The value of every setting; `given` holds the fields whose variable was set (not unset, not empty)."""

    data_dir: Path = _setting(
        "EMOTION_DATA_DIR",
        Path,
        Path("data"),
        "directory",
        "the datasets (RAVDESS, CREMA-D, TESS, SAVEE) in their official layouts, any audio extension",
    )
    whisper: str = _setting(
        "EMOTION_WHISPER",
        str,
        "openai/whisper-base",
        "directory or Hub id",
        "the Whisper encoder the whisper family reads",
    )
    checkpoints: Path = _setting(
        "EMOTION_CHECKPOINTS",
        Path,
        PROJECT_DIR / "checkpoints",
        "directory",
        "trained checkpoints (`<family>.pt`, `ensemble.json`)",
    )
    cache_dir: Path = _setting(
        "EMOTION_CACHE_DIR",
        Path,
        PROJECT_DIR / "cache",
        "directory",
        "training feature cache (`mels.npy`, `clips.csv`)",
    )
    concurrency: int = _setting(
        "EMOTION_CONCURRENCY",
        int,
        2,
        "requests",
        "requests the app runs at once; each gets cores / this many torch threads",
    )
    queue_size: int = _setting(
        "EMOTION_QUEUE_SIZE", int, 64, "requests", "requests waiting in the app's queue before new ones are refused"
    )
    max_upload: str = _setting(
        "EMOTION_MAX_UPLOAD", str, "25mb", "size (Gradio's `25mb` form)", "largest upload the app accepts"
    )
    max_seconds: float = _setting(
        "EMOTION_MAX_SECONDS", float, 600.0, "s", "longest audio analysed; longer clips are refused with a message"
    )
    sweep_s: float = _setting(
        "EMOTION_SWEEP_S",
        float,
        60.0,
        "s",
        "an upload no request or open page holds is deleted after this long; the app sweeps this often",
    )
    upload_s: float = _setting(
        "EMOTION_UPLOAD_S",
        float,
        120.0,
        "s",
        "longest one upload request may take; a slower upload is cut off, refused and deleted",
    )
    fast: bool = _setting(
        "EMOTION_FAST",
        _on_off,
        False,
        "`on` or `off`",
        "`on`: the Whisper encoder with int8 linear layers on CPU (not adopted: 0.004 lower "
        "validation cbUAR, up to 0.009; docs/speed.md)",
    )
    onnx: bool = _setting(
        "EMOTION_ONNX",
        _on_off,
        True,
        "`on` or `off`",
        "`on`: on CPU the app moves the Whisper encoder and the 2D family to ONNX Runtime once it is ready "
        "(exported on the first start into `~/.cache/emotion-recognition/`; the same answers in less CPU time, "
        "docs/speed.md)",
    )
    efficientat: str = _setting(
        "EMOTION_EFFICIENTAT",
        str,
        "",
        "file",
        "training only: the AudioSet-pretrained EfficientAT mn04 state dict (empty: "
        "`../shared/weights/efficientat-mn04-as/mn04_as_mAP_432.pt`)",
    )
    temp_dir: str = _setting(
        "EMOTION_TEMP_DIR",
        str,
        "",
        "directory",
        "the app's own temporary directory, cleared at start-up and exit (empty: `<system temp>/emotion-app`)",
    )
    given: frozenset[str] = field(default=frozenset(), metadata={})

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings an environment gives (default: this process's). A value that does not parse raises
        ValueError naming the variable."""
        environ = os.environ if environ is None else environ
        values, given = {}, set()
        for f in documented_fields():
            env, text = f.metadata["env"], environ.get(f.metadata["env"])
            if not text:
                continue
            try:
                values[f.name] = f.metadata["parse"](text)
            except ValueError:
                raise ValueError(
                    f"{env}={text!r} is not a valid {f.metadata['unit']} value ({f.metadata['meaning']})"
                ) from None
            given.add(f.name)
        return cls(**values, given=frozenset(given))

    def or_cli(self, name: str, cli_value: str | None) -> Any:
        """A command-line value for field `name` when one is given (parsed like its variable), else the setting."""
        if not cli_value:
            return getattr(self, name)
        return next(f for f in documented_fields() if f.name == name).metadata["parse"](cli_value)


def documented_fields() -> list[dataclasses.Field]:
    """The fields of Settings that a variable sets, in the README's order."""
    return [f for f in dataclasses.fields(Settings) if "env" in f.metadata]


def variable(name: str) -> str:
    """The environment variable of field `name` (for messages: "set EMOTION_DATA_DIR or pass --data")."""
    return next(f for f in documented_fields() if f.name == name).metadata["env"]


@functools.cache
def current() -> Settings:
    """This process's settings, read from the environment on the first call and kept."""
    return Settings.from_environ()


def reload() -> Settings:
    """Read the environment again (tests that change a variable)."""
    current.cache_clear()
    return current()


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, Path):
        return (
            f"`{value.relative_to(PROJECT_DIR)}/`" if value.is_absolute() else f"`{value}/` (of the working directory)"
        )
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def markdown_table() -> str:
    """The README's table: one row per setting."""
    rows = ["| variable | meaning | unit | default |", "|---|---|---|---|"]
    rows += [
        f"| `{f.metadata['env']}` | {f.metadata['meaning']} | {f.metadata['unit']} | {_shown(f.default)} |"
        for f in documented_fields()
    ]
    return "\n".join(rows)
