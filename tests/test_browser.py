"""The app in a real browser (Debian's Chromium driven by Playwright): upload, microphone, a long clip and a bad
file, as a visitor meets them. Screenshots go to artifacts/browser/; the README's screenshot is upload.png."""

import numpy as np
import pytest
import soundfile as sf

from bench.app_server import AppServer
from emotion_core.labels import MODEL_NAMES

from .chromium import ARTIFACTS, launch, needs_chromium, open_page
from .shared_paths import DATA_DIR, FAMILIES, HAVE_WHISPER, WHISPER_DIR, needs_corpus, real_speech

RESULT_TIMEOUT_MS = 90_000

pytestmark = [
    needs_chromium,
    needs_corpus,
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    speech, _ = real_speech(seconds_of_pause=1.0)
    short = speech[: 16000 * 4]
    sf.write(d / "upload.wav", np.stack([short, short], 1), 16000)
    sf.write(d / "mic.wav", np.repeat(short, 3)[: 48000 * 6].reshape(-1, 1).repeat(2, 1), 48000)  # fake capture file
    long_clip, _ = real_speech(seconds_of_pause=3.0)
    sf.write(d / "long.wav", np.concatenate([long_clip, long_clip]), 16000)
    (d / "picture.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    return d


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    env = {"EMOTION_WHISPER": str(WHISPER_DIR), "EMOTION_DATA_DIR": str(DATA_DIR)}
    server = AppServer(tmp_path_factory.mktemp("gradio-tmp"), env)
    with server:
        yield server


@pytest.fixture(scope="module")
def app_url(app_server):
    return app_server.url


@pytest.fixture(scope="module")
def browser(clips):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p, microphone=clips / "mic.wav")
        yield b
        b.close()


def upload(page, path):
    page.get_by_label("Upload file").first.click()
    page.locator("input[type=file]").first.set_input_files(str(path))


# every output's name as the page shows it (the ensemble only when two or more of its members run)
SHOWN = [name for key, name in MODEL_NAMES.items() if key in FAMILIES]


def wait_for_result(page):
    """Until the complete answer is on the page ("First answer in ..." is the quick families' stage)."""
    page.locator("#summary").get_by_text("Answered in").wait_for(timeout=RESULT_TIMEOUT_MS)


def seconds_of_audio(summary: str) -> float:
    return float(summary.split(" s of audio")[0].split()[-1])


def check_result_page(page):
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=RESULT_TIMEOUT_MS)
    plots = page.locator(".js-plotly-plot")  # spectrogram and probabilities
    bars_text = plots.nth(1).inner_text()
    for name in SHOWN:
        assert name in bars_text, f"no {name} bars"
    assert "frequency (Hz, mel scale)" in plots.nth(0).inner_text()
    summary = page.locator("#summary").inner_text()
    assert "Whisper encoder" in summary
    where = page.locator("#circumplex .js-plotly-plot").inner_text()  # where each model's answer sits
    assert "Where the answers sit" in where and all(name in where for name in SHOWN), where


def test_upload_shows_spectrogram_bars_and_summary(browser, app_url, clips):
    page = open_page(browser, app_url)
    upload(page, clips / "upload.wav")
    wait_for_result(page)
    page.wait_for_timeout(500)
    check_result_page(page)
    page.screenshot(path=str(ARTIFACTS / "upload.png"), full_page=True)


@pytest.mark.skipif(not HAVE_WHISPER, reason="one stage without the Whisper encoder")
def test_the_first_answer_comes_first_and_whisper_completes_it(browser, app_url, clips):
    """Issue 25: the quick families' answer is on the page before Whisper's, which then completes it, same clip."""
    page = open_page(browser, app_url)
    page.evaluate("""() => { window.summaries = []; const el = document.querySelector('#summary');
        new MutationObserver(() => { const t = el.innerText;
                                     if (t && window.summaries.at(-1) !== t) window.summaries.push(t); })
            .observe(el, {childList: true, subtree: true, characterData: true}); }""")
    upload(page, clips / "upload.wav")
    wait_for_result(page)
    seen = page.evaluate("window.summaries")
    first = [i for i, t in enumerate(seen) if "First answer in" in t]
    done = [i for i, t in enumerate(seen) if "Answered in" in t]
    assert first and done and first[-1] < done[0], seen
    headline = [next(line for line in seen[i].splitlines() if "%)" in line) for i in (first[-1], done[0])]
    assert "still listening" in seen[first[-1]] and not headline[0].startswith("Whisper encoder: "), seen
    # the complete answer's headline is one that needs Whisper: Whisper's own, or the ensemble's that mixes it in
    assert headline[1].split(":")[0] in ("Whisper encoder", "Ensemble"), seen
    assert seconds_of_audio(seen[first[-1]]) == seconds_of_audio(seen[done[0]]) == 4.0  # one clip, both stages
    check_result_page(page)


def test_microphone_recording(browser, app_url):
    page = open_page(browser, app_url)
    page.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(3500)
    page.locator("button.stop-button").first.click()
    wait_for_result(page)
    check_result_page(page)
    summary = page.locator("#summary").inner_text()
    seconds = seconds_of_audio(summary)
    assert 2.0 <= seconds <= 6.0, summary  # the fake microphone's audio, as long as we recorded
    page.screenshot(path=str(ARTIFACTS / "microphone.png"), full_page=True)


def test_long_clip_shows_the_timeline(browser, app_url, clips):
    page = open_page(browser, app_url)
    upload(page, clips / "long.wav")
    wait_for_result(page)
    page.wait_for_function(
        "document.querySelectorAll('#timeline .js-plotly-plot').length == 1", timeout=RESULT_TIMEOUT_MS
    )
    timeline = page.locator("#timeline .js-plotly-plot").inner_text()
    assert "3 s windows over the speech" in timeline and "not sure below" in timeline
    page.screenshot(path=str(ARTIFACTS / "timeline.png"), full_page=True)


def test_bad_file_shows_a_readable_error_and_the_next_request_works(browser, app_url, clips):
    page = open_page(browser, app_url)
    upload(page, clips / "picture.wav")
    page.get_by_text("contains no sound").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "bad-file.png"), full_page=True)
    page.get_by_label("Clear").first.click()
    upload(page, clips / "upload.wav")
    wait_for_result(page)
    check_result_page(page)
