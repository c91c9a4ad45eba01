"""The shared frozen Whisper encoder at run time: loaded once per recognizer, checked against the family that
reads it, and run in one of three ways.

- torch, float32: the reference, and the path on CUDA;
- torch with int8 linear layers (EMOTION_FAST, CPU only; off by default, see fast_path);
- ONNX Runtime (CPU, float32; issue 25): switched on by `use_onnx` once the app is ready, exported on first use
  (models.whisper_onnx); a later start of the app answers from that graph at once, without loading the encoder
  (`onnx_at_start`), when the export recorded the source's files as the family's encoder.

Whichever runs, the family gets the same input: pooled states (B, layers + 1, 1024) of its log-mel windows, to
the depth the family reads (`encoder_layers`), and never further.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch
from torch import nn

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

    `module` is the torch encoder (its weights, also when ONNX Runtime answers; loaded on first use when the app
    started on its exported graph); `fast` whether its linear layers are int8; `onnx` the ONNX Runtime session once
    use_onnx() has made one (or the start found one), else None; `parameter_count` the encoder's parameters."""

    def __init__(
        self,
        family: EmotionModel,
        device: str,
        source: str | None = None,
        fast: bool = False,
        onnx_at_start: bool = False,
    ):
        """Load the encoder from `source` (paths.whisper_source) and refuse one the family was not trained on
        (models.whisper.EncoderError). fast: int8 linear layers, as fast_path decided for this device.
        onnx_at_start (CPU, float32): answer from the graph an earlier start exported, without loading the encoder,
        when that start recorded these very files as the family's encoder (whisper_onnx.exported_encoder)."""
        self.source = whisper_source(source)
        self.device = device
        self.fast = fast
        self.family = family
        self.onnx = None
        self._module: nn.Module | None = None
        self._loading = threading.Lock()
        if onnx_at_start and device == "cpu" and not fast:
            from .whisper_onnx import exported_encoder

            found = exported_encoder(
                self.source, getattr(family.cfg, "encoder_sha256", ""), family.encoder_layers, torch.get_num_threads()
            )
            if found is not None:
                self.onnx, self.parameter_count = found
                log.info("the Whisper encoder answers from its exported graph (%s)", found[0].path.name)
                return
        self._load()

    def _load(self) -> nn.Module:
        module = load_encoder(self.source, self.device)
        check_encoder(self.family.cfg, module, self.source)
        self.parameter_count = sum(p.numel() for p in module.parameters())
        self._module = quantize_encoder(module) if self.fast else module
        return self._module

    @property
    def module(self) -> nn.Module:
        """The torch encoder, loaded and checked on first use when the start answered from the exported graph."""
        with self._loading:
            return self._module if self._module is not None else self._load()

    def __call__(self, log_mel_windows: torch.Tensor) -> torch.Tensor:
        """(B, 80, frames) log-mel windows -> the family's input, (B, encoder_layers + 1, 1024) pooled states."""
        if self.onnx is not None:
            return self.onnx(log_mel_windows)
        return self.family.encoder_input(self.module, log_mel_windows, one_at_a_time=self.fast)

    def use_onnx(self, directory: Path | None = None) -> bool:
        """Run in ONNX Runtime from now on (CPU, float32 only): exported on first use into `directory`
        (onnx_runtime.default_dir()), one session shared by every request, each with this process's torch thread
        count; the source's files are recorded as holding this encoder (whisper_onnx.remember_source). Returns
        whether it is in use; a failure is logged and the torch encoder stays."""
        if self.device != "cpu" or self.fast:
            return False
        if self.onnx is not None:
            return True
        try:
            from .base import weights_fingerprint
            from .whisper_onnx import onnx_encoder, remember_source

            fingerprint = weights_fingerprint(self.module)
            threads = torch.get_num_threads()
            self.onnx = onnx_encoder(self.module, self.family.encoder_layers, threads, directory, fingerprint)
            remember_source(self.source, fingerprint, self.parameter_count, directory)
            return True
        except Exception as e:  # noqa: BLE001 (the torch encoder gives the same answers)
            log.warning("the Whisper encoder stays in torch: ONNX Runtime failed: %s", " ".join(str(e).split()))
            return False
