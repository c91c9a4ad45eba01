"""The page's clip over a session, in Debian's Chromium (issue 18 items 1 and 7): Analyse after a result keeps
the result and the recording (replay, download, Explain), and a file over the size cap gets a message that
stays on the page."""

import time

import pytest
import soundfile as sf

from bench.app_server import AppServer

from .chromium import launch, needs_chromium, open_page
from .shared_paths import WHISPER_DIR
from .test_load_audio import speechlike

RESULT_TIMEOUT_MS = 120_000

pytestmark = [
    pytest.mark.slow,
    needs_chromium,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = AppServer(tmp_path_factory.mktemp("app-tmp"), {"EMOTION_WHISPER": str(WHISPER_DIR), "EMOTION_SWEEP_S": "6"})
    with srv:
        yield srv


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        yield open_page(browser, server.url)
        browser.close()


def upload(page, path):
    page.get_by_label("Upload file").first.click()
    page.locator("input[type=file]").first.set_input_files(str(path))


def bars_shown(page):
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=RESULT_TIMEOUT_MS)


def test_analyse_after_a_result_keeps_the_result_and_the_recording(server, page, tmp_path):
    path = tmp_path / "short_angry.wav"
    sf.write(path, speechlike(16000, 3.0), 16000)
    upload(page, path)
    bars_shown(page)
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Analyse").click()
    page.wait_for_timeout(1500)
    bars_shown(page)  # the plots are drawn again, not cleared
    page.wait_for_function("!document.body.innerText.includes('No audio file')", timeout=RESULT_TIMEOUT_MS)
    time.sleep(9)  # past a sweep (EMOTION_SWEEP_S=6): the page still shows the clip, so it is kept
    page.get_by_role("button", name="Analyse").click()
    page.wait_for_timeout(3000)
    bars_shown(page)
    assert "No audio file" not in page.inner_text("body")
    urls = page.evaluate("""() => [...document.querySelectorAll('[src*="file="], [href*="file="]')]
                                  .map(e => e.src || e.href).filter(u => u.includes('/gradio/'))""")  # the upload
    assert urls, "the page links the clip nowhere (no player source, no download link)"
    for url in set(urls):
        status = page.evaluate("async (u) => (await fetch(u)).status", url)
        assert status == 200, f"{url} answers {status}: replay and download need the clip"


def test_a_file_over_the_cap_says_so_on_the_label_and_keeps_its_message(page, tmp_path):
    assert "25 MB" in page.inner_text("body"), "the size cap is not on the audio label"
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + bytes(26 * 2**20))
    upload(page, big)
    note = page.locator("#upload-refused")
    note.filter(has_text="maximum allowed size").wait_for(timeout=20_000)
    page.wait_for_timeout(12_000)  # a toast would be gone by now
    assert "maximum allowed size" in note.inner_text()
