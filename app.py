"""Gradio app: record or upload, every model side by side. Layout and event wiring only; the logic is in
emotion_core (service, plots, explain, recognizer)."""
from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from functools import lru_cache, partial

import gradio as gr
import torch
from starlette.middleware import Middleware

from emotion_core import AudioError, settings
from emotion_core.labels import LABELS, MODEL_NAMES
from emotion_core.recognizer import Recognizer
from webapp import (
    certainty,
    circumplex,
    game,
    howto,
    report_figures,
    service,
    stages,
    teachers,
    theme,
    upload_route,
    uploads,
    web_guards,
)
from webapp.examples import example_clips, game_clips
from webapp.explain import occlusion_maps
from webapp.plots import explanation_figure

try:  # Hugging Face ZeroGPU: run inference on a borrowed GPU; a no-op everywhere else
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

# Two requests at once, each with every core, would oversubscribe the CPU: give each request its share.
SETTINGS = settings.current()  # every EMOTION_* variable, read once
CONCURRENCY = SETTINGS.concurrency
torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))
RECOGNIZER = Recognizer()  # every checkpoint, loaded once, on CUDA when available
DATA_DIR = SETTINGS.data_dir if "data_dir" in SETTINGS.given else None
EXAMPLES = example_clips(DATA_DIR, running=list(RECOGNIZER.models))  # examples/, plus test-speaker clips of DATA_DIR
# The example clips are served from where they are, never copied into Gradio's cache (which the sweep
# empties), and they are the only files of the disk the server hands out.
gr.set_static_paths([e.path for e in EXAMPLES])
REPORTS = report_figures.load_reports()
RELIABILITY = certainty.load_reliability()  # the "not sure" threshold, chosen on validation speakers (train.reliability)
GAME_CLIPS = game_clips()  # the game's own shipped pool, never listed on Try it (true label, listeners' votes)
# A classroom of 30 on a 2-vCPU Space: two requests at a time use both cores (a 5 s clip takes a few
# hundred ms); the rest wait in a queue long enough for the whole class to press the button at once.
QUEUE_SIZE = SETTINGS.queue_size
MAX_UPLOAD = SETTINGS.max_upload  # per request, all files together
logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
log = logging.getLogger("app")
for name in ("app", "emotion_core", "webapp"):  # one line per refused input or sweep; no request noise
    logging.getLogger(name).setLevel(logging.INFO)

# The app's own temporary directory (Gradio's uploads go there): cleared now, swept while running, removed at exit.
TEMP_DIR, _TEMP_LOCK = uploads.own_temp_dir()
PENDING = stages.PendingAnswers()  # first-stage answers waiting for their second stage (their page's, only)
UPLOADS = uploads.Uploads(TEMP_DIR, SETTINGS.sweep_s, queued=lambda: web_guards.queued_paths(demo),
                          page_gone=PENDING.forget)
atexit.register(uploads.clear, TEMP_DIR)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop runs the exit cleanup too


def refuse(error: Exception):
    """An ordinary input error: one log line, a readable message, no traceback."""
    log.info("refused: %s", error)
    return gr.Error(str(error), print_exception=False)


# The page answers in two stages, two queue events with their own concurrency: the quick families first (with
# the spectrogram and the summary), then the Whisper family on the same windows. Whisper work queued for the
# rest of a class holds back nobody's first answer. One stage when Whisper is not running.
FIRST_STAGE = RECOGNIZER.stages[0] if len(RECOGNIZER.stages) > 1 else None  # None: every family at once


@gpu
def run(path, progress=None, families=None):
    return service.analyse(path, RECOGNIZER, progress, families)


@gpu
def run_more(first):
    return service.analyse_more(first, RECOGNIZER)


START = "Record or upload a clip to start."


def on_audio(path, request: gr.Request, progress=gr.Progress()):
    """UI event, stage 1: spectrogram, the quick families' bars, timeline, summary, JSON, the window to explain,
    the explanation (cleared: it belonged to the previous clip), where the answers sit (circumplex) and the
    How-it-works pipeline picture (once the answer is complete). An open page keeps the clip (replay, Analyse again, download) until it is replaced,
    cleared or the page is closed; a call without an open page (a script) loses it with its answer."""
    page = request.session_hash if request else None
    token = PENDING.new_clip(page)  # whatever stage 2 of the page's previous clip gives is void now
    if not path:
        return gr.skip(), gr.skip(), gr.skip(), START, gr.skip(), None, None, gr.skip(), gr.skip()
    with UPLOADS.in_use(path, page=page):
        shown, analysis = analyse_clip(path, progress)
    if analysis is not None and analysis.prediction.pending:
        PENDING.put(page, token, analysis)
    return shown


def analyse_clip(path, progress):
    """The page's outputs for a clip's first stage, and its Analysis (None when refused)."""
    if not RECOGNIZER.models:
        return (None, None, gr.update(visible=False), "No trained models are installed.", None, None, None, None, gr.skip()), None
    try:
        a = run(path, lambda fraction, text: progress(fraction, desc=text), FIRST_STAGE)
    except AudioError as e:
        log.info("refused: %s", e)
        return (None, None, gr.update(value=None, visible=False), f"### ⚠️ {e}", {"error": str(e)}, None, None, None,
                gr.skip()), None
    progress(1.0)
    timeline = gr.update(value=a.timeline, visible=a.timeline is not None)
    pipeline = gr.skip() if a.prediction.pending else report_figures.pipeline_of_analysis(a)
    return (a.spectrogram, a.probabilities, timeline, a.summary, a.api, a.best_window, None, a.circumplex, pipeline), a


def on_more(request: gr.Request):
    """UI event, stage 2: the families the first stage left out answer; bars, timeline, summary, JSON, the window
    to explain, where the answers sit and the pipeline picture are drawn again, unless the page has moved to another clip meanwhile.
    If it fails, the first stage's result stays and the summary says so in one sentence."""
    page = request.session_hash if request else None
    waiting = PENDING.take(page)
    if waiting is None:
        return (gr.skip(),) * 7
    token, first = waiting
    try:
        a = run_more(first)
    except Exception as e:  # noqa: BLE001 (the first answer stands whatever went wrong)
        log.warning("stage 2 failed: %s", " ".join(str(e).split())[:300])
        if not PENDING.is_latest(page, token):
            return (gr.skip(),) * 7
        return gr.skip(), gr.skip(), service.summary_markdown(first.prediction, RECOGNIZER.lead_reason_of(first.prediction),
                                                               second_stage_failed=True), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    if not PENDING.is_latest(page, token):
        return (gr.skip(),) * 7
    timeline = gr.update(value=a.timeline, visible=a.timeline is not None)
    return a.probabilities, timeline, a.summary, a.api, a.best_window, a.circumplex, report_figures.pipeline_of_analysis(a)


def on_clear(request: gr.Request):
    """The player's Clear (x), or a new recording starting: no result of the old clip stays on the page, and
    its file goes unless a request still uses it."""
    UPLOADS.release_page(request.session_hash if request else None)
    PENDING.forget(request.session_hash if request else None)
    return None, None, gr.update(value=None, visible=False), START, None, None, None, None


def on_explain(window, progress=gr.Progress()):
    if not window:
        return None
    import torch

    progress(0.2, desc="hiding patches of the spectrogram")
    maps, labels = occlusion_maps(RECOGNIZER, torch.as_tensor(window["log_mel"]))
    return explanation_figure(window["log_mel"], maps, window["start_s"], labels, window.get("duration_s"))


@lru_cache(maxsize=64)
def clip_probabilities(path: str) -> dict:
    """Every model's probabilities for one of the app's own example clips (never a user's recording)."""
    pred = gpu(service.classify)(path, RECOGNIZER)
    return {n: tuple(o.probabilities.tolist()) for n, o in pred.models.items()}


def warm_up():
    """Both stages of an analysis of the first example clip, and its How-it-works picture (default_pipeline)."""
    try:
        default_pipeline()
        if EXAMPLES and FIRST_STAGE:
            service.analyse_more(service.analyse(EXAMPLES[0].path, RECOGNIZER, families=FIRST_STAGE), RECOGNIZER)
        log.info("warm-up done")
    except Exception as e:  # noqa: BLE001 (a failed warm-up costs the first request time, nothing else)
        log.warning("warm-up failed: %s", e)


@lru_cache(maxsize=1)
def default_pipeline():
    """The How-it-works pipeline picture of the first example clip, before a clip has been analysed."""
    if not EXAMPLES or not RECOGNIZER.models:
        return None
    return report_figures.pipeline_of_analysis(service.analyse(EXAMPLES[0].path, RECOGNIZER))


def on_play(state):
    """Guess the emotion: a new clip (not yet played this session) plays; the last reveal is cleared."""
    state = game.next_clip(state or game.new_game(), GAME_CLIPS)
    clip = GAME_CLIPS[state["clip"]]
    return (state, game.clip_sound(clip.path), "Listen, then pick the emotion you hear.", gr.update(value=None, visible=False),
            *[gr.update(interactive=True)] * len(LABELS))


def on_guess(guess, state):
    """The reveal: the truth, every model's answer, and where each answer sits among the emotions."""
    if not state or state["clip"] is None or state["answered"]:
        return state, "Press **Play a clip** first.", gr.skip(), gr.skip(), *[gr.skip()] * len(LABELS)
    clip = GAME_CLIPS[state["clip"]]
    probabilities = clip_probabilities(clip.path)
    answers = game.model_answers(probabilities, clip.label)
    state = game.score_guess(state, guess, clip.label, answers, clip.votes)
    where = gr.update(value=circumplex.circumplex_figure(probabilities, truth=clip.label), visible=True)
    threshold = RELIABILITY.get("threshold")
    unsure = certainty.verdict_unsure(probabilities, RECOGNIZER.lead, threshold) if threshold is not None else None
    return (state, game.reveal_markdown(guess, clip, answers, threshold, unsure), game.scoreboard_markdown(state), where,
            *[gr.update(interactive=False)] * len(LABELS))


def on_act_target(state):
    state, target = game.act_target(state or game.new_game())
    return state, f"## Say any sentence so that it sounds **{target}**, then stop the recording.", None, ""


def on_act(path, state):
    """Act it out: which models heard the emotion the pupil meant. The recording is deleted once read."""
    if not path:
        return gr.skip(), gr.skip(), gr.skip()
    with UPLOADS.in_use(path):
        if not state or not state["target"]:
            return state, "Press **Give me an emotion** first.", None
        try:
            pred = gpu(service.classify)(path, RECOGNIZER)
        except AudioError as e:
            log.info("refused: %s", e)
            return state, f"### ⚠️ {e}", None
    answers = game.model_answers({n: o.probabilities for n, o in pred.models.items()}, state["target"])
    state = game.score_act(state, answers)
    return state, game.act_markdown(state, answers), None  # the take is gone: the player is ready for the next one


def on_family(name, condition):
    return report_figures.confusion_figure(REPORTS, name, condition)


def classify_api(audio):
    """JSON API: {"duration_s", "device", "lead", "models": {name: {label, probabilities, latency_ms}}, "timeline",
    "timing_ms"}. The uploaded file is deleted with the answer."""
    if not audio:
        raise refuse(AudioError("No audio was sent."))
    with UPLOADS.in_use(audio):
        try:
            return service.answer_json(gpu(service.classify)(audio, RECOGNIZER))
        except AudioError as e:
            raise refuse(e) from None


def classify_first_api(audio):
    """JSON API, first stage only: the quick families' answer, "pending" naming the families left out (the same
    answer /classify gives, less those). The uploaded file is deleted with the answer."""
    if not audio:
        raise refuse(AudioError("No audio was sent."))
    with UPLOADS.in_use(audio):
        try:
            return service.answer_json(gpu(service.classify)(audio, RECOGNIZER, families=FIRST_STAGE))
        except AudioError as e:
            raise refuse(e) from None


with web_guards.GuardedBlocks(title="Speech emotion recognition") as demo:
    gr.Markdown(howto.HEADER)
    if RECOGNIZER.unavailable:
        gr.Markdown(howto.unavailable_note(RECOGNIZER))
    with gr.Tab("Try it"):
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                audio = gr.Audio(sources=["microphone", "upload"], type="filepath",
                                 label=f"Record or upload (0.5 s to 10 min, up to {MAX_UPLOAD.upper().replace('MB', ' MB')})")
                gr.HTML('<p id="upload-refused" role="alert"></p>', padding=False)  # too-big files
                # after an upload or Clear the player shows its upload area: this puts the microphone back
                record_btn = gr.Button("Record again", visible=False, size="sm", elem_id="record-again")
                go_btn = gr.Button("Analyse", variant="primary", elem_id="analyse")
                summary = gr.Markdown(START, elem_id="summary")
            with gr.Column(scale=3, min_width=300):
                spectrogram = gr.Plot(label="mel spectrogram", elem_id="spectrogram")
                bars = gr.Plot(label="each model's probabilities", show_label=False, elem_id="bars")  # label would cover the legend
                where = gr.Plot(label="where the answers sit", show_label=False, elem_id="circumplex")  # it has its title
                timeline = gr.Plot(label="emotion over time", show_label=False, visible=False, elem_id="timeline")
        if EXAMPLES:  # after the results, so that on a phone the result comes right after the button
            examples = gr.Examples([[e.path] for e in EXAMPLES], inputs=[audio], example_labels=[e.caption for e in EXAMPLES],
                                   label="Clips of speakers the models never heard: click one to analyse it "
                                         "(true label; CREMA-D: what listeners said; how the models did)",
                                   examples_per_page=len(EXAMPLES), cache_examples=False)
        with gr.Accordion("Explain: which parts of the spectrogram drove each decision", open=False):
            explain_btn = gr.Button("Explain the most confident window")
            explanation = gr.Plot(label="occlusion", elem_id="explanation")
        with gr.Accordion("The answer as JSON (what the API returns)", open=False):
            answer = gr.JSON()
        window = gr.State(None)
    session = gr.State(None)  # the game of this browser session only: scores, clip, emotion to act
    with gr.Tab("Guess the emotion"):
        gr.Markdown("## Can you beat the models?\nListen to an actor, pick the emotion you hear, then see what the "
                    "models and real listeners said. Scores last until you close the page; nothing is kept.")
        play_btn = gr.Button("Play a clip", variant="primary", interactive=bool(GAME_CLIPS))
        game_audio = gr.Audio(label="the clip", interactive=False, autoplay=True, elem_id="game-audio")
        with gr.Row(elem_classes="guess-buttons"):
            guess_btns = [gr.Button(lab, interactive=False, size="sm") for lab in LABELS]
        reveal = gr.Markdown("" if GAME_CLIPS else "_No example clips are installed here._", elem_id="reveal")
        reveal_circumplex = gr.Plot(label="where the answers sit", show_label=False, visible=False,  # a label covers the title
                                    elem_id="reveal-circumplex")
        score = gr.Markdown(game.scoreboard_markdown(game.new_game(0)), elem_id="score")
        gr.Markdown("## Act it out\nThe page names an emotion; you say any sentence that way. Which models hear what you meant?")
        act_btn = gr.Button("Give me an emotion")
        act_prompt = gr.Markdown("", elem_id="act-prompt")
        act_audio = gr.Audio(sources=["microphone"], type="filepath", label="Your take (deleted once the models heard it)", elem_id="act-audio")
        act_result = gr.Markdown("", elem_id="act-result")
    with gr.Tab("How it works"):
        gr.Markdown(howto.PIPELINE)
        pipeline = gr.Plot(label="from sound to answer (the last clip analysed, else an example)", show_label=False,
                           elem_id="pipeline")
        gr.Markdown(howto.RESULTS_INTRO)
        gr.Plot(report_figures.uar_figure(REPORTS) if REPORTS else None, label="accuracy per test dataset", show_label=False, elem_id="uar")
        names = report_figures.model_order(REPORTS)
        with gr.Row():
            family = gr.Radio([(MODEL_NAMES.get(n, n), n) for n in names], value=names[0] if names else None,
                              label="Confusion matrix of")
            condition = gr.Radio(list(REPORTS), value=next(iter(REPORTS), None), label="conditions", visible=len(REPORTS) > 1)
        confusion = gr.Plot(report_figures.confusion_figure(REPORTS, names[0]) if names else None, label="confusion matrix", elem_id="confusion")
        if RELIABILITY:
            gr.Markdown("## How sure, how right?\nEach point is a group of validation clips the model was about equally "
                        "sure of: how sure it was (across) and how often it was right (up). On the dotted diagonal a "
                        "model is exactly as sure as it is right. " + certainty.threshold_sentence(RELIABILITY["threshold"])
                        + " The dashed line marks it.")
            gr.Plot(certainty.reliability_figure(RELIABILITY), label="reliability", show_label=False, elem_id="reliability")
        gr.Markdown("## The models")
        for name in howto.family_names(RECOGNIZER):
            gr.Markdown(f"### {MODEL_NAMES.get(name, name)}\n{howto.story(name, RECOGNIZER)}")
            with gr.Accordion(f"Technical card: {MODEL_NAMES.get(name, name)}", open=False):
                gr.Markdown(howto.technical_card(name, RECOGNIZER))
        with gr.Accordion("The exact numbers (reports/test.md)", open=False):
            gr.Markdown(howto.report_tables())
        with gr.Accordion("For teachers: a 10-minute lesson, questions to discuss, who the models fail, the voices they "
                          "learned from", open=False, elem_id="teachers"):
            gr.Markdown(teachers.teachers_page(REPORTS))
    outputs = [spectrogram, bars, timeline, summary, answer, window, explanation, where, pipeline]
    more_outputs = [bars, timeline, summary, answer, window, where, pipeline]
    first_stage = {"concurrency_id": "first stage", "concurrency_limit": CONCURRENCY}
    second_stage = {"fn": on_more, "outputs": more_outputs, "concurrency_id": "second stage", "concurrency_limit": CONCURRENCY,
                    "show_progress": "hidden"}  # the headline says Whisper is still listening
    gr.on([go_btn.click, audio.stop_recording, audio.upload], on_audio, inputs=audio, outputs=outputs,
          api_name="analyse", api_visibility="undocumented",  # the page's first stage; bench/app_speed.py times it
          show_progress_on=[spectrogram], **first_stage).then(  # the stages show over the spectrogram
        api_name="analyse_more", api_visibility="undocumented", **second_stage)
    gr.on([audio.clear, audio.start_recording], on_clear, outputs=outputs[:-1], api_visibility="private",
          show_progress="hidden", queue=False)  # at once, never behind the analysis it must precede
    gr.on([audio.clear, audio.upload], lambda: gr.update(visible=True), outputs=record_btn, api_visibility="private",
          queue=False, show_progress="hidden")
    # the player opens on its first source: a change of the first source switches it back to the microphone
    record_btn.click(on_clear, outputs=outputs[:-1], api_visibility="private", queue=False, show_progress="hidden").then(
        lambda: gr.update(value=None, sources=["upload", "microphone"]), outputs=audio, api_visibility="private", queue=False,
        show_progress="hidden").then(
        lambda: (gr.update(sources=["microphone", "upload"]), gr.update(visible=False)), outputs=[audio, record_btn],
        api_visibility="private", queue=False, show_progress="hidden")
    audio.upload(None, js=uploads.clear_note_js("upload-refused"))
    demo.load(None, js=uploads.too_big_note_js("upload-refused"))
    explain_btn.click(on_explain, inputs=window, outputs=explanation, api_visibility="private")
    if EXAMPLES:  # a click fills the player (load_example) and analyses the clip at once
        examples.load_input_event.then(on_audio, inputs=audio, outputs=outputs, api_visibility="undocumented",
                                       api_name="analyse_example", show_progress_on=[spectrogram], **first_stage).then(
            api_name="analyse_example_more", api_visibility="undocumented", **second_stage)
        examples.load_input_event.then(None, js=theme.SHOW_RESULT_JS)  # on a phone the result is far above the list
    demo.load(default_pipeline, outputs=pipeline, api_visibility="private")
    play_btn.click(on_play, inputs=session, outputs=[session, game_audio, reveal, reveal_circumplex, *guess_btns],
                   api_visibility="private")
    for lab, btn in zip(LABELS, guess_btns, strict=False):
        btn.click(partial(on_guess, lab), inputs=session, outputs=[session, reveal, score, reveal_circumplex, *guess_btns],
                  api_visibility="private")
    act_btn.click(on_act_target, inputs=session, outputs=[session, act_prompt, act_audio, act_result], api_visibility="private")
    gr.on([act_audio.stop_recording], on_act, inputs=[act_audio, session], outputs=[session, act_result, act_audio], api_visibility="private")
    gr.on([family.change, condition.change], on_family, inputs=[family, condition], outputs=confusion, api_visibility="private")
    api_in, api_out = gr.Audio(type="filepath", visible=False, label="audio"), gr.JSON(visible=False, label="result")
    gr.Button(visible=False).click(classify_api, inputs=api_in, outputs=api_out, api_name="classify")
    gr.Button(visible=False).click(classify_first_api, inputs=api_in, outputs=api_out, api_name="classify_first",
                                   **first_stage)

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)

if __name__ == "__main__":
    UPLOADS.start_sweeping()
    guards = [Middleware(web_guards.PlainErrors), Middleware(web_guards.PageHeartbeats, uploads=UPLOADS),
              Middleware(web_guards.FileServing, uploads=UPLOADS),
              Middleware(upload_route.UploadRoute, uploads=UPLOADS, max_bytes=uploads.parse_size(MAX_UPLOAD),
                         upload_s=SETTINGS.upload_s)]
    # serves the example clips (static paths above) and nothing else of the disk; show_error: a refused
    # request (a path that was not uploaded, say) gets Gradio's message, not {"error": null}
    demo.launch(max_file_size=MAX_UPLOAD, show_error=True, app_kwargs={"middleware": guards},
                css=theme.CSS, head=theme.HEAD, prevent_thread_lock=True)
    # ready: now every path of an analysis runs once in the background (decoders, Silero, each model, Praat's
    # pitch, the figures), so that the first pupil's click does not pay for it
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    demo.block_thread()
