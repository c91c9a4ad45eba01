"""Gradio app: record or upload, every model side by side. Layout and event wiring only; the logic is in
emotion_core (service, plots, explain, recognizer)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import gradio as gr
import torch

from emotion_core import AudioError
from emotion_core import howto, service, settings
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
CONCURRENCY = settings.get("EMOTION_CONCURRENCY")
torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))
RECOGNIZER = Recognizer()  # every checkpoint, loaded once, on CUDA when available
DATA_DIR = settings.get(DATA_ENV) if settings.is_set(DATA_ENV) else None
EXAMPLES = example_clips(DATA_DIR)  # examples/ shipped with the app, plus test-speaker clips of DATA_DIR
# The example clips are served from where they are, never copied into Gradio's cache (which the sweep
# empties), and they are the only files of the disk the server hands out.
gr.set_static_paths([e.path for e in EXAMPLES])
# A classroom of 30 on a 2-vCPU Space: two requests at a time use both cores (a 5 s clip takes a few
# hundred ms); the rest wait in a queue long enough for the whole class to press the button at once.
QUEUE_SIZE = settings.get("EMOTION_QUEUE_SIZE")
MAX_UPLOAD = settings.get("EMOTION_MAX_UPLOAD")
SWEEP_S = settings.get("EMOTION_SWEEP_S")
CACHE_SWEEP = (SWEEP_S, SWEEP_S)  # every SWEEP_S s delete Gradio's temporary files older than SWEEP_S s


def forget(path) -> None:
    """Delete an uploaded or recorded file once read: nothing of a recording outlives the request.
    Only files in Gradio's temporary directory are touched (never a dataset example)."""
    if not path:
        return
    tmp = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()
    p = Path(path).resolve()
    if tmp in p.parents:
        p.unlink(missing_ok=True)
        try:
            p.parent.rmdir()  # Gradio keeps each upload in a folder of its own
        except OSError:
            pass


@gpu
def run(path):
    try:
        return service.analyse(path, RECOGNIZER)
    finally:
        forget(path)


def on_audio(path, progress=gr.Progress()):
    """UI event: spectrogram, bars, timeline, summary, JSON, and the window to explain."""
    if not path:
        return gr.skip(), gr.skip(), gr.skip(), "Record or upload a clip to start.", gr.skip(), None
    if not RECOGNIZER.models:
        forget(path)
        return None, None, gr.update(visible=False), "No trained models are installed.", None, None
    progress(0.1, desc="listening")
    try:
        a = run(path)
    except AudioError as e:
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


ANSWERS = service.RecentAnswers()  # identical uploads share one temp file; see RecentAnswers


def classify_api(path):
    """JSON API: {"duration_s", "device", "models": {name: {label, probabilities, latency_ms}}, "timeline"}."""
    try:
        return ANSWERS.get_or_compute(path, lambda: gpu(service.classify)(path, RECOGNIZER).to_json())
    except AudioError as e:
        raise gr.Error(str(e)) from None
    finally:
        forget(path)


with gr.Blocks(title="Speech emotion recognition", delete_cache=CACHE_SWEEP) as demo:
    gr.Markdown(howto.HEADER)
    if RECOGNIZER.unavailable:
        gr.Markdown(howto.unavailable_note(RECOGNIZER))
    with gr.Tab("Try it"):
        with gr.Row():
            with gr.Column(scale=2):
                audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Record or upload (0.5 s to 10 min)")
                go_btn = gr.Button("Analyse", variant="primary")
                summary = gr.Markdown("Record or upload a clip to start.")
                if EXAMPLES:
                    examples = gr.Examples([[e.path] for e in EXAMPLES], inputs=[audio], example_labels=[e.caption for e in EXAMPLES],
                                           label="Clips of speakers the models never heard: click one to analyse it "
                                                 "(true label; CREMA-D: what listeners said; how the models did)",
                                           examples_per_page=len(EXAMPLES), cache_examples=False)
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
    explain_btn.click(on_explain, inputs=window, outputs=explanation, api_visibility="private")
    if EXAMPLES:  # a click fills the player (load_example) and analyses the clip at once
        examples.load_input_event.then(on_audio, inputs=audio, outputs=outputs, api_visibility="undocumented",
                                       api_name="analyse_example")
    api_in, api_out = gr.Audio(type="filepath", visible=False), gr.JSON(visible=False)
    gr.Button(visible=False).click(classify_api, inputs=api_in, outputs=api_out, api_name="classify")

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)

if __name__ == "__main__":
    demo.launch(max_file_size=MAX_UPLOAD)  # serves the example clips (static paths above) and nothing else of the disk
