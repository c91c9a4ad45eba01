"""ONNX Runtime for the Whisper encoder (issue 25): the same answers in less CPU time? A measurement for
docs/speed.md, never a test; the test speakers are not read.

    python -m bench.whisper_onnx [--windows 100] [--cache DIR] [--whisper DIR] [--out bench/whisper_onnx.json]

The encoder and the pooling the Whisper family reads (every state's mean and standard deviation over time) are
exported as the app exports them (emotion_core.models.whisper_onnx) and run in ONNX Runtime with one thread, as the
app gives each request. Reported:
- accuracy: on `--windows` validation windows of each condition (clean and every simulated copy, spread over the
  clips), the largest difference of the pooled states and of the shipped Whisper family's probabilities, and how
  many answers change;
- cost: CPU seconds (the process's own accounting) of one 5 s request's two 3 s windows, torch and ONNX Runtime
  alternated, medians over `--runs` pairs and the median of the pairwise ratios.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from emotion_core.models.base import load_checkpoint
from emotion_core.models.whisper import load_encoder, pooled_states
from emotion_core.models.whisper_onnx import onnx_encoder
from emotion_core.paths import checkpoint_dir, whisper_source
from train.cache import cache_dir
from train.validation import validation_sets


def cpu_ms(fn) -> float:
    t = time.process_time()
    fn()
    return 1000 * (time.process_time() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=100, help="validation windows per condition")
    ap.add_argument("--runs", type=int, default=30, help="timed request pairs")
    ap.add_argument("--cache", help="feature cache with the validation copies (default $EMOTION_CACHE_DIR)")
    ap.add_argument("--whisper", help="Whisper encoder (default $EMOTION_WHISPER)")
    ap.add_argument("--out", default="bench/whisper_onnx.json")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    torch.set_num_threads(1)
    encoder = load_encoder(whisper_source(args.whisper))
    family, _ = load_checkpoint(checkpoint_dir() / "whisper.pt")
    family.eval()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        # the app's export and session (emotion_core.models.whisper_onnx), the family's depth
        onnx_pooled = onnx_encoder(encoder, family.encoder_layers, threads=1, directory=tmp)
        export_s = time.perf_counter() - t

    accuracy = {}
    with torch.inference_mode():
        for condition, v in validation_sets(cache_dir(args.cache)).items():
            pick = np.linspace(0, len(v.windows) - 1, min(args.windows, len(v.windows))).astype(int)
            state_diff, prob_diff, changed = 0.0, 0.0, 0
            for s in range(0, len(pick), 8):
                w = v.windows[pick[s : s + 8]]
                a, b = pooled_states(encoder, w), onnx_pooled(w)
                pa, pb = torch.softmax(family(a), -1), torch.softmax(family(b), -1)
                state_diff = max(state_diff, float((a - b).abs().max()))
                prob_diff = max(prob_diff, float((pa - pb).abs().max()))
                changed += int((pa.argmax(1) != pb.argmax(1)).sum())
            accuracy[condition] = {
                "windows": len(pick),
                "max_pooled_state_difference": round(state_diff, 6),
                "max_probability_difference": round(prob_diff, 6),
                "answers_changed": changed,
            }
            print(condition, accuracy[condition], flush=True)
        request = validation_sets(cache_dir(args.cache), conditions=[])["clean"].windows[:2]
        torch_ms, onnx_ms = [], []
        for _ in range(3):  # warm-up
            pooled_states(encoder, request), onnx_pooled(request)
        for _ in range(args.runs):
            torch_ms.append(cpu_ms(lambda: pooled_states(encoder, request)))
            onnx_ms.append(cpu_ms(lambda: onnx_pooled(request)))
    result = {
        "export_seconds": round(export_s, 1),
        "accuracy": accuracy,
        "request": "two 3 s windows (a 5 s clip), one thread",
        "cpu_ms_median": {
            "torch": round(float(np.median(torch_ms)), 1),
            "onnxruntime": round(float(np.median(onnx_ms)), 1),
        },
        "onnx_over_torch_median_ratio": round(float(np.median(np.array(onnx_ms) / np.array(torch_ms))), 3),
        "runs": args.runs,
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
    }
    print(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
