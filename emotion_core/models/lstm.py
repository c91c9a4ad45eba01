"""Bidirectional LSTM on frame-level feature sequences, with attentive statistics pooling."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..features import DEFAULT_FEATURES
from .base import EmotionModel, cepstral_mean_norm, downsample_mask, split_valid


@dataclass
class LstmConfig:
    n_features: int = DEFAULT_FEATURES.n_frame_features - 1  # without the validity channel
    n_static: int = DEFAULT_FEATURES.n_mfcc + 1  # static cepstra + energy: per-window mean normalisation
    subsample: int = 4  # frames merged by a strided convolution before the LSTM (40 ms steps)
    hidden: int = 96
    layers: int = 2
    dropout: float = 0.2


class Lstm(EmotionModel):
    family = "lstm"
    architecture = "bilstm-frames"
    input_kind = "frames"
    config_class = LstmConfig

    def __init__(self, cfg: LstmConfig, n_classes: int, pretrained: bool = True):
        super().__init__()
        self.cfg = cfg
        self.norm = nn.BatchNorm1d(cfg.n_features)
        self.proj = nn.Sequential(
            nn.Conv1d(cfg.n_features, cfg.hidden, cfg.subsample + 1, stride=cfg.subsample, padding=cfg.subsample // 2),
            nn.BatchNorm1d(cfg.hidden),
            nn.ReLU(),
        )
        self.lstm = nn.LSTM(
            cfg.hidden, cfg.hidden, cfg.layers, batch_first=True, bidirectional=True, dropout=cfg.dropout
        )
        self.attention = nn.Sequential(nn.Linear(2 * cfg.hidden, 64), nn.Tanh(), nn.Linear(64, 1))
        self.head = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(4 * cfg.hidden, 96),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(96, n_classes),
        )

    @property
    def embed_dim(self) -> int:
        """Width of `embed`'s output, which the head reads."""
        return 4 * self.cfg.hidden

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_features + 1, frames) frame features with validity -> (B, 4 * hidden) attentive statistics."""
        x, mask = split_valid(x)
        h = self.proj(self.norm(cepstral_mean_norm(x, mask, self.cfg.n_static)) * mask)
        mask = downsample_mask(mask, h.shape[-1]).transpose(1, 2)  # (B, T, 1)
        h, _ = self.lstm(h.transpose(1, 2))  # (B, T, 2H)
        scores = self.attention(h).masked_fill(mask == 0, -1e4)
        w = torch.softmax(scores, dim=1)  # (B, T, 1), zero on padding
        mean = (w * h).sum(1)
        std = ((w * (h - mean[:, None]) ** 2).sum(1) + 1e-6).sqrt()
        return torch.cat([mean, std], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_features + 1, frames) frame features with validity -> (B, n_classes) logits."""
        return self.head(self.embed(x))
