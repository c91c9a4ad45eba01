"""The Whisper encoder in ONNX Runtime, the app's CPU path (issue 25).

The graph is the torch encoder and the pooling the Whisper family reads (`pooled_states`), exported with
torch.onnx once per encoder and depth into a cache directory (models.onnx_runtime), then reused by every later
start. On validation windows it gives the torch path's probabilities to within 1e-5 and changes no answer, in
about a fifth less CPU time per request (`python -m bench.whisper_onnx`, docs/speed.md). Not on CUDA, and not
with the int8 encoder.

Each export also records which encoder the source's files hold (`remember_source`: the sha256 of its config and
weight files -> the encoder's fingerprint), so that a later start of the app can answer from the exported graph
without loading the encoder through transformers at all (`exported_encoder`): only when those very files were
checked, by an earlier start, to hold the encoder the family was trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from .base import weights_fingerprint
from .onnx_runtime import OPSET, OnnxSession, cached_session, default_dir
from .whisper import pooled_states

GRAPH_VERSION = 1  # bump when pooled_states computes something else: older exported files are then not read


class PooledEncoder(nn.Module):
    """Log-mel windows (B, 80, frames) -> pooled states (B, layers + 1, 1024): what the exported graph computes."""

    def __init__(self, encoder: nn.Module, layers: int | None = None):
        super().__init__()
        self.encoder, self.layers = encoder, layers

    def forward(self, log_mel_windows: torch.Tensor) -> torch.Tensor:
        return pooled_states(self.encoder, log_mel_windows, layers=self.layers)


def graph_name(fingerprint: str, layers: int) -> str:
    """The exported graph's file name: the encoder (by weights_fingerprint) run to `layers` layers."""
    return f"whisper-encoder-{fingerprint[:16]}-{layers}layers-v{GRAPH_VERSION}-opset{OPSET}.onnx"


def onnx_encoder(
    encoder: nn.Module, layers: int, threads: int, directory: Path | None = None, fingerprint: str | None = None
) -> OnnxSession:
    """The session for this encoder (by its fingerprint, computed when not given) run to `layers` layers, callable
    like `pooled_states(encoder, ·, layers=layers)`: exported into `directory` (onnx_runtime.default_dir()) on
    first use, read from there afterwards."""
    name = graph_name(fingerprint or weights_fingerprint(encoder), layers)
    pooled, example = PooledEncoder(encoder, layers), torch.randn(2, 80, 300)
    return cached_session(pooled, name, example, {0: "windows", 2: "frames"}, threads, directory)


WEIGHT_SUFFIXES = (".safetensors", ".bin")


def source_sha256(source: str) -> str | None:
    """sha256 of an encoder source's config and weight files (the directory, or a Hub id's snapshot in the local
    Hugging Face cache); None when its files are not on this disk."""
    folder = Path(source)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(source, local_files_only=True))
        except Exception:  # noqa: BLE001 (not in the cache, or not a Hub id: the encoder loads as usual)
            return None
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".json", *WEIGHT_SUFFIXES))
    if not any(p.suffix in WEIGHT_SUFFIXES for p in files):
        return None
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _record(key: str, directory: Path | None) -> Path:
    return Path(directory or default_dir()) / f"whisper-source-{key[:16]}.json"


def remember_source(source: str, fingerprint: str, parameters: int, directory: Path | None = None) -> None:
    """After a checked encoder was exported: record that `source`'s files (by source_sha256) hold the encoder of this
    fingerprint, with its parameter count, beside the exported graphs (written whole or not at all)."""
    key = source_sha256(source)
    if key is None:
        return
    record = _record(key, directory)
    partial = record.with_name(f".{record.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps({"source_sha256": key, "encoder_sha256": fingerprint, "parameters": parameters}))
    partial.replace(record)


def exported_encoder(
    source: str, trained_on: str, layers: int, threads: int, directory: Path | None = None
) -> tuple[OnnxSession, int] | None:
    """The exported graph of `source`'s encoder to `layers` layers, and the encoder's parameter count, without
    loading the encoder: when an earlier start recorded (remember_source) that these very files hold the encoder of
    fingerprint `trained_on` (the family's) and its graph to that depth is there. None otherwise: load it."""
    key = source_sha256(source)
    if key is None or not trained_on:
        return None
    try:
        seen = json.loads(_record(key, directory).read_text())
    except (OSError, ValueError):
        return None
    path = Path(directory or default_dir()) / graph_name(trained_on, layers)
    if seen.get("source_sha256") != key or seen.get("encoder_sha256") != trained_on or not path.is_file():
        return None
    return OnnxSession(path, threads), int(seen["parameters"])
