"""Gradio app: record or upload, every model side by side. Layout and event wiring only: the handlers are in
webapp.events, the logic in webapp (service, plots, game) and emotion_core (the recognizer)."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from functools import partial

import gradio as gr
import torch
from starlette.middleware import Middleware

from emotion_core import settings
from emotion_core.labels import LABELS
from emotion_core.recognizer import Recognizer
from webapp import (
    certainty,
    events,
    game,
    how_it_works,
    howto,
    report_figures,
    service,
    stages,
    theme,
    upload_route,
    uploads,
    web_guards,
)
from webapp.examples import example_clips, game_clips

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
# every checkpoint, loaded once, on CUDA when available; a started app (not a test importing this module) answers
# from the Whisper graph an earlier start exported, without loading the encoder, when its files are the ones checked
RECOGNIZER = Recognizer(onnx_at_start=SETTINGS.onnx and __name__ == "__main__")
DATA_DIR = SETTINGS.data_dir if "data_dir" in SETTINGS.given else None
EXAMPLES = example_clips(DATA_DIR, running=list(RECOGNIZER.models))  # examples/, plus test-speaker clips of DATA_DIR
# The example clips are served from where they are, never copied into Gradio's cache (which the sweep
# empties), and they are the only files of the disk the server hands out.
gr.set_static_paths([e.path for e in EXAMPLES])
REPORTS = report_figures.load_reports()
# the "not sure" threshold, chosen on validation speakers (train.reliability)
RELIABILITY = certainty.load_reliability()
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
UPLOADS = uploads.Uploads(
    TEMP_DIR, SETTINGS.sweep_s, queued=lambda: web_guards.queued_paths(demo), page_gone=PENDING.forget
)
atexit.register(uploads.clear, TEMP_DIR)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop runs the exit cleanup too


@gpu
def run(path, progress=None, families=None):
    return service.analyse(path, RECOGNIZER, progress, families)


@gpu
def run_more(first):
    return service.analyse_more(first, RECOGNIZER)


EVENTS = events.PageEvents(
    RECOGNIZER,
    UPLOADS,
    PENDING,
    analyse=run,
    analyse_more=run_more,
    classify=gpu(service.classify),
    examples=EXAMPLES,
    game_clips=GAME_CLIPS,
    reports=REPORTS,
    reliability=RELIABILITY,
)
on_audio, on_more = EVENTS.on_audio, EVENTS.on_more  # the page's two stages


with web_guards.GuardedBlocks(title="Speech emotion recognition") as demo:
    gr.Markdown(howto.HEADER)
    if RECOGNIZER.unavailable:
        gr.Markdown(howto.unavailable_note(RECOGNIZER))
    with gr.Tab("Try it"):
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                audio = gr.Audio(
                    sources=["microphone", "upload"],
                    type="filepath",
                    label=f"Record or upload (0.5 s to 10 min, up to {MAX_UPLOAD.upper().replace('MB', ' MB')})",
                )
                gr.HTML('<p id="upload-refused" role="alert"></p>', padding=False)  # too-big files
                # after an upload or Clear the player shows its upload area: this puts the microphone back
                record_btn = gr.Button("Record again", visible=False, size="sm", elem_id="record-again")
                go_btn = gr.Button("Analyse", variant="primary", elem_id="analyse")
                summary = gr.Markdown(events.START, elem_id="summary")
            with gr.Column(scale=3, min_width=300):
                spectrogram = gr.Plot(label="mel spectrogram", elem_id="spectrogram")
                # label would cover the legend
                bars = gr.Plot(label="each model's probabilities", show_label=False, elem_id="bars")
                # it has its title
                where = gr.Plot(label="where the answers sit", show_label=False, elem_id="circumplex")
                timeline = gr.Plot(label="emotion over time", show_label=False, visible=False, elem_id="timeline")
        if EXAMPLES:  # after the results, so that on a phone the result comes right after the button
            examples = gr.Examples(
                [[e.path] for e in EXAMPLES],
                inputs=[audio],
                example_labels=[e.caption for e in EXAMPLES],
                label="Clips of speakers the models never heard: click one to analyse it "
                "(true label; CREMA-D: what listeners said; how the models did)",
                examples_per_page=len(EXAMPLES),
                cache_examples=False,
            )
        with gr.Accordion("Explain: which parts of the spectrogram drove each decision", open=False):
            explain_btn = gr.Button("Explain the most confident window")
            explanation = gr.Plot(label="occlusion", elem_id="explanation")
        with gr.Accordion("The answer as JSON (what the API returns)", open=False):
            answer = gr.JSON()
        window = gr.State(None)
    session = gr.State(None)  # the game of this browser session only: scores, clip, emotion to act
    with gr.Tab("Guess the emotion"):
        gr.Markdown(
            "## Can you beat the models?\nListen to an actor, pick the emotion you hear, then see what the "
            "models and real listeners said. Scores last until you close the page; nothing is kept."
        )
        play_btn = gr.Button("Play a clip", variant="primary", interactive=bool(GAME_CLIPS))
        game_audio = gr.Audio(label="the clip", interactive=False, autoplay=True, elem_id="game-audio")
        with gr.Row(elem_classes="guess-buttons"):
            guess_btns = [gr.Button(lab, interactive=False, size="sm") for lab in LABELS]
        reveal = gr.Markdown("" if GAME_CLIPS else "_No example clips are installed here._", elem_id="reveal")
        reveal_circumplex = gr.Plot(
            label="where the answers sit",
            show_label=False,
            visible=False,  # a label covers the title
            elem_id="reveal-circumplex",
        )
        score = gr.Markdown(game.scoreboard_markdown(game.new_game(0)), elem_id="score")
        gr.Markdown(
            "## Act it out\nThe page names an emotion; you say any sentence that way. Which models hear what you meant?"
        )
        act_btn = gr.Button("Give me an emotion")
        act_prompt = gr.Markdown("", elem_id="act-prompt")
        act_audio = gr.Audio(
            sources=["microphone"],
            type="filepath",
            label="Your take (deleted once the models heard it)",
            elem_id="act-audio",
        )
        act_result = gr.Markdown("", elem_id="act-result")
    with gr.Tab("How it works"):
        pipeline, family, condition, confusion = how_it_works.tab(RECOGNIZER, REPORTS, RELIABILITY)
    outputs = [spectrogram, bars, timeline, summary, answer, window, explanation, where, pipeline]
    more_outputs = [bars, timeline, summary, answer, window, where, pipeline]
    first_stage = {"concurrency_id": "first stage", "concurrency_limit": CONCURRENCY}
    second_stage = {
        "fn": on_more,
        "outputs": more_outputs,
        "concurrency_id": "second stage",
        "concurrency_limit": CONCURRENCY,
        "show_progress": "hidden",
    }  # the headline says Whisper is still listening
    gr.on(
        [go_btn.click, audio.stop_recording, audio.upload],
        on_audio,
        inputs=audio,
        outputs=outputs,
        api_name="analyse",
        api_visibility="undocumented",  # the page's first stage; bench/app_speed.py times it
        show_progress_on=[spectrogram],
        **first_stage,
    ).then(  # the stages show over the spectrogram
        api_name="analyse_more", api_visibility="undocumented", **second_stage
    )
    # at once, never behind the analysis it must precede
    gr.on(
        [audio.clear, audio.start_recording],
        EVENTS.on_clear,
        outputs=outputs[:-1],
        api_visibility="private",
        show_progress="hidden",
        queue=False,
    )
    gr.on(
        [audio.clear, audio.upload],
        lambda: gr.update(visible=True),
        outputs=record_btn,
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    )
    # the player opens on its first source: a change of the first source switches it back to the microphone
    record_btn.click(
        EVENTS.on_clear, outputs=outputs[:-1], api_visibility="private", queue=False, show_progress="hidden"
    ).then(
        lambda: gr.update(value=None, sources=["upload", "microphone"]),
        outputs=audio,
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    ).then(
        lambda: (gr.update(sources=["microphone", "upload"]), gr.update(visible=False)),
        outputs=[audio, record_btn],
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    )
    audio.upload(None, js=uploads.clear_note_js("upload-refused"))
    demo.load(None, js=uploads.too_big_note_js("upload-refused"))
    explain_btn.click(EVENTS.on_explain, inputs=window, outputs=explanation, api_visibility="private")
    if EXAMPLES:  # a click fills the player (load_example) and analyses the clip at once
        examples.load_input_event.then(
            on_audio,
            inputs=audio,
            outputs=outputs,
            api_visibility="undocumented",
            api_name="analyse_example",
            show_progress_on=[spectrogram],
            **first_stage,
        ).then(api_name="analyse_example_more", api_visibility="undocumented", **second_stage)
        examples.load_input_event.then(None, js=theme.SHOW_RESULT_JS)  # on a phone the result is far above the list
    demo.load(EVENTS.default_pipeline, outputs=pipeline, api_visibility="private")
    play_btn.click(
        EVENTS.on_play,
        inputs=session,
        outputs=[session, game_audio, reveal, reveal_circumplex, *guess_btns],
        api_visibility="private",
    )
    for lab, btn in zip(LABELS, guess_btns, strict=False):
        btn.click(
            partial(EVENTS.on_guess, lab),
            inputs=session,
            outputs=[session, reveal, score, reveal_circumplex, *guess_btns],
            api_visibility="private",
        )
    act_btn.click(
        EVENTS.on_act_target,
        inputs=session,
        outputs=[session, act_prompt, act_audio, act_result],
        api_visibility="private",
    )
    gr.on(
        [act_audio.stop_recording],
        EVENTS.on_act,
        inputs=[act_audio, session],
        outputs=[session, act_result, act_audio],
        api_visibility="private",
    )
    gr.on(
        [family.change, condition.change],
        EVENTS.on_family,
        inputs=[family, condition],
        outputs=confusion,
        api_visibility="private",
    )
    api_in, api_out = gr.Audio(type="filepath", visible=False, label="audio"), gr.JSON(visible=False, label="result")
    gr.Button(visible=False).click(EVENTS.classify_api, inputs=api_in, outputs=api_out, api_name="classify")
    gr.Button(visible=False).click(
        EVENTS.classify_first_api, inputs=api_in, outputs=api_out, api_name="classify_first", **first_stage
    )

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)

if __name__ == "__main__":
    UPLOADS.start_sweeping()
    guards = [
        Middleware(web_guards.PlainErrors),
        Middleware(web_guards.PageHeartbeats, uploads=UPLOADS),
        Middleware(web_guards.FileServing, uploads=UPLOADS),
        Middleware(
            upload_route.UploadRoute,
            uploads=UPLOADS,
            max_bytes=uploads.parse_size(MAX_UPLOAD),
            upload_s=SETTINGS.upload_s,
        ),
    ]
    # serves the example clips (static paths above) and nothing else of the disk; show_error: a refused
    # request (a path that was not uploaded, say) gets Gradio's message, not {"error": null}
    demo.launch(
        max_file_size=MAX_UPLOAD,
        show_error=True,
        app_kwargs={"middleware": guards},
        css=theme.CSS,
        head=theme.HEAD,
        prevent_thread_lock=True,
    )
    # ready: now every path of an analysis runs once in the background (decoders, Silero, each model, Praat's
    # pitch, the figures), so that the first pupil's click does not pay for it
    threading.Thread(target=EVENTS.warm_up, name="warm-up", daemon=True).start()
    demo.block_thread()
