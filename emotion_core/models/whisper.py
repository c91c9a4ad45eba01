"""The Whisper family: a frozen Whisper-base encoder and a small trained head.

Input choice: the encoder reads only the window's own 300 frames (3 s) with its position table cut to
match, not the 3000-frame (30 s) padded input Whisper was trained with. On 2 CPU threads that is
about 0.05 s per window instead of 0.85 s per clip; training and inference both do it this way.

Head: a softmax-weighted sum over the encoder's 7 hidden states (embeddings + 6 layers) of each layer's
statistics pooled over time (mean and standard deviation), then a two-layer classifier. The family is a
bag of `members` such heads trained from different seeds; its probabilities are the members' mean.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

from ..features import whisper_input
from .base import EmotionModel, weights_fingerprint


class EncoderError(RuntimeError):
    """The Whisper encoder could not be found, loaded, or does not match the checkpoint."""


HUB_CHECK_TIMEOUT_S = 2.0  # s: how long a start waits to learn whether the Hugging Face Hub answers


def hub_reachable(timeout_s: float = HUB_CHECK_TIMEOUT_S) -> bool:
    """False in offline mode (HF_HUB_OFFLINE) or when the Hub's host does not accept a connection in time:
    one quick check instead of the Hub client's retries (about 29 s with no network)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}:
        return False
    url = urlparse(constants.ENDPOINT)
    answered = []

    def probe():  # in a thread: a name lookup that hangs is not bounded by the socket's timeout
        try:
            socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s).close()
            answered.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(answered)


def _from_pretrained(source: str, **kw):
    from transformers import WhisperForAudioClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the classifier/projector "missing" report is expected: we drop them
    try:
        return WhisperForAudioClassification.from_pretrained(source, dtype=torch.float32, **kw)
    finally:
        hf_logging.set_verbosity(verbosity)


def load_encoder(source: str, device: str = "cpu") -> nn.Module:
    """Whisper encoder in float32 from a local directory or a Hub id (e.g. openai/whisper-base).

    A Hub id is looked up in the local Hugging Face cache first; only if it is not there is the Hub asked,
    and only after a quick check that it can be reached (so an offline start fails at once, in one line)."""
    local = Path(source).is_dir()
    if not local and (os.path.isabs(source) or source.startswith((".", "~"))):
        raise EncoderError(f"Whisper encoder '{source}' could not be loaded: no such directory")
    try:
        try:
            model = _from_pretrained(source, local_files_only=not local)
        except OSError:
            if local:
                raise
            if not hub_reachable():
                raise EncoderError(
                    f"Whisper encoder '{source}' is not in the local Hugging Face cache and the "
                    "Hub cannot be reached (offline)"
                ) from None
            model = _from_pretrained(source)  # the real download (a Space's first start)
    except EncoderError:
        raise
    except Exception as e:
        detail = " ".join(str(e).split())
        raise EncoderError(f"Whisper encoder '{source}' could not be loaded: {type(e).__name__}: {detail}") from e
    enc = model.encoder.to(device).eval()
    enc.requires_grad_(False)
    return enc


# Feed-forward layers that stay float32: their activations carry outliers that 8 bits cannot hold. Layer 3's
# alone gave more than half of the int8 encoder's error on validation windows; layers 0 and 1 add the most of the
# rest (validation of the fast path: bench/val_int8.json against bench/val_fp32.json, and the README).
FLOAT32_LINEARS = tuple(f"layers.{i}.{fc}" for i in (0, 1, 3) for fc in ("fc1", "fc2"))


def quantize_encoder(encoder: nn.Module) -> nn.Module:
    """The CPU fast path, in place: the encoder's linear layers (attention projections and feed-forward) with
    int8 weights (one scale per output channel) and dynamically quantized activations, except FLOAT32_LINEARS;
    convolutions, positions and norms stay float32. Speed and validation accuracy of both paths: README."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig

    spec = {
        n: per_channel_dynamic_qconfig
        for n, m in encoder.named_modules()
        if isinstance(m, nn.Linear) and n not in FLOAT32_LINEARS
    }
    with warnings.catch_warnings():  # torch.ao's eager quantization is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(encoder, spec, dtype=torch.qint8, inplace=True)


def encoder_probe(encoder: nn.Module) -> list[float]:
    """The encoder's pooled output on a fixed input: a behavioural identity that survives dtype rounding."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 80, 200, generator=g) * 2 - 1
    with torch.inference_mode():
        hs = hidden_states(encoder, x.to(next(encoder.parameters()).device))
    return hs[-1].mean(dim=(1, 2)).cpu().tolist() + hs[-1][0, :, :8].mean(0).cpu().tolist()


def run_layer(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """One Whisper encoder layer, no mask: (B, T, 512) -> (B, T, 512) (older transformers return a tuple)."""
    h = layer(h, None)
    return h[0] if isinstance(h, tuple) else h


def hidden_states(encoder: nn.Module, x: torch.Tensor, layers: int | None = None) -> torch.Tensor:
    """Whisper-scaled mel (B, 80, frames) -> (layers + 1, B, frames // 2, 512): embeddings and the output of each
    of the first `layers` encoder layers (None: all six, the last after the final layer norm; fewer: no final
    norm, so they equal the first states of a full run), with the position table cut to the input's length."""
    h = nn.functional.gelu(encoder.conv1(x))
    h = nn.functional.gelu(encoder.conv2(h)).transpose(1, 2)
    if h.shape[1] > encoder.embed_positions.weight.shape[0]:
        raise ValueError("input longer than Whisper's 30 s")
    h = h + encoder.embed_positions.weight[: h.shape[1]]
    states = [h]
    run = encoder.layers if layers is None else encoder.layers[:layers]
    for layer in run:
        h = run_layer(layer, h)
        states.append(h)
    if len(run) == len(encoder.layers):
        states[-1] = encoder.layer_norm(h)
    return torch.stack(states)


def time_stats(states: torch.Tensor) -> torch.Tensor:
    """(L, B, T, 512) hidden states -> (B, L, 1024): each state's mean and standard deviation over time."""
    return torch.cat([states.mean(dim=2), states.std(dim=2)], dim=-1).transpose(0, 1)


def pooled_states(
    encoder: nn.Module, log_mel_windows: torch.Tensor, one_at_a_time: bool = False, layers: int | None = None
) -> torch.Tensor:
    """Log-mel windows (B, 80, frames) -> per-state statistics (B, layers + 1, 1024): mean and std over time
    (layers: encoder layers run, see hidden_states; None: all six, so (B, 7, 1024)).
    one_at_a_time: each window through the encoder on its own. The int8 encoder needs it: its activations are
    scaled by the range of the whole batch, so a window's answer would depend on the windows beside it."""
    if one_at_a_time and len(log_mel_windows) > 1:
        return torch.cat([pooled_states(encoder, w[None], layers=layers) for w in log_mel_windows])
    return time_stats(hidden_states(encoder, whisper_input(log_mel_windows), layers))


@dataclass
class WhisperHeadConfig:
    # hidden states the head reads: the embeddings and the first n_states - 1 encoder layers (7: all six). The
    # encoder runs only those layers, so each one fewer saves about a sixth of its time.
    n_states: int = 7
    d_model: int = 512
    hidden: int = 256
    dropout: float = 0.3
    members: int = 1  # heads in the bag, each trained from its own seed
    encoder_name: str = "openai/whisper-base"
    encoder_sha256: str = ""  # weights_fingerprint of the encoder the head was trained on
    encoder_probe: list = ()  # encoder_probe of that encoder


class WhisperHead(nn.Module):
    """One member: (B, n_states, 1024) pooled state statistics -> (B, n_classes) logits."""

    def __init__(self, cfg: WhisperHeadConfig, n_classes: int):
        super().__init__()
        self.layer_weights = nn.Parameter(torch.zeros(cfg.n_states))
        self.norm = nn.LayerNorm(2 * cfg.d_model)
        self.classifier = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(2 * cfg.d_model, cfg.hidden),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, n_classes),
        )

    def embed(self, stats: torch.Tensor) -> torch.Tensor:
        """(B, L >= n_states, 1024) -> (B, 1024): the softmax-weighted mixture of the normalised statistics of
        the first n_states states (so a cache of all seven serves a head of any depth)."""
        w = torch.softmax(self.layer_weights, dim=0)
        return torch.einsum("l,bld->bd", w, self.norm(stats[:, : len(w)]))

    def hidden(self, stats: torch.Tensor) -> torch.Tensor:
        """(B, 7, 1024) -> (B, hidden): the classifier's hidden activations (after its first layer and GELU)."""
        return self.classifier[:3](self.embed(stats))

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(stats))


class WhisperFamily(EmotionModel):
    """The trained part: its input (pooled layer statistics (B, 7, 1024)) -> (B, n_classes) logits whose
    softmax is the mean of the members' probabilities. The frozen encoder that makes its input is loaded
    separately (load_encoder), checked against cfg (check_encoder) and run by encoder_input or, in the app,
    by whisper_runtime.EncoderRuntime."""

    family = "whisper"
    architecture = "whisper-base-heads"
    input_kind = "encoder"
    config_class = WhisperHeadConfig

    def __init__(self, cfg: WhisperHeadConfig, n_classes: int, pretrained: bool = True):
        super().__init__()
        self.cfg = cfg
        self.heads = nn.ModuleList(WhisperHead(cfg, n_classes) for _ in range(cfg.members))

    @property
    def encoder_layers(self) -> int:
        """Encoder layers its heads read (the rest never run): n_states counts the embeddings as well."""
        return self.cfg.n_states - 1

    def encoder_input(self, encoder: nn.Module, log_mel_windows: torch.Tensor, one_at_a_time: bool = False):
        """Log-mel windows (B, 80, frames) -> this family's input, from the frozen encoder (only the layers its
        heads read)."""
        return pooled_states(encoder, log_mel_windows, one_at_a_time, layers=self.encoder_layers)

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        if len(self.heads) == 1:
            return self.heads[0](stats)
        probs = torch.stack([torch.softmax(h(stats), dim=-1) for h in self.heads]).mean(0)
        return probs.clamp_min(1e-12).log()


def check_encoder(cfg: WhisperHeadConfig, encoder: nn.Module, source: str) -> None:
    """Refuse an encoder that is not the one the head was trained on."""
    if weights_fingerprint(encoder) == cfg.encoder_sha256:
        return
    probe = np.array(encoder_probe(encoder))
    if cfg.encoder_probe and np.allclose(probe, np.array(cfg.encoder_probe), atol=2e-2):
        return  # same weights stored at another precision
    raise EncoderError(
        f"The Whisper encoder at '{source}' is not the one this model was trained on ({cfg.encoder_name}); "
        "its weights differ. Point EMOTION_WHISPER at the matching encoder."
    )
