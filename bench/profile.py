"""Where the time of one request goes: each stage of the app's path for a 5 s clip, in this process with the
app's thread setting, then the same request through the real app on loopback. Figures for the README; never a test.

    python -m bench.profile [--seconds 5] [--repeats 10] [--out bench/profile.json]

In-process stages (median ms): decode (load_audio of a WAV file), speech preparation (trim and level),
voice activity (Silero), log-mel and windows, each family's forward pass (the frame features shared by cnn1d
and lstm apart), the figures (spectrogram with pitch, bars, where the answers sit), the JSON answer, Gradio's
serialisation of the figures (with their sizes), and the page's two stages (the quick families with every
figure; then the rest on the same windows). Through the app: the client's latency of /classify, /classify_first
and /analyse (the page's first stage) beside the server's own total (timing_ms), the rest being Gradio, HTTP and
the client.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

from emotion_core import settings
from emotion_core.audio import SAMPLE_RATE, load_audio, prepare_speech_span
from emotion_core.paths import data_dir
from emotion_core.recognizer import Recognizer
from emotion_core.vad import speech_activity
from webapp import circumplex, plots, service

from .app_server import AppServer
from .app_speed import speech_clip


def median_ms(fn, repeats: int):
    """(median ms over repeats after one warm-up, the last result)."""
    out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 1), out


def in_process(path: Path, repeats: int) -> dict:
    rec = Recognizer()
    onnx = settings.current().onnx and rec.use_onnx()  # as the app runs the Whisper encoder once warmed up
    stages, sizes = {}, {}
    stages["decode"], audio = median_ms(lambda: load_audio(path), repeats)
    stages["speech preparation"], prepared = median_ms(lambda: prepare_speech_span(audio), repeats)
    stages["voice activity (Silero)"], activity = median_ms(lambda: speech_activity(prepared.audio), repeats)
    stages["log-mel and windows"], clip = median_ms(lambda: rec.model_windows(audio, lambda _speech: activity), repeats)
    per_family = {name: [] for name in rec.models}
    shared = []
    for _ in range(repeats + 1):
        timing = {}
        for name, (_p, ms) in rec.window_probabilities(clip.windows, timing).items():
            per_family[name].append(ms)
        shared.append(timing.get("features", 0.0))
    stages["frame features (cnn1d, lstm)"] = round(statistics.median(shared[1:]), 1)
    for name, ms in per_family.items():
        stages[f"model: {name}"] = round(statistics.median(ms[1:]), 1)
    pred = service.classify(path, rec)
    lm, speech = clip.log_mel.float().numpy(), clip.speech
    stages["figure: spectrogram and pitch"], spec = median_ms(
        lambda: plots.spectrogram_figure(lm, clip.speech_s[0], pred.duration_s, speech), repeats
    )
    stages["figure: probabilities"], bars = median_ms(
        lambda: plots.probabilities_figure({n: o.probabilities for n, o in pred.models.items()}), repeats
    )
    stages["figure: where the answers sit"], _ = median_ms(
        lambda: circumplex.circumplex_figure({n: o.probabilities for n, o in pred.models.items()}), repeats
    )
    stages["JSON answer"], _ = median_ms(lambda: service.answer_json(pred), repeats)
    import gradio as gr

    for name, fig in (("spectrogram", spec), ("probabilities", bars)):
        stages[f"Gradio serialises: {name}"], payload = median_ms(
            lambda fig=fig: gr.Plot().postprocess(fig).model_dump_json(), repeats
        )
        sizes[f"{name}_kb"] = round(len(payload) / 1000, 1)
    stages["service.analyse (all of the above)"], _ = median_ms(lambda: service.analyse(path, rec), repeats)
    if len(rec.stages) > 1:  # the page's two stages (app.py): the quick families, then the rest on the same windows
        quick = rec.stages[0]
        stages["page stage 1: service.analyse of the quick families"], first = median_ms(
            lambda: service.analyse(path, rec, families=quick), repeats
        )
        stages["page stage 2: service.analyse_more"], _ = median_ms(
            lambda: service.analyse_more(service.analyse(path, rec, families=quick), rec), repeats
        )
        stages["page stage 2: service.analyse_more"] = round(
            stages["page stage 2: service.analyse_more"]
            - stages["page stage 1: service.analyse of the quick families"],
            1,
        )
    return {
        "windows": len(clip.windows),
        "whisper_int8": rec.fast,
        "whisper_onnx": onnx,
        "stages_ms": stages,
        "figure_json": sizes,
    }


def through_app(path: Path, repeats: int, tmp: Path) -> dict:
    from gradio_client import Client, handle_file

    (tmp / "gradio").mkdir()
    out = {}
    server = AppServer(tmp / "gradio")
    with server as url:
        out["app_warm_up"] = server.wait_for_warm_up()
        client = Client(url, verbose=False)
        for api in ("/classify", "/classify_first", "/analyse"):  # /analyse: the page's first stage
            latency, server_ms = [], []
            for i in range(repeats + 1):
                t = time.perf_counter()
                answer = client.predict(handle_file(str(path)), api_name=api)
                if i:
                    latency.append((time.perf_counter() - t) * 1000)
                    server_ms.append((answer[4] if api == "/analyse" else answer)["timing_ms"]["total"])
            out[api] = {
                "client_ms": round(statistics.median(latency), 1),
                "server_total_ms": round(statistics.median(server_ms), 1),
                "outside_the_models_ms": round(statistics.median(latency) - statistics.median(server_ms), 1),
            }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--data")
    ap.add_argument("--out", default="bench/profile.json")
    args = ap.parse_args(argv)
    threads = max(1, (os.cpu_count() or 1) // settings.current().concurrency)  # as app.py sets it
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "clip.wav"
        sf.write(path, speech_clip(args.seconds, data_dir(args.data)), SAMPLE_RATE)
        result = {
            "clip_s": args.seconds,
            "torch_threads": threads,
            **in_process(path, args.repeats),
            "through_the_app": through_app(path, args.repeats, tmp),
        }
    print(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
