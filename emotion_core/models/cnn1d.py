"""1D CNN over time on frame-level acoustic features (channels = MFCC, energy and their deltas)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..features import DEFAULT_FEATURES
from .base import EmotionModel, cepstral_mean_norm, downsample_mask, masked_stats_pool, split_valid


@dataclass
class Cnn1dConfig:
    n_features: int = DEFAULT_FEATURES.n_frame_features - 1  # without the validity channel
    n_static: int = DEFAULT_FEATURES.n_mfcc + 1  # static cepstra + energy: per-window mean normalisation
    channels: int = 96
    stride: int = 2  # the stem halves the frame rate (20 ms steps)
    kernel: int = 5
    dilations: tuple = (1, 2, 4)
    dropout: float = 0.2


class Cnn1d(EmotionModel):
    family = "cnn1d"
    architecture = "cnn1d-frames"
    input_kind = "frames"
    config_class = Cnn1dConfig

    def __init__(self, cfg: Cnn1dConfig, n_classes: int, pretrained: bool = True):
        super().__init__()
        self.cfg = cfg
        self.norm = nn.BatchNorm1d(cfg.n_features)
        self.stem = nn.Conv1d(cfg.n_features, cfg.channels, 3, stride=cfg.stride, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(cfg.channels, cfg.channels, cfg.kernel, dilation=d, padding=d * (cfg.kernel // 2)),
                nn.BatchNorm1d(cfg.channels),
                nn.ReLU(),
                nn.Dropout(cfg.dropout / 2),
            )
            for d in cfg.dilations
        )
        self.head = nn.Sequential(
            nn.Linear(2 * cfg.channels, 96), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(96, n_classes)
        )

    @property
    def embed_dim(self) -> int:
        """Width of `embed`'s output, which the head reads."""
        return 2 * self.cfg.channels

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_features + 1, frames) frame features with validity -> (B, 2 * channels) pooled statistics."""
        x, mask = split_valid(x)
        h = self.stem(self.norm(cepstral_mean_norm(x, mask, self.cfg.n_static)) * mask)
        mask = downsample_mask(mask, h.shape[-1])
        for block in self.blocks:
            h = (h + block(h)) * mask
        return masked_stats_pool(h, mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_features + 1, frames) frame features with validity -> (B, n_classes) logits."""
        return self.head(self.embed(x))
