"""The page as a pupil and a teacher meet it, in Debian's Chromium: the guessing game, act it out with the fake
microphone, the How-it-works charts, results that belong to the clip shown, progress stages, phone width, dark
mode and the API's names. Screenshots go to artifacts/browser/ (docs/ holds copies for the README)."""

import json
import urllib.request

import pytest

from webapp import report_figures
from webapp.service import STAGE_TEXT

from .chromium import ARTIFACTS, launch, open_page
from .shared_paths import DATA_DIR
from .test_browser import RESULT_TIMEOUT_MS, SHOWN, app_server, app_url, clips, upload  # noqa: F401 (fixtures)
from .test_browser import pytestmark as browser_marks

pytestmark = browser_marks  # skip without Chromium or the corpus; slow

MODELS = SHOWN  # every output's name on the page
PHONE = {"width": 390, "height": 844}
CLIP = DATA_DIR / "CREMA-D/AudioWAV/1015_IEO_HAP_HI.opus"
# every progress text shown while a request runs, and whether any was drawn inside the summary
WATCH_PROGRESS = """() => { window.progressTexts = []; window.progressOverSummary = false;
  new MutationObserver(() => {
    for (const e of document.querySelectorAll('.progress-text, .progress-level, .meta-text, .meta-text-center')) {
      const t = e.textContent.trim();
      if (t && window.progressTexts[window.progressTexts.length - 1] !== t) window.progressTexts.push(t);
      const shown = e.checkVisibility({opacityProperty: true, visibilityProperty: true}) && !e.closest('.hidden');
      if (shown && e.closest('#summary')) window.progressOverSummary = e.className + ': ' + t;
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
# words split over two lines in headings and table headings
SPLIT_WORDS = """() => { const out = [];
  for (const el of document.querySelectorAll('.prose th, .prose h1, .prose h2, .prose h3')) {
    if (!el.offsetParent) continue;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/\\S+/g)) {
        const r = document.createRange(); r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
        const lines = new Set(Array.from(r.getClientRects()).map(b => Math.round(b.top)));
        if (lines.size > 1) out.push(m[0]);
      } } }
  return out; }"""
# boxes of a plot's legend, plotting area, tick labels and main title, relative to its svg
PLOT_BOXES = """(sel) => { const root = document.querySelector(sel + ' .js-plotly-plot');
  const box = e => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  const svg = box(root.querySelector('svg.main-svg'));
  return {svg, legend: Array.from(root.querySelectorAll('g.legend')).map(box),
          area: Array.from(root.querySelectorAll('.cartesianlayer .bg, .bglayer rect')).map(box),
          ticks: Array.from(root.querySelectorAll('.xtick text, .ytick text')).map(box),
          title: Array.from(root.querySelectorAll('.g-gtitle text')).map(box),
          notes: Array.from(root.querySelectorAll('.annotation-text')).map(box),
          axisTitles: Array.from(root.querySelectorAll('.infolayer g[class*="title"]:not(.g-gtitle) text')).map(box),
          label: Array.from(document.querySelectorAll(sel + ' [data-testid=block-label]')).map(box)}; }"""


# the confusion matrix's cell numbers (font size in px) and its colour bar's width, against the plot's
CONFUSION_TEXT = """() => { const root = document.querySelector('#confusion .js-plotly-plot');
  const cells = Array.from(root.querySelectorAll('text')).filter(t => /^\\d+%$/.test(t.textContent.trim()));
  const bar = Array.from(root.querySelectorAll('.colorbar')).map(e => e.getBoundingClientRect().width);
  return {sizes: cells.map(t => parseFloat(getComputedStyle(t).fontSize)), bar: Math.max(0, ...bar),
          width: root.querySelector('svg.main-svg').getBoundingClientRect().width}; }"""
# the first table of "The exact numbers": its right edge and its block's, and whether the block hides some of it
NUMBERS_TABLE = """() => { const t = [...document.querySelectorAll('.prose table')].find(e => e.offsetParent);
  const block = t.closest('.block'); const b = block.getBoundingClientRect();
  return {right: t.getBoundingClientRect().right,
          blockRight: b.right - parseFloat(getComputedStyle(block).paddingRight),
          hidden: block.scrollWidth - block.clientWidth}; }"""


def uar_titles_clear_of_the_legend(page):
    """The accuracy chart's panel titles: one per condition of the report, two a row, apart, each inside its own
    panel, none under the legend."""
    uar = page.evaluate(PLOT_BOXES, "#uar")
    assert len(uar["notes"]) == len(report_figures.load_reports()), uar["notes"]
    rows: dict = {}
    for note in uar["notes"]:
        rows.setdefault(round(note[1]), []).append(note)
    for row in rows.values():
        assert len(row) <= 2
        if len(row) == 2:
            left, right = sorted(row)
            assert not overlap(left, right) and left[2] <= right[0], "the panel titles run together"
    for title in uar["notes"]:
        assert not any(overlap(title, legend) for legend in uar["legend"]), "the legend is printed over a panel title"
        assert any(a[0] - 1 <= title[0] and title[2] <= a[2] + 1 for a in uar["area"]), "a title leaves its panel"


def overlap(a, b):
    return a[0] < b[2] - 1 and b[0] < a[2] - 1 and a[1] < b[3] - 1 and b[1] < a[3] - 1


@pytest.fixture(scope="module")
def browser(clips):  # noqa: F811 (the clips fixture of test_browser)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p, microphone=clips / "mic.wav", autoplay=True)
        yield b
        b.close()


def analyse_upload(page, path):
    upload(page, path)
    page.wait_for_function(
        "document.querySelectorAll('#bars .js-plotly-plot').length == 1 && "
        "!document.querySelector('#summary').innerText.includes('Record or upload')",
        timeout=RESULT_TIMEOUT_MS,
    )
    page.wait_for_timeout(800)  # plotly finishes laying out


def test_guessing_game_full_round(browser, app_url, app_server):  # noqa: F811
    warnings_before = app_server.log.read_text().count("16-bit int format")
    page = open_page(browser, app_url)
    page.get_by_role("tab", name="Guess the emotion").click()
    guesses = [page.get_by_role("button", name=lab, exact=True) for lab in ("angry", "sad")]
    assert all(b.is_disabled() for b in guesses)  # nothing to guess before a clip plays
    for n in (1, 2):
        page.get_by_role("button", name="Play a clip").click()
        page.locator("#reveal").get_by_text("Listen, then pick").wait_for(timeout=RESULT_TIMEOUT_MS)
        page.wait_for_function(
            "() => !Array.from(document.querySelectorAll('button')).find(b => b.innerText.trim() == 'angry').disabled",
            timeout=RESULT_TIMEOUT_MS,
        )
        page.get_by_role("button", name="angry", exact=True).click()
        page.locator("#reveal h3").first.wait_for(timeout=RESULT_TIMEOUT_MS)
        reveal = page.locator("#reveal").inner_text()
        assert "You said angry" in reveal
        for name in MODELS:
            assert name in reveal, f"{name} missing from the reveal"
        page.locator("#score").get_by_text(f"of {n}").first.wait_for(timeout=RESULT_TIMEOUT_MS)
        assert page.get_by_role("button", name="sad", exact=True).is_disabled()  # one guess per clip
        # where the answers sit (issue 27): the circle, the seven emotions, the acted one ringed, a point per model
        page.locator("#reveal-circumplex .js-plotly-plot").wait_for(timeout=RESULT_TIMEOUT_MS)
        page.wait_for_timeout(800)  # plotly finishes laying out
        assert page.locator("#reveal-circumplex g.trace.scatter").count() == 3 + len(MODELS)
        legend = page.locator("#reveal-circumplex g.legend").text_content()
        assert all(name in legend for name in MODELS) and "acted: " in legend, legend
        for lab in ("angry", "sad", "neutral", "surprised"):
            assert page.locator("#reveal-circumplex g.textpoint").get_by_text(lab, exact=True).count() == 1, lab
        if n == 1:
            page.screenshot(path=str(ARTIFACTS / "game-reveal.png"), full_page=True)
            page.get_by_role("button", name="Play a clip").click()  # the next clip hides the last reveal's picture
            page.locator("#reveal-circumplex").wait_for(state="hidden", timeout=RESULT_TIMEOUT_MS)
    score = page.locator("#score").inner_text()
    assert "You" in score and all(name in score for name in MODELS)
    assert "Average listener" in score or "listener" not in reveal.lower() or "No listener votes" in reveal
    # each clip reached the player as Gradio plays it: no "converting float32 to 16-bit int" warning in the log
    assert app_server.log.read_text().count("16-bit int format") == warnings_before
    page.screenshot(path=str(ARTIFACTS / "game.png"), full_page=True)


def test_act_it_out_with_the_fake_microphone(browser, app_url):  # noqa: F811
    page = open_page(browser, app_url)
    page.get_by_role("tab", name="Guess the emotion").click()
    page.get_by_role("button", name="Give me an emotion").click()
    page.locator("#act-prompt").get_by_text("so that it sounds").wait_for(timeout=RESULT_TIMEOUT_MS)
    target = page.locator("#act-prompt strong").inner_text().strip()
    page.locator("#act-audio").get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(3500)
    page.locator("#act-audio button.stop-button").first.click()
    page.locator("#act-result h3").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    result = page.locator("#act-result").inner_text()
    assert f"You meant {target}" in result and "1 take" in result
    assert all(name in result for name in MODELS)
    page.screenshot(path=str(ARTIFACTS / "act-it-out.png"), full_page=True)


def test_how_it_works_charts(browser, app_url):  # noqa: F811
    report = json.loads((ARTIFACTS.parent.parent / "reports" / "test.json").read_text())
    page = open_page(browser, app_url)
    page.get_by_role("tab", name="How it works").click()
    page.wait_for_function(
        "['#uar', '#confusion', '#pipeline'].every(s => document.querySelector(s + ' .js-plotly-plot'))",
        timeout=RESULT_TIMEOUT_MS,
    )
    uar = page.locator("#uar").inner_text()
    assert "human listeners" in uar and "all (corpus-balanced)" in uar
    for dataset in next(iter(report["models"].values()))["per_dataset"]:
        assert dataset in uar
    assert "1D CNN: its answers" in page.locator("#confusion").inner_text()
    page.get_by_label("LSTM", exact=True).check()
    page.locator("#confusion").get_by_text("LSTM: its answers").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert "mel spectrogram" in page.locator("#pipeline").inner_text()
    assert page.get_by_text("Technical card: Whisper encoder").is_visible()
    uar_titles_clear_of_the_legend(page)
    # how sure, how right (issue 27): both conditions, every family, the threshold chosen on validation speakers
    threshold = json.loads((ARTIFACTS.parent.parent / "reports" / "reliability.json").read_text())["threshold"]
    page.wait_for_function("document.querySelector('#reliability .js-plotly-plot')", timeout=RESULT_TIMEOUT_MS)
    reliability = page.locator("#reliability").text_content()
    assert "clean audio" in reliability and "in a classroom" in reliability and "Whisper encoder" in reliability
    assert page.get_by_text(f"when its top probability is below {threshold:.0%}").is_visible()
    page.screenshot(path=str(ARTIFACTS / "how-it-works.png"), full_page=True)
    # who it fails by sex, on the teachers' page
    page.get_by_text("For teachers").click()
    page.get_by_text("By speaker sex").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert page.get_by_role("columnheader", name="women's voices").is_visible()
    page.locator("#teachers").screenshot(path=str(ARTIFACTS / "teachers.png"))  # the teachers' page, unfolded
    dark = open_page(browser, app_url, query="?__theme=dark")
    dark.get_by_role("tab", name="How it works").click()
    dark.wait_for_function("document.querySelector('#uar .js-plotly-plot')", timeout=RESULT_TIMEOUT_MS)
    dark.wait_for_timeout(800)
    uar_titles_clear_of_the_legend(dark)
    laptop = open_page(browser, app_url, {"width": 1366, "height": 768})
    laptop.get_by_role("tab", name="How it works").click()
    laptop.get_by_text("The exact numbers").click()
    laptop.locator(".prose table").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    numbers = laptop.evaluate(NUMBERS_TABLE)
    assert numbers["right"] <= numbers["blockRight"] + 1 and numbers["hidden"] <= 1, f"the table is cut off: {numbers}"
    phone = open_page(browser, app_url, PHONE)
    phone.get_by_role("tab", name="How it works").click()
    phone.wait_for_function("document.querySelector('#uar .js-plotly-plot')", timeout=RESULT_TIMEOUT_MS)
    phone.wait_for_timeout(800)
    phone.wait_for_function("document.querySelector('#pipeline .js-plotly-plot')", timeout=RESULT_TIMEOUT_MS)
    pipeline = phone.evaluate(PLOT_BOXES, "#pipeline")
    titles = phone.evaluate(
        "Array.from(document.querySelectorAll('#pipeline .annotation-text')).map(e => "
        "{ const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })"
    )
    assert len(titles) == 3
    for t in titles:
        assert pipeline["svg"][0] - 1 <= t[0] and t[2] <= pipeline["svg"][2] + 1, "a pipeline title is cut"
        assert not any(overlap(t, b) for b in pipeline["ticks"] + pipeline["label"] + pipeline["axisTitles"]), (
            "a pipeline title is covered"
        )
    uar_titles_clear_of_the_legend(phone)
    phone.wait_for_function("document.querySelector('#confusion .js-plotly-plot')", timeout=RESULT_TIMEOUT_MS)
    confusion = phone.evaluate(CONFUSION_TEXT)
    assert len(confusion["sizes"]) >= 40 and min(confusion["sizes"]) >= 11, f"unreadable numbers: {confusion}"
    assert confusion["bar"] < 0.1 * confusion["width"], f"the colour bar takes the width: {confusion}"
    uar = phone.evaluate(PLOT_BOXES, "#uar")
    for legend in uar["legend"]:
        assert not any(overlap(legend, b) for b in uar["area"] + uar["title"] + uar["label"]), "legend over the chart"
        assert legend[1] >= uar["svg"][1] - 1, "legend cut at the top"
    assert phone.evaluate(SPLIT_WORDS) == []
    reliability = phone.evaluate(PLOT_BOXES, "#reliability")
    texts = reliability["ticks"] + reliability["notes"]
    for legend in reliability["legend"]:
        assert not any(overlap(legend, b) for b in reliability["area"] + texts), "legend over the diagram"
    assert not [(a, b) for i, a in enumerate(texts) for b in texts[i + 1 :] if overlap(a, b)], (
        "the diagram's labels run together"
    )
    phone.screenshot(path=str(ARTIFACTS / "how-it-works-phone.png"), full_page=True)


def test_results_belong_to_the_clip_shown_and_progress_has_real_stages(browser, app_url, clips):  # noqa: F811
    page = open_page(browser, app_url)
    page.evaluate(WATCH_PROGRESS)
    analyse_upload(page, clips / "upload.wav")
    texts = page.evaluate("window.progressTexts")
    shown = {t.split(" - ")[0] for t in texts if "%" in t}  # stage texts the bar moved through
    # the bar names real stages, not a bare percentage; on a quick server most stages pass between two updates of
    # the page (a 4 s clip's first stage takes some 60 ms), so one is asked for here, and
    # tests/test_plots_and_cli.py checks that every stage is reported, in order
    assert any(t in STAGE_TEXT.values() or " reads " in t for t in shown), shown
    assert page.evaluate("window.progressOverSummary") is False, page.evaluate("window.progressOverSummary")
    page.get_by_text("Explain: which parts").click()
    page.get_by_role("button", name="Explain the most confident window").click()
    page.wait_for_function("document.querySelector('#explanation .js-plotly-plot')", timeout=RESULT_TIMEOUT_MS)
    page.get_by_label("Clear").first.click()  # the player's Clear (x): nothing of the old clip stays
    page.wait_for_function(
        "document.querySelectorAll('#spectrogram .js-plotly-plot, #bars .js-plotly-plot, "
        "#explanation .js-plotly-plot').length == 0",
        timeout=RESULT_TIMEOUT_MS,
    )
    assert "Record or upload a clip to start" in page.locator("#summary").inner_text()
    analyse_upload(page, CLIP)  # a new clip: its own results, no explanation of the old one
    assert page.locator("#explanation .js-plotly-plot").count() == 0


def test_phone_width_result_first_no_split_words_no_overlaps(browser, app_url):  # noqa: F811
    page = open_page(browser, app_url, PHONE)
    analyse_upload(page, CLIP)
    top = {sel: page.locator(sel).bounding_box()["y"] for sel in ("#analyse", "#summary", "#spectrogram", "#bars")}
    examples = page.get_by_text("Clips of speakers the models never heard")
    if examples.count():
        assert top["#bars"] < examples.first.bounding_box()["y"], "the result must come before the example list"
    assert top["#analyse"] < top["#summary"] < top["#spectrogram"] < top["#bars"]
    assert page.evaluate(SPLIT_WORDS) == []
    bars = page.evaluate(PLOT_BOXES, "#bars")
    for legend in bars["legend"]:
        assert not any(overlap(legend, t) for t in bars["ticks"] + bars["area"] + bars["title"]), "legend over the bars"
        assert not any(overlap(legend, t) for t in bars["label"]), "the plot's label covers the legend"
        assert legend[1] >= bars["svg"][1] - 1, "legend cut at the top"
    for t in bars["ticks"]:
        assert bars["svg"][0] - 1 <= t[0] and t[2] <= bars["svg"][2] + 1, "a bar label is cut"
    spec = page.evaluate(PLOT_BOXES, "#spectrogram")
    assert not any(overlap(legend, a) for legend in spec["legend"] for a in spec["area"]), (
        "legend over the loudness panel"
    )
    page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)


def test_phone_tap_on_an_example_shows_its_result(browser, app_url):  # noqa: F811
    """On a phone the example list is far below the result: a tap brings the result into view."""
    page = open_page(browser, app_url, PHONE)
    example = page.locator("button.gallery-item").nth(3)
    example.scroll_into_view_if_needed()
    example.click()
    page.locator("#summary").get_by_text("Answered in").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.wait_for_timeout(500)
    top, bottom = page.evaluate(
        "() => { const r = document.querySelector('#summary h3').getBoundingClientRect(); return [r.top, r.bottom]; }"
    )
    assert -1 <= top and bottom <= PHONE["height"], f"the result's headline is off screen ({top:.0f}..{bottom:.0f} px)"
    page.screenshot(path=str(ARTIFACTS / "phone-example.png"))


def test_record_again_after_an_upload_and_clear(browser, app_url, clips):  # noqa: F811
    """After an upload the player shows its upload area, and after Clear too; "Record again" brings the microphone
    back (and takes the clip and its result off the page)."""
    page = open_page(browser, app_url)
    record = page.get_by_role("button", name="Record", exact=True)
    again = page.get_by_role("button", name="Record again")
    start = page.locator("#summary").get_by_text("Record or upload a clip to start")
    assert record.is_visible() and not again.is_visible()  # the page opens on the microphone
    analyse_upload(page, clips / "upload.wav")
    page.get_by_label("Clear").first.click()
    start.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert not record.is_visible() and again.is_visible()
    again.click()
    record.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert not again.is_visible()
    analyse_upload(page, clips / "upload.wav")  # a clip and its result on screen: Record again without Clear
    again.click()
    record.wait_for(timeout=RESULT_TIMEOUT_MS)
    start.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert page.locator("#bars .js-plotly-plot").count() == 0
    record.click()
    page.wait_for_timeout(3000)
    page.locator("button.stop-button").first.click()
    page.locator("#summary").get_by_text("Answered in").wait_for(timeout=RESULT_TIMEOUT_MS)  # the new take's answer
    assert not again.is_visible()


def test_dark_mode_draws_dark_plots(browser, app_url):  # noqa: F811
    page = open_page(browser, app_url, query="?__theme=dark")
    analyse_upload(page, CLIP)
    colours = page.evaluate(
        "Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => "
        "[g._fullLayout.paper_bgcolor, g._fullLayout.font.color])"
    )
    assert colours
    for paper, font in colours:
        assert paper in ("rgba(0, 0, 0, 0)", "rgb(17, 17, 17)"), paper
        r, g, b = (int(font[i : i + 2], 16) for i in (1, 3, 5))
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b > 180, f"dark text {font} on a dark page"
    page.screenshot(path=str(ARTIFACTS / "dark.png"), full_page=True)
    light = open_page(browser, app_url)
    analyse_upload(light, CLIP)
    light.screenshot(path=str(ARTIFACTS / "desktop.png"), full_page=True)
    font = light.evaluate("document.querySelector('#bars .js-plotly-plot')._fullLayout.font.color")
    assert font != colours[0][1]  # the light page keeps light plots


def test_api_names_its_input_and_output(app_url):  # noqa: F811
    info = json.loads(urllib.request.urlopen(app_url + "gradio_api/info", timeout=30).read())
    classify = info["named_endpoints"]["/classify"]
    assert [(p["label"], p["parameter_name"]) for p in classify["parameters"]] == [("audio", "audio")]
    assert [r["label"] for r in classify["returns"]] == ["result"]
