"""The headless Debian Chromium that every browser test drives through Playwright, launched one way."""

import shutil
from pathlib import Path

import pytest

from .shared_paths import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "artifacts" / "browser"  # screenshots (docs/ holds copies for the README)
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


def launch(playwright, microphone: Path | None = None, autoplay: bool = False):
    """A headless Chromium with no network chatter; `microphone`: a WAV the page hears as its microphone
    (permission granted); `autoplay`: audio may play without a click."""
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    args.append("--disable-sync")
    if microphone is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
        ]
    if autoplay:
        args.append("--autoplay-policy=no-user-gesture-required")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


def open_page(browser, url: str, viewport: dict | None = None, query: str = ""):
    """A new tab on the app at `url` + `query`, once its Analyse button is there (desktop size by default)."""
    page = browser.new_page(viewport=viewport or {"width": 1400, "height": 1100})
    page.goto(url + query)
    page.get_by_role("button", name="Analyse").wait_for()
    return page
