"""Gradio app: record or upload, every model side by side. Layout and event wiring only; the logic is in
emotion_core (service, plots, explain, recognizer)."""
from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import uuid
from pathlib import Path

import gradio as gr
import torch
from starlette.middleware import Middleware

from emotion_core import AudioError, howto, service, uploads
from emotion_core.examples import example_clips
from emotion_core.explain import occlusion_maps
from emotion_core.paths import DATA_ENV
from emotion_core.plots import explanation_figure
from emotion_core.recognizer import Recognizer

try:  # Hugging Face ZeroGPU: run inference on a borrowed GPU; a no-op everywhere else
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

# Two requests at once, each with every core, would oversubscribe the CPU: give each request its share.
CONCURRENCY = int(os.environ.get("EMOTION_CONCURRENCY", 2))
torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))
RECOGNIZER = Recognizer()  # every checkpoint, loaded once, on CUDA when available
DATA_DIR = Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else None
EXAMPLES = example_clips(DATA_DIR)
# A classroom of 30 on a 2-vCPU Space: two requests at a time use both cores (a 5 s clip takes a few
# hundred ms); the rest wait in a queue long enough for the whole class to press the button at once.
QUEUE_SIZE = int(os.environ.get("EMOTION_QUEUE_SIZE", 64))
MAX_UPLOAD = os.environ.get("EMOTION_MAX_UPLOAD", "25mb")  # per request, all files together
logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
log = logging.getLogger("app")
for name in ("app", "emotion_core"):  # one line per refused input or sweep; no request noise
    logging.getLogger(name).setLevel(logging.INFO)

# The app's own temporary directory (Gradio's uploads go there): cleared now, swept while running, removed at exit.
TEMP_DIR, _TEMP_LOCK = uploads.own_temp_dir()
UPLOADS = uploads.Uploads(TEMP_DIR, float(os.environ.get(uploads.SWEEP_ENV, uploads.SWEEP_S)))
atexit.register(uploads.clear, TEMP_DIR)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop runs the exit cleanup too


def refuse(error: Exception):
    """An ordinary input error: one log line, a readable message, no traceback."""
    log.info("refused: %s", error)
    return gr.Error(str(error), print_exception=False)


@gpu
def run(path):
    return service.analyse(path, RECOGNIZER)


def on_audio(path, request: gr.Request, progress=gr.Progress()):
    """UI event: spectrogram, bars, timeline, summary, JSON, and the window to explain. The session keeps
    the clip (replay, Analyse again, download) until it is replaced, cleared or the page is closed."""
    if not path:
        return gr.skip(), gr.skip(), gr.skip(), "Record or upload a clip to start.", gr.skip(), None
    UPLOADS.hold(request.session_hash or str(uuid.uuid4()), path)
    if not RECOGNIZER.models:
        return None, None, gr.update(visible=False), "No trained models are installed.", None, None
    progress(0.1, desc="listening")
    try:
        a = run(path)
    except AudioError as e:
        log.info("refused: %s", e)
        return None, None, gr.update(value=None, visible=False), f"### ⚠️ {e}", {"error": str(e)}, None
    progress(1.0)
    timeline = gr.update(value=a.timeline, visible=a.timeline is not None)
    return a.spectrogram, a.probabilities, timeline, a.summary, a.api, a.best_window


def on_explain(window, progress=gr.Progress()):
    if not window:
        return None
    import torch

    progress(0.2, desc="hiding patches of the spectrogram")
    maps, labels = occlusion_maps(RECOGNIZER, torch.as_tensor(window["log_mel"]))
    return explanation_figure(window["log_mel"], maps, window["start_s"], labels)


def classify_api(path):
    """JSON API: {"duration_s", "device", "models": {name: {label, probabilities, latency_ms}}, "timeline"}.
    The uploaded file is deleted once no other request holds it (identical uploads share one file)."""
    if not path:
        raise refuse(AudioError("No audio was sent."))
    holder = f"request-{uuid.uuid4()}"
    UPLOADS.hold(holder, path)
    try:
        return gpu(service.classify)(path, RECOGNIZER).to_json()
    except AudioError as e:
        raise refuse(e) from None
    finally:
        UPLOADS.release(holder)


def release_clip(request: gr.Request):
    """The clip left the page (cleared, or the session ended): its file goes unless another holds it."""
    if request and request.session_hash:
        UPLOADS.release(request.session_hash)


with gr.Blocks(title="Speech emotion recognition") as demo:
    gr.Markdown(howto.HEADER)
    if RECOGNIZER.unavailable:
        gr.Markdown(howto.unavailable_note(RECOGNIZER))
    with gr.Tab("Try it"):
        with gr.Row():
            with gr.Column(scale=2):
                audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label=f"Record or upload (0.5 s to 10 min, up to {MAX_UPLOAD.upper().replace('MB', ' MB')})")
                gr.HTML('<p id="upload-refused" role="alert"></p>', padding=False)  # too-big files
                go_btn = gr.Button("Analyse", variant="primary")
                summary = gr.Markdown("Record or upload a clip to start.")
                if EXAMPLES:
                    gr.Examples([[p] for p, _ in EXAMPLES], inputs=[audio], example_labels=[c for _, c in EXAMPLES],
                                label="Clips of speakers the models never heard (true label; CREMA-D: what listeners said)")
            with gr.Column(scale=3):
                spectrogram = gr.Plot(label="mel spectrogram")
                bars = gr.Plot(label="probabilities")
                timeline = gr.Plot(label="emotion over time", visible=False)
        with gr.Accordion("Explain: which parts of the spectrogram drove each decision", open=False):
            explain_btn = gr.Button("Explain the most confident window")
            explanation = gr.Plot(label="occlusion")
        with gr.Accordion("The answer as JSON (what the API returns)", open=False):
            answer = gr.JSON()
        window = gr.State(None)
    with gr.Tab("How it works"):
        gr.Markdown(howto.how_it_works(RECOGNIZER))
    outputs = [spectrogram, bars, timeline, summary, answer, window]
    gr.on([go_btn.click, audio.stop_recording, audio.upload], on_audio, inputs=audio, outputs=outputs,
          api_name="analyse", api_visibility="undocumented")  # the full page result; bench/app_speed.py times it
    audio.clear(release_clip, api_visibility="private")
    demo.unload(release_clip)
    audio.upload(None, js=uploads.clear_note_js("upload-refused"))
    demo.load(None, js=uploads.too_big_note_js("upload-refused"))
    explain_btn.click(on_explain, inputs=window, outputs=explanation, api_visibility="private")
    api_in, api_out = gr.Audio(type="filepath", visible=False), gr.JSON(visible=False)
    gr.Button(visible=False).click(classify_api, inputs=api_in, outputs=api_out, api_name="classify")

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)

if __name__ == "__main__":
    UPLOADS.start_sweeping()
    request_cap = Middleware(uploads.UploadMiddleware, uploads=UPLOADS, max_bytes=uploads.parse_size(MAX_UPLOAD))
    # show_error: a refused request (a path that was not uploaded, say) gets Gradio's message, not {"error": null}
    demo.launch(max_file_size=MAX_UPLOAD, allowed_paths=[str(DATA_DIR)] if DATA_DIR else None, show_error=True,
                app_kwargs={"middleware": [request_cap]})
