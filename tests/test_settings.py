"""emotion_core.settings: every EMOTION_* variable read in one place, with its default, and listed in the README."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emotion_core import settings

REPO = Path(__file__).resolve().parent.parent


def test_defaults_when_unset(monkeypatch):
    for name in settings.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert settings.get("EMOTION_CONCURRENCY") == 2
    assert settings.get("EMOTION_QUEUE_SIZE") == 64
    assert settings.get("EMOTION_MAX_UPLOAD") == "25mb"
    assert settings.get("EMOTION_MAX_SECONDS") == 600.0
    assert settings.get("EMOTION_WHISPER") == "openai/whisper-base"
    assert settings.get("EMOTION_CHECKPOINTS") == REPO / "checkpoints"
    assert settings.get("EMOTION_CACHE_DIR") == REPO / "cache"
    assert settings.get("EMOTION_DATA_DIR") == Path("data")
    assert not settings.is_set("EMOTION_DATA_DIR")


def test_environment_then_command_line_override(monkeypatch, tmp_path):
    from emotion_core.paths import checkpoint_dir

    monkeypatch.setenv("EMOTION_CONCURRENCY", "3")
    monkeypatch.setenv("EMOTION_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("EMOTION_DATA_DIR", "")  # empty counts as unset
    assert settings.get("EMOTION_CONCURRENCY") == 3
    assert checkpoint_dir() == tmp_path
    assert checkpoint_dir("elsewhere") == Path("elsewhere")
    assert not settings.is_set("EMOTION_DATA_DIR") and settings.get("EMOTION_DATA_DIR") == Path("data")


def test_a_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("EMOTION_QUEUE_SIZE", "lots")
    with pytest.raises(ValueError, match="EMOTION_QUEUE_SIZE='lots'"):
        settings.get("EMOTION_QUEUE_SIZE")


@pytest.mark.slow  # a fresh interpreter imports torch
def test_max_seconds_reaches_the_audio_loader():
    code = "import emotion_core.audio as a; print(a.MAX_DURATION_S)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={"EMOTION_MAX_SECONDS": "42", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == 42.0


def test_every_variable_is_read_only_in_settings_and_listed_in_the_readme():
    used = set()
    for path in [REPO / "app.py", *REPO.glob("emotion_core/**/*.py"), *REPO.glob("train/*.py"),
                 *REPO.glob("bench/*.py"), *REPO.glob("corpus/*.py")]:
        text = path.read_text()
        names = set(re.findall(r"\bEMOTION_[A-Z_]+", text))
        used |= names
        if path.name != "settings.py":
            assert not re.search(r"environ(\.get)?[\[(]\s*['\"]EMOTION_", text), f"{path} reads an EMOTION_ variable itself"
            assert not re.search(r"getenv\(\s*['\"]EMOTION_", text), f"{path} reads an EMOTION_ variable itself"
    assert used <= set(settings.SETTINGS), f"not in settings: {used - set(settings.SETTINGS)}"
    assert settings.markdown_table() in (REPO / "README.md").read_text()
