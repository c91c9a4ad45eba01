"""The interface every family shares, and checkpoint save/load.

A family is an nn.Module with `family` (its name), `input_kind` (which input the core derives from the
log-mel windows for it: "mel", "frames" or "whisper") and a dataclass `cfg`; `forward(x)` gives logits over
the checkpoint's labels. A checkpoint (`checkpoints/<family>.pt`) holds the weights and everything that
made them: the architecture config, the FeatureConfig, the labels in order and the training record.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import torch
from torch import nn

from ..audio import SAMPLE_RATE
from ..features import FeatureConfig


class EmotionModel(nn.Module):
    family: str = ""
    input_kind: str = "mel"  # "mel": (B, n_mels, frames); "frames": (B, n_frame_features, frames); "whisper": (B, 7, 1024)


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


def save_checkpoint(path: str | Path, model: EmotionModel, features: FeatureConfig, labels, record: dict) -> None:
    torch.save(
        {
            "family": model.family,
            "config": asdict(model.cfg),
            "features": features.to_dict(),
            "labels": list(labels),
            "record": record,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        path,
    )


def _families():
    from .cnn1d import Cnn1d
    from .cnn2d import Cnn2d
    from .lstm import Lstm
    from .whisper import WhisperFamily

    return {m.family: m for m in (Cnn1d, Lstm, Cnn2d, WhisperFamily)}


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[EmotionModel, dict]:
    """Model in eval mode on `device`, and the checkpoint's metadata (everything but the weights).
    A checkpoint made for another sample rate than audio.SAMPLE_RATE is refused (ValueError)."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    rate = ck["features"].get("sample_rate")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: this checkpoint was trained on {rate} Hz audio, but this code prepares all audio "
                         f"at {SAMPLE_RATE} Hz (emotion_core.audio.SAMPLE_RATE); retrain it or use a matching version")
    cls = _families()[ck["family"]]
    if ck["config"].get("backbone") == "efficientat-mn04":  # the 2D family on the AudioSet network
        from .mobilenet import Efficientat2d

        cls = Efficientat2d
    cfg_cls = cls.config_class
    cfg = cfg_cls(**{f.name: ck["config"][f.name] for f in fields(cfg_cls) if f.name in ck["config"]})
    model = cls(cfg, n_classes=len(ck["labels"]), pretrained=False)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()})
    meta = {k: v for k, v in ck.items() if k != "state_dict"}
    meta["features"] = FeatureConfig(**ck["features"])
    return model.to(device).eval(), meta
