"""emotion_core.settings: every EMOTION_* variable read in one place, with its default, and listed in the README."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emotion_core import settings
from emotion_core.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def test_defaults_when_unset():
    s = Settings.from_environ({})
    assert (s.concurrency, s.queue_size, s.max_upload, s.max_seconds) == (2, 64, "25mb", 600.0)
    assert s.whisper == "openai/whisper-base" and s.fast is False
    assert s.checkpoints == REPO / "checkpoints" and s.cache_dir == REPO / "cache" and s.data_dir == Path("data")
    assert s.given == frozenset()


def test_environment_then_command_line_override(environment, tmp_path):
    from emotion_core.paths import checkpoint_dir, data_dir

    s = Settings.from_environ({"EMOTION_CONCURRENCY": "3", "EMOTION_FAST": "ON", "EMOTION_DATA_DIR": ""})
    assert s.concurrency == 3 and s.fast is True
    assert s.data_dir == Path("data") and s.given == {"concurrency", "fast"}  # empty counts as unset
    environment(EMOTION_CHECKPOINTS=str(tmp_path), EMOTION_DATA_DIR=str(tmp_path / "corpus"))
    assert checkpoint_dir() == tmp_path and data_dir() == tmp_path / "corpus"
    assert checkpoint_dir("elsewhere") == Path("elsewhere")  # a command-line value wins


def test_settings_are_frozen_and_read_once(monkeypatch):
    first = settings.current()
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.concurrency = 99
    monkeypatch.setenv("EMOTION_QUEUE_SIZE", "7")
    assert settings.current() is first and first.queue_size != 7  # read once: a later change is not seen


def test_a_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="EMOTION_QUEUE_SIZE='lots'"):
        Settings.from_environ({"EMOTION_QUEUE_SIZE": "lots"})
    with pytest.raises(ValueError, match="EMOTION_FAST='yes please'"):
        Settings.from_environ({"EMOTION_FAST": "yes please"})


@pytest.mark.slow  # a fresh interpreter imports torch
def test_max_seconds_reaches_the_audio_loader():
    code = "import emotion_core.audio as a; print(a.max_duration_s())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"EMOTION_MAX_SECONDS": "42", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == 42.0


def test_every_variable_is_read_only_in_settings_and_listed_in_the_readme():
    used = set()
    for path in [
        REPO / "app.py",
        *REPO.glob("emotion_core/**/*.py"),
        *REPO.glob("train/*.py"),
        *REPO.glob("bench/*.py"),
        *REPO.glob("corpus/*.py"),
    ]:
        text = path.read_text()
        names = set(re.findall(r"\bEMOTION_[A-Z_]+", text))
        used |= names
        if path.name != "settings.py":
            assert not re.search(r"environ(\.get)?[\[(]\s*['\"]EMOTION_", text), (
                f"{path} reads an EMOTION_ variable itself"
            )
            assert not re.search(r"getenv\(\s*['\"]EMOTION_", text), f"{path} reads an EMOTION_ variable itself"
    declared = {f.metadata["env"] for f in settings.documented_fields()}
    assert used <= declared, f"not in settings: {used - declared}"
    assert settings.markdown_table() in (REPO / "README.md").read_text()
