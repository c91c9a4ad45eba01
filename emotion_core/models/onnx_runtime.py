"""ONNX Runtime, the app's CPU path (issue 25): a torch module exported once with torch.onnx into a cache
directory, written whole or not at all, then run in a session whose threads never busy-wait. The Whisper encoder
(models.whisper_onnx) and every family that declares `exports_to_onnx` (the 2D family: EfficientAT mn04) run so
once the app is ready; their answers match torch's to within 1e-4 (tests/test_whisper_onnx.py,
tests/test_family_onnx.py). Not on CUDA.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import weights_fingerprint

OPSET = 17
RUN_WINDOWS = 4  # windows per session run at most: a session keeps the buffers of its largest run (its arena), which
# grows with the run's windows, and on a CPU a window costs no less in larger runs (bench.speed, cross_request_batch;
# bench.memory: docs/speed.md)


def default_dir() -> Path:
    """Where exported graphs are kept: $XDG_CACHE_HOME (or ~/.cache) / emotion-recognition."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emotion-recognition"


def export(module: nn.Module, example: torch.Tensor, path: Path, dynamic: dict[int, str]) -> Path:
    """`module` (one tensor in, one out) as ONNX at `path`, written whole or not at all. example: an input;
    dynamic: {input axis: name} of the axes that vary (the output's first axis follows the input's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with warnings.catch_warnings():  # the tracer's notes on the Python conditions it freezes (none vary here)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (example,),
            str(partial),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": dynamic, "output": {0: dynamic.get(0, "batch")}},
            opset_version=OPSET,
            dynamo=False,
        )
    partial.replace(path)
    return path


class OnnxSession:
    """Callable like the module it was exported from, on one tensor: (B, ...) -> (B, ...), in an ONNX Runtime
    session with `threads` threads, RUN_WINDOWS of the B at a time (safe to call from several requests at once)."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        # no busy-waiting between runs: spinning threads took the cores from torch's families (cnn2d ran six times
        # slower beside a two-thread session, bench.speed) and from the other requests on a two-core Space
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        runs = [self.session.run(None, {self.input: x[i : i + RUN_WINDOWS]})[0] for i in range(0, len(x), RUN_WINDOWS)]
        return torch.from_numpy(np.concatenate(runs) if len(runs) > 1 else runs[0])


def cached_session(
    module: nn.Module, name: str, example: torch.Tensor, dynamic: dict[int, str], threads: int, directory=None
) -> OnnxSession:
    """The session of `module` exported as `name` (a file name that changes whenever the graph would) into
    `directory` (default_dir()) on first use, read from there afterwards."""
    path = Path(directory or default_dir()) / name
    if not path.is_file():
        export(module, example, path, dynamic)
    return OnnxSession(path, threads)


def family_session(model: nn.Module, threads: int, directory=None) -> OnnxSession:
    """A family's whole forward pass, (B, n_mels, frames) log-mel windows -> (B, n_classes) logits, in ONNX
    Runtime: exported on first use, named by its architecture and weights."""
    name = f"{model.architecture}-{weights_fingerprint(model)[:16]}-opset{OPSET}.onnx"
    example = torch.zeros(2, model.cfg.n_mels, 300)
    return cached_session(model, name, example, {0: "windows", 2: "frames"}, threads, directory)
