"""Speed and memory of the model core on this machine. Figures for the README; never a test.

    python -m bench.speed [--checkpoints DIR] [--data DIR] [--repeats 20] [--out bench/speed.json]

- predict_all latency (features included) on 1 s, 5 s and 30 s clips, after warm-up: median and p90,
  for the three acoustic families together and for every family with the ensemble;
- clips per second for batch evaluation (train.evaluate's path) on real corpus clips;
- the models' time for 8 requests of 5 s, one after another against all their windows in one batch;
- peak resident memory of the process;
- time per training epoch of each family, as recorded in its checkpoint by train.fit.
Clips are real speech from the corpus (concatenated to the length needed) when it is present, else a
synthetic harmonic signal.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from emotion_core import settings
from emotion_core.audio import SAMPLE_RATE, load_audio
from emotion_core.paths import data_dir
from emotion_core.recognizer import Recognizer

ACOUSTIC = ("cnn1d", "lstm", "cnn2d")
CROSS_REQUEST_BATCH = 8  # requests of 5 s whose windows go through the models together


def speech_of_length(seconds: float, clips) -> np.ndarray:
    if clips:
        parts, n = [], 0
        for c in clips:
            a = load_audio(c.path)
            parts.append(a)
            n += len(a)
            if n >= seconds * SAMPLE_RATE:
                break
        return np.concatenate(parts)[: int(seconds * SAMPLE_RATE)]
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (
        0.1 * sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 10)) * (np.sin(2 * np.pi * 2 * t) > 0)
    ).astype(np.float32)


def time_it(fn, repeats: int) -> dict:
    fn()
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "p90_ms": round(float(np.percentile(times, 90)), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints")
    ap.add_argument("--data")
    ap.add_argument("--whisper")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--batch-clips", type=int, default=200)
    ap.add_argument("--out", default="bench/speed.json")
    args = ap.parse_args(argv)

    rec = Recognizer(args.checkpoints, None, args.whisper)
    onnx = settings.current().onnx and rec.use_onnx()  # as the app runs the Whisper encoder once warmed up
    clips = []
    root = data_dir(args.data)
    if root.is_dir():
        from corpus import select_clips

        clips = select_clips(root, "test")
    result = {
        "machine": {
            "cpu_threads": torch.get_num_threads(),
            "device": rec.device,
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "families": list(rec.models),
        "whisper_int8": rec.fast,
        "whisper_onnx": onnx,
        "latency": {},
    }
    every = dict(rec.models)
    acoustic = {k: v for k, v in every.items() if k in ACOUSTIC}
    for seconds in (1, 5, 30):
        audio = speech_of_length(seconds, clips)
        row = {}
        for name, subset in (("acoustic (cnn1d+lstm+cnn2d)", acoustic), ("all families + ensemble", every)):
            rec.models = subset
            row[name] = time_it(
                lambda audio=audio: rec.predict_all(audio), args.repeats if seconds < 30 else max(5, args.repeats // 4)
            )
        rec.models = every
        per = rec.predict_all(audio)
        row["per_family_ms"] = {k: round(v.latency_ms, 1) for k, v in per.models.items() if k in every}
        result["latency"][f"{seconds}s"] = row
        print(f"{seconds:>3d} s clip:", json.dumps(row))
    if clips:
        from train.evaluate import run

        subset = clips[:: max(1, len(clips) // args.batch_clips)][: args.batch_clips]
        t = time.perf_counter()
        run(rec, subset)
        dt = time.perf_counter() - t
        result["batch_evaluation"] = {
            "clips": len(subset),
            "seconds": round(dt, 1),
            "clips_per_s": round(len(subset) / dt, 1),
        }
        print("batch evaluation:", result["batch_evaluation"])
        # Batching across requests (Gradio's batch=True) would give one forward pass per family for several
        # requests' windows: what that saves is the difference between these two.
        prepared = [rec.model_windows(speech_of_length(5, clips[k * 7 :])).windows for k in range(CROSS_REQUEST_BATCH)]
        together = torch.cat(prepared)
        result["cross_request_batch"] = {
            "requests": CROSS_REQUEST_BATCH,
            "windows": len(together),
            "one_after_another": time_it(
                lambda: [rec.window_probabilities(w) for w in prepared], max(3, args.repeats // 4)
            ),
            "one_batch": time_it(lambda: rec.window_probabilities(together), max(3, args.repeats // 4)),
        }
        print("cross-request batch:", result["cross_request_batch"])
    if rec.encoder is not None:
        from emotion_core.models.whisper import hidden_states, load_encoder, quantize_encoder
        from emotion_core.paths import whisper_source

        exact = load_encoder(whisper_source(args.whisper), rec.device)
        encoders = {"float32": exact} | (
            {"int8 (the CPU fast path)": quantize_encoder(load_encoder(whisper_source(args.whisper)))}
            if rec.device == "cpu"
            else {}
        )
        with torch.inference_mode():
            for name, encoder in encoders.items():
                for frames in (300, 3000):  # one 3 s window as shipped, vs Whisper's own 30 s padding
                    x = torch.randn(1, 80, frames, device=rec.device)
                    result.setdefault("whisper_encoder_ms", {}).setdefault(name, {})[f"{frames}_frames"] = time_it(
                        lambda encoder=encoder, x=x: hidden_states(encoder, x), max(3, args.repeats // 4)
                    )
        print("whisper encoder:", result["whisper_encoder_ms"])
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    result["train_epoch_s"] = {k: round(m["record"].get("epoch_s", float("nan")), 1) for k, m in rec.meta.items()}
    result["train_steps_per_epoch"] = {k: m["record"]["hyperparameters"]["steps"] for k, m in rec.meta.items()}
    print("peak RSS MB:", result["peak_rss_mb"], " epoch seconds:", result["train_epoch_s"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
