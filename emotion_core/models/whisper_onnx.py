"""The Whisper encoder in ONNX Runtime, the app's CPU path (issue 25).

The graph is the torch encoder and the pooling the Whisper family reads (`pooled_states`), exported with
torch.onnx once per encoder and depth into a cache directory (models.onnx_runtime), then reused by every later
start. On validation windows it gives the torch path's probabilities to within 1e-5 and changes no answer, in
about a fifth less CPU time per request (`python -m bench.whisper_onnx`, docs/speed.md). Not on CUDA, and not
with the int8 encoder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .onnx_runtime import OPSET, OnnxSession, cached_session
from .whisper import encoder_fingerprint, pooled_states

GRAPH_VERSION = 1  # bump when pooled_states computes something else: older exported files are then not read


class PooledEncoder(nn.Module):
    """Log-mel windows (B, 80, frames) -> pooled states (B, layers + 1, 1024): what the exported graph computes."""

    def __init__(self, encoder: nn.Module, layers: int | None = None):
        super().__init__()
        self.encoder, self.layers = encoder, layers

    def forward(self, log_mel_windows: torch.Tensor) -> torch.Tensor:
        return pooled_states(self.encoder, log_mel_windows, layers=self.layers)


def onnx_encoder(encoder: nn.Module, layers: int, threads: int, directory: Path | None = None) -> OnnxSession:
    """The session for this encoder (by its fingerprint) run to `layers` layers, callable like
    `pooled_states(encoder, ·, layers=layers)`: exported into `directory` (onnx_runtime.default_dir()) on first
    use, read from there afterwards."""
    name = f"whisper-encoder-{encoder_fingerprint(encoder)[:16]}-{layers}layers-v{GRAPH_VERSION}-opset{OPSET}.onnx"
    pooled, example = PooledEncoder(encoder, layers), torch.randn(2, 80, 300)
    return cached_session(pooled, name, example, {0: "windows", 2: "frames"}, threads, directory)
