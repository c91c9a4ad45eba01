"""The interface every family shares, and checkpoint save/load.

A checkpoint (`checkpoints/<family>.pt`) holds the weights and everything that made them: its format version,
the architecture's registered name (models.registry), the family slot it fills, the architecture config, the
FeatureConfig, the labels in order and the training record. It loads strictly: an unknown architecture, a
config key the architecture lacks or lacks a value for, or a weight that does not fit is an error; files of an
older format go through the explicit migrations in models.registry.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, fields
from pathlib import Path

import torch
from torch import nn

from ..audio import SAMPLE_RATE
from ..features import FeatureConfig


class EmotionModel(nn.Module):
    """The family interface: what every architecture in models.registry declares and implements.

    Class attributes:
      family        the app's slot it fills: "cnn1d", "lstm", "cnn2d" or "whisper" (registry.FAMILIES)
      architecture  its registered name, stored in the checkpoint (distinct architectures, distinct names)
      config_class  the dataclass of its architecture, stored in the checkpoint as "config"
      input_kind    what the recognizer derives from the shared log-mel windows for it: "mel" (B, n_mels, frames),
                    "frames" (B, n_frame_features, frames: features.frame_features) or "encoder" (the shared
                    Whisper encoder's output, made by `encoder_input`)
      exports_to_onnx  True when its whole forward pass exports with torch.onnx (models.onnx_runtime): on a CPU the
                    recognizer then runs it in ONNX Runtime once the app is ready (Recognizer.use_onnx); its input
                    is then (B, cfg.n_mels, frames) log-mel windows
    Methods:
      __init__(cfg, n_classes, pretrained=...)  pretrained=True starts from field weights (training);
                    loading a checkpoint builds it with pretrained=False and loads every weight strictly
      embed(x) -> (B, D)           the pooled representation the classifier reads (hint targets, explanations)
      forward(x) -> (B, n_classes)  logits over the checkpoint's labels
    Only for input_kind "encoder":
      encoder_layers                the encoder layers its input needs (the encoder stops there)
      encoder_input(encoder, log_mel_windows, one_at_a_time) -> its input from the torch encoder
    """

    family: str = ""
    architecture: str = ""
    config_class: type = type(None)
    input_kind: str = "mel"
    exports_to_onnx: bool = False

    @property
    def needs_encoder(self) -> bool:
        """True when the recognizer must load the shared Whisper encoder to make this family's input."""
        return self.input_kind == "encoder"


def split_valid(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame features with their validity channel last -> (features (B, C, T), mask (B, 1, T))."""
    return x[:, :-1], x[:, -1:]


def masked_stats_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C, T), mask (B, 1, T) -> (B, 2C): mean and standard deviation over the valid frames."""
    n = mask.sum(-1).clamp(min=1)
    mean = (x * mask).sum(-1) / n
    var = (((x - mean[..., None]) ** 2) * mask).sum(-1) / n
    return torch.cat([mean, (var + 1e-6).sqrt()], dim=1)


def cepstral_mean_norm(x: torch.Tensor, mask: torch.Tensor, n_static: int) -> torch.Tensor:
    """Subtract the mean over the valid frames from the static cepstra and energy (the first n_static
    channels): removes a fixed microphone/channel colouring. Padding stays zero. (B, C, T) -> (B, C, T)."""
    n = mask.sum(-1, keepdim=True).clamp(min=1)
    static = x[:, :n_static]
    static = (static - (static * mask).sum(-1, keepdim=True) / n) * mask
    return torch.cat([static, x[:, n_static:]], dim=1)


def downsample_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    """(B, 1, T) -> (B, 1, length): a step is valid if any frame under it is."""
    return torch.nn.functional.adaptive_max_pool1d(mask, length)


def weights_fingerprint(module: nn.Module) -> str:
    """sha256 of a module's parameters and buffers, floating ones rounded to float16 (a float32 copy and a float16
    conversion of the same weights agree): the identity of a frozen encoder (WhisperHeadConfig.encoder_sha256) and
    the name of an exported graph (models.onnx_runtime), so that other weights get another file."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float16 if t.is_floating_point() else t.dtype).numpy().tobytes())
    return h.hexdigest()


FORMAT_VERSION = 2  # of the checkpoint dictionary; models.registry.MIGRATIONS bring older files here


def save_checkpoint(path: str | Path, model: EmotionModel, features: FeatureConfig, labels, record: dict) -> None:
    torch.save(
        {
            "format_version": FORMAT_VERSION,
            "architecture": model.architecture,
            "family": model.family,
            "config": asdict(model.cfg),
            "features": features.to_dict(),
            "labels": list(labels),
            "record": record,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        path,
    )


def strict_config(cls, stored: dict, path) -> object:
    """The architecture's config dataclass from a checkpoint's "config": every field given, nothing else."""
    names = {f.name for f in fields(cls)}
    unknown, missing = sorted(set(stored) - names), sorted(names - set(stored))
    if unknown or missing:
        raise ValueError(
            f"{path}: its {cls.__name__} "
            + "; ".join(
                part
                for part in (
                    f"has unknown keys {unknown}" if unknown else "",
                    f"lacks keys {missing}" if missing else "",
                )
                if part
            )
        )
    return cls(**stored)


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[EmotionModel, dict]:
    """Model in eval mode on `device`, and the checkpoint's metadata (everything but the weights), loaded
    strictly (see the module docstring). A checkpoint made for another sample rate than audio.SAMPLE_RATE is
    refused (ValueError)."""
    from .registry import architecture_class, migrate

    ck = migrate(torch.load(path, map_location="cpu", weights_only=True), path)
    rate = ck["features"].get("sample_rate")
    if rate != SAMPLE_RATE:
        raise ValueError(
            f"{path}: this checkpoint was trained on {rate} Hz audio, but this code prepares all audio "
            f"at {SAMPLE_RATE} Hz (emotion_core.audio.SAMPLE_RATE); retrain it or use a matching version"
        )
    cls = architecture_class(ck["architecture"])
    cfg = strict_config(cls.config_class, ck["config"], path)
    model = cls(cfg, n_classes=len(ck["labels"]), pretrained=False)
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}, strict=True
    )
    meta = {k: v for k, v in ck.items() if k != "state_dict"}
    meta["features"] = FeatureConfig(**ck["features"])
    return model.to(device).eval(), meta
