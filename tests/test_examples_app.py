"""The example clips in the running app (started on loopback with a short cache sweep): a fresh start without
a data directory shows the shipped examples; every example is analysed on click, twice, after Gradio's cache
sweep, in a real browser and through the API, by several clients at once; and the server hands out the
example clips and no other file of the disk (issue 14 items 1 and 7, issue 17 item 1)."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from bench.app_server import AppServer
from emotion_core.labels import LABELS, MODEL_NAMES
from webapp.examples import example_clips

from .chromium import ARTIFACTS, CHROMIUM, launch
from .shared_paths import DATA_DIR, MANIFEST, REPO, RUNNING, WHISPER_DIR

SWEEP_S = 3  # EMOTION_SWEEP_S for these servers: Gradio's cache sweep every 3 s, of files older than 3 s
RESULT_TIMEOUT_MS = 90_000
CLIENTS = 6  # API requests in flight at once

pytestmark = pytest.mark.slow


def start(tmp_path_factory, data_dir: str):
    env = {"EMOTION_WHISPER": str(WHISPER_DIR), "EMOTION_DATA_DIR": data_dir, "EMOTION_SWEEP_S": str(SWEEP_S)}
    return AppServer(tmp_path_factory.mktemp("gradio-tmp"), env)


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    """What a fresh clone or a Space has: no data directory, only examples/."""
    srv = start(tmp_path_factory, "")
    with srv:
        yield srv


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory):
    """With the corpus: examples/ plus corpus test-speaker clips."""
    if not MANIFEST.is_file():
        pytest.skip(f"shared corpus not found at {DATA_DIR}")
    srv = start(tmp_path_factory, str(DATA_DIR))
    with srv:
        yield srv


def wait_past_a_sweep():
    time.sleep(2 * SWEEP_S + 1)  # at least one sweep has run on files older than SWEEP_S


def call(url: str, api_name: str, data: list):
    """One request through Gradio's HTTP API, as a script (or the page) makes it: (event, data)."""
    r = httpx.post(f"{url}gradio_api/call/{api_name}", json={"data": data}, timeout=60)
    r.raise_for_status()
    text = httpx.get(f"{url}gradio_api/call/{api_name}/{r.json()['event_id']}", timeout=300).text
    event, payload = None, None
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") in ("complete", "error"):
            event, payload = lines["event"], json.loads(lines["data"])
    return event, payload


def page_examples(url: str) -> list[str]:
    """The example buttons' labels, from the page's configuration."""
    config = httpx.get(f"{url}config", timeout=30).json()
    datasets = [c for c in config["components"] if c["type"] == "dataset"]
    assert len(datasets) == 1, "expected one set of examples on the page"
    return datasets[0]["props"]["sample_labels"]


def check_analysis(payload, example):
    """The page's outputs [spectrogram, bars, timeline, summary, answer, window] for one example."""
    summary, answer = payload[3], payload[4]
    lead = answer["lead"]  # the model that answers: whichever the models running here make it
    assert summary.startswith(f"### {MODEL_NAMES[lead]}: **") and "⚠️ No audio" not in summary, summary
    assert answer["models"][lead]["label"] in LABELS, answer
    assert abs(answer["duration_s"] - sf.info(example.path).duration) < 0.05


def load_then_analyse(url: str, index: int, example, endpoints):
    """Click example `index`: load_example fills the player; each endpoint then analyses what it holds
    (analyse_example is what the click runs, analyse what the Analyse button runs)."""
    event, payload = call(url, "load_example", [index])
    assert event == "complete", payload
    value = payload[0]["value"]
    assert Path(value["path"]).name == Path(example.path).name
    played = httpx.get(value["url"], timeout=30)  # what the browser's player fetches
    assert played.status_code == 200 and played.content == Path(example.path).read_bytes()
    for endpoint in endpoints:
        event, payload = call(url, endpoint, [value])
        assert event == "complete", f"{endpoint} of example {index} ({Path(example.path).name}): {payload}"
        check_analysis(payload, example)


def test_each_example_analysed_twice_through_the_api_after_a_sweep_by_clients_at_once(corpus_server):
    url = corpus_server.url
    examples = example_clips(DATA_DIR, running=RUNNING)
    assert page_examples(url) == [e.caption for e in examples]
    with ThreadPoolExecutor(CLIENTS) as pool:  # the Analyse button twice on what the click loaded, then...
        list(pool.map(lambda i: load_then_analyse(url, i, examples[i], ("analyse", "analyse")), range(len(examples))))
        wait_past_a_sweep()  # ...the click's own analysis and the button again, after a sweep
        assert not [p for p in corpus_server.temp_dir.rglob("*.opus")], "example audio was copied into the cache"
        list(
            pool.map(
                lambda i: load_then_analyse(url, i, examples[i], ("analyse_example", "analyse")), range(len(examples))
            )
        )


def file_status(url: str, path) -> int:
    return httpx.get(f"{url}gradio_api/file={path}", timeout=30).status_code


def test_only_the_example_clips_are_served(corpus_server):
    url = corpus_server.url
    examples = example_clips(DATA_DIR, running=RUNNING)
    served = {str(Path(e.path).resolve()) for e in examples}
    assert any(e.dataset == "SAVEE" for e in examples)  # the corpus examples are among them
    refused = [MANIFEST, REPO / "app.py", REPO / "examples" / "examples.json", REPO / "checkpoints" / "ensemble.json"]
    for pattern in ("CREMA-D/AudioWAV/*.opus", "RAVDESS/Actor_01/*.opus", "TESS/*/*.opus", "SAVEE/*/*.opus"):
        refused.append(next(p for p in sorted(DATA_DIR.glob(pattern)) if str(p.resolve()) not in served))
    crema = refused[4]
    refused.append(f"{crema.parent}/../{crema.parent.name}/{crema.name}")  # a detour
    for path in refused:
        assert file_status(url, path) == 403, f"{path} is served"
    for e in examples:
        r = httpx.get(f"{url}gradio_api/file={e.path}", timeout=30)
        assert r.status_code == 200 and r.content == Path(e.path).read_bytes(), e.path


def test_a_fresh_start_serves_the_shipped_examples_and_no_corpus_clip(fresh_server):
    url = fresh_server.url
    examples = example_clips(running=RUNNING)
    assert len(examples) >= 7 and page_examples(url) == [e.caption for e in examples]  # one per emotion
    for e in examples:
        assert file_status(url, e.path) == 200
    if MANIFEST.is_file():
        assert file_status(url, next(iter(sorted(DATA_DIR.glob("CREMA-D/AudioWAV/*.opus"))))) == 403


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


SUMMARY_JS = """() => document.querySelector('#summary').innerText"""  # with or without the Whisper encoder


def test_a_fresh_start_shows_the_examples_and_each_click_analyses_it_twice_after_a_sweep(browser, fresh_server):
    examples = example_clips(running=RUNNING)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(fresh_server.url)
    page.get_by_role("button", name="Analyse").wait_for()
    buttons = page.locator("button.gallery-item")
    buttons.first.wait_for()  # the examples' gallery can render a moment after the button
    assert buttons.count() == len(examples)
    for i, e in enumerate(examples):
        assert buttons.nth(i).inner_text().strip() == e.caption
    wait_past_a_sweep()
    # each example twice, in two rounds: consecutive clicks are different clips, so a new answer always differs
    # from the one on screen (one clip twice in a row can give the same summary to the hundredth of a second)
    for round_, (i, e) in [(r, ie) for r in range(2) for ie in enumerate(examples)]:
        before = page.evaluate(SUMMARY_JS)
        buttons.nth(i).click()  # and nothing else: no Analyse button
        # a new, complete answer of this clip's length ("changed" alone could be the last clip's answer drawn again)
        page.wait_for_function(
            f"""() => {{ const t = ({SUMMARY_JS})();
            const m = t.match(/([0-9.]+) s of audio/);
            return t !== {json.dumps(before)} && t.includes('Answered in') && m !== null
                && Math.abs(parseFloat(m[1]) - {sf.info(e.path).duration}) <= 0.1; }}""",
            timeout=RESULT_TIMEOUT_MS,
        )
        summary = page.evaluate(SUMMARY_JS)
        seconds = float(summary.split(" s of audio")[0].split()[-1])
        assert abs(seconds - sf.info(e.path).duration) <= 0.1, (e.path, summary)  # this clip's answer
        assert "No audio file" not in page.locator("body").inner_text()
        if i == 0 and round_ == 0:
            page.screenshot(path=str(ARTIFACTS / "example-clicked.png"), full_page=True)
