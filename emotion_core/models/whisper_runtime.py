"""The shared frozen Whisper encoder at run time: loaded once per recognizer, checked against the family that
reads it, and run in one of three ways.

- torch, float32: the reference, and the path on CUDA;
- torch with int8 linear layers (EMOTION_FAST, CPU only; off by default, see fast_path);
- ONNX Runtime (CPU, float32; issue 25): switched on by `use_onnx` once the app is ready, exported on first use
  (models.whisper_onnx).

Whichever runs, the family gets the same input: pooled states (B, layers + 1, 1024) of its log-mel windows, to
the depth the family reads (`encoder_layers`), and never further.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .. import settings
from ..paths import whisper_source
from .base import EmotionModel
from .whisper import check_encoder, load_encoder, quantize_encoder

log = logging.getLogger(__name__)


def fast_path(device: str, fast: bool | None = None) -> bool:
    """Whether the Whisper encoder runs with int8 linear layers: `fast` when given, else the EMOTION_FAST setting.
    Quantized kernels are CPU kernels: never on CUDA. Off by default: on validation it costs the Whisper family 0.004
    cbUAR, up to 0.009 over speaker resamples, beyond the 0.005 allowed (bench.whisper_int8, docs/speed.md)."""
    if fast is None:
        fast = settings.current().fast
    return fast and device == "cpu"


class EncoderRuntime:
    """The encoder a family with input_kind "encoder" reads, run to that family's depth.

    `module` is the torch encoder (its weights, also when ONNX Runtime answers); `fast` whether its linear layers
    are int8; `onnx` the ONNX Runtime session once use_onnx() has made one, else None."""

    def __init__(self, family: EmotionModel, device: str, source: str | None = None, fast: bool = False):
        """Load the encoder from `source` (paths.whisper_source) and refuse one the family was not trained on
        (models.whisper.EncoderError). fast: int8 linear layers, as fast_path decided for this device."""
        src = whisper_source(source)
        self.device = device
        self.fast = fast
        self.family = family
        self.module = load_encoder(src, device)
        check_encoder(family.cfg, self.module, src)
        if self.fast:
            self.module = quantize_encoder(self.module)
        self.onnx = None

    def __call__(self, log_mel_windows: torch.Tensor) -> torch.Tensor:
        """(B, 80, frames) log-mel windows -> the family's input, (B, encoder_layers + 1, 1024) pooled states."""
        if self.onnx is not None:
            return self.onnx(log_mel_windows)
        return self.family.encoder_input(self.module, log_mel_windows, one_at_a_time=self.fast)

    def use_onnx(self, directory: Path | None = None) -> bool:
        """Run in ONNX Runtime from now on (CPU, float32 only): exported on first use into `directory`
        (onnx_runtime.default_dir()), one session shared by every request, each with this process's torch thread
        count. Returns whether it is in use; a failure is logged and the torch encoder stays."""
        if self.device != "cpu" or self.fast:
            return False
        try:
            from .whisper_onnx import onnx_encoder

            self.onnx = onnx_encoder(self.module, self.family.encoder_layers, torch.get_num_threads(), directory)
            return True
        except Exception as e:  # noqa: BLE001 (the torch encoder gives the same answers)
            log.warning("the Whisper encoder stays in torch: ONNX Runtime failed: %s", " ".join(str(e).split()))
            return False
