"""Fixtures shared by the tests."""

import pytest

from emotion_core import settings


@pytest.fixture
def environment(monkeypatch):
    """environment(EMOTION_X="value", ...): set EMOTION_* variables for one test and read the settings again
    (they are read once per process); the test's end restores the variables and the settings."""

    def set_variables(**values: str) -> settings.Settings:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        return settings.reload()

    yield set_variables
    monkeypatch.undo()
    settings.reload()
