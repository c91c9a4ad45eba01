"""The Whisper encoder in ONNX Runtime, the app's CPU path (issue 25).

The graph is the torch encoder and the pooling the Whisper family reads (`pooled_states`), exported with
torch.onnx once per encoder and depth into a cache directory, then reused by every later start. On validation
windows it gives the torch path's probabilities to within 1e-5 and changes no answer, in about a fifth less CPU
time per request (`python -m bench.whisper_onnx`, docs/speed.md). Not on CUDA, and not with the int8 encoder.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .whisper import encoder_fingerprint, pooled_states

OPSET = 17
GRAPH_VERSION = 1  # bump when pooled_states computes something else: older exported files are then not read


def default_dir() -> Path:
    """Where exported encoders are kept: $XDG_CACHE_HOME (or ~/.cache) / emotion-recognition."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emotion-recognition"


class PooledEncoder(nn.Module):
    """Log-mel windows (B, 80, frames) -> pooled states (B, layers + 1, 1024): what the exported graph computes."""

    def __init__(self, encoder: nn.Module, layers: int | None = None):
        super().__init__()
        self.encoder, self.layers = encoder, layers

    def forward(self, log_mel_windows: torch.Tensor) -> torch.Tensor:
        return pooled_states(self.encoder, log_mel_windows, layers=self.layers)


def export(encoder: nn.Module, path: Path, layers: int | None = None) -> Path:
    """The pooled encoder as ONNX at `path` (windows and frames dynamic), written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with warnings.catch_warnings():  # the tracer's notes on the Python conditions it freezes (none vary here)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            PooledEncoder(encoder, layers).eval(),
            (torch.randn(2, 80, 300),),
            str(partial),
            input_names=["log_mel"],
            output_names=["pooled"],
            dynamic_axes={"log_mel": {0: "windows", 2: "frames"}, "pooled": {0: "windows"}},
            opset_version=OPSET,
            dynamo=False,
        )
    partial.replace(path)
    return path


class OnnxEncoder:
    """Callable like `pooled_states(encoder, ·, layers=layers)`: log-mel windows (B, 80, frames) -> (B, L, 1024),
    in an ONNX Runtime session with `threads` threads (safe to call from several requests at once)."""

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

    def __call__(self, log_mel_windows: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(log_mel_windows.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {"log_mel": x})[0])


def onnx_encoder(encoder: nn.Module, layers: int, threads: int, directory: Path | None = None) -> OnnxEncoder:
    """The session for this encoder (by its fingerprint) run to `layers` layers: exported into `directory`
    (default_dir()) on first use, read from there afterwards."""
    name = f"whisper-encoder-{encoder_fingerprint(encoder)[:16]}-{layers}layers-v{GRAPH_VERSION}-opset{OPSET}.onnx"
    path = (directory or default_dir()) / name
    if not path.is_file():
        export(encoder, path, layers)
    return OnnxEncoder(path, threads)
