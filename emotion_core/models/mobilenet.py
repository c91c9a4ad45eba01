"""EfficientAT mn04: an AudioSet-pretrained MobileNetV3 (width 0.4) on log-mel spectrograms, and the 2D
family built on it.

The network follows the published block table of MobileNetV3-Large (Howard et al. 2019, as torchvision and
EfficientAT lay it out) with EfficientAT's changes: one input channel, squeeze-excitation over channels with
ReLU/sigmoid and a bottleneck of expanded/4 rounded to a multiple of 8, BatchNorm eps 1e-3. The state-dict
names match EfficientAT's `mn04_as` release (features.0..16, classifier.2/.5), so its weights load strictly.

Input the pretrained network expects (EfficientAT's preprocessing): 32 kHz audio, power spectrum (n_fft 1024,
window 800, hop 320 = 10 ms, pre-emphasis 0.97) through 128 Kaldi mel banks 0-15 kHz, log(x + 1e-5),
normalised as (x + 4.5) / 5; shape (B, 1, 128, frames).

Our families receive 80-band natural-log mels at 16 kHz (0-8 kHz, 25 ms window, 10 ms hop: the same frame rate).
`Efficientat2d` maps them onto the network's input (see `mel_map`): each of the network's 128 bands takes our
log-mel interpolated at its centre frequency; bands above 8 kHz (which a 16 kHz recording cannot fill) take
the network's value for silence; each band's level is shifted to the network's scale by an offset measured on
white noise through both front ends (`level_offsets`).
So the pretrained filters see each frequency where they learned it, rather than a stretched spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..features import DEFAULT_FEATURES, mel_centres_hz
from .base import EmotionModel

WIDTH = 0.4
BN_EPS = 1e-3
SE_REDUCTION = 4
# MobileNetV3-Large: (in, kernel, expanded, out, squeeze-excitation, hardswish, stride) before the width multiplier
BLOCK_TABLE = [
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
]
LAST_HIDDEN = 1280  # AudioSet classifier's hidden width before the multiplier
N_AUDIOSET = 527

# EfficientAT's input (the pretrained network's own front end)
NET_SAMPLE_RATE = 32000  # Hz
NET_N_MELS = 128
NET_N_FFT = 1024
NET_WIN = 800  # samples (25 ms)
NET_HOP = 320  # samples (10 ms)
NET_F_MAX = 15000.0  # Hz
NET_PREEMPHASIS = 0.97
NET_LOG_OFFSET = 1e-5
NET_SHIFT, NET_SCALE = 4.5, 5.0  # (log-mel + 4.5) / 5

DEFAULT_WEIGHTS = "../shared/weights/efficientat-mn04-as/mn04_as_mAP_432.pt"


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of `divisor`, never going down by more than 10% (MobileNet's rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: type | None = None
) -> nn.Sequential:
    """Conv (no bias, same padding) -> BatchNorm -> activation: indices 0, 1, 2 as in torchvision."""
    layers = [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=BN_EPS),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class ChannelSE(nn.Module):
    """Squeeze-excitation over channels: mean over (freq, time) -> fc1 -> ReLU -> fc2 -> sigmoid -> scale."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * s[:, :, None, None]


class SEBlock(nn.Module):
    """EfficientAT's container of concurrent SE layers (mn04 uses one, over channels): keeps the weight names."""

    def __init__(self, channels: int):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSE(channels, make_divisible(channels // SE_REDUCTION))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """1x1 expand (if wider) -> depthwise k x k (stride) -> SE (optional) -> 1x1 project; residual when shapes match."""

    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, use_se: bool, hardswish: bool, stride: int):
        super().__init__()
        act = nn.Hardswish if hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(conv_bn(c_in, expanded, 1, act=act))
        layers.append(conv_bn(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if use_se:
            layers.append(SEBlock(expanded))
        layers.append(conv_bn(expanded, c_out, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.residual else y


class MobileNetMN(nn.Module):
    """EfficientAT MN (mn04 at width 0.4): (B, 1, n_mels, frames) normalised log-mel -> (B, 527) AudioSet logits."""

    def __init__(self, width: float = WIDTH, n_classes: int = N_AUDIOSET, dropout: float = 0.2):
        super().__init__()
        ch = lambda c: make_divisible(c * width)  # noqa: E731
        table = [(ch(i), k, ch(e), ch(o), se, hs, s) for i, k, e, o, se, hs, s in BLOCK_TABLE]
        layers: list[nn.Module] = [conv_bn(1, table[0][0], 3, stride=2, act=nn.Hardswish)]
        layers += [InvertedResidual(*row) for row in table]
        last_in = table[-1][3]
        self.out_channels = 6 * last_in  # 384 at width 0.4
        layers.append(conv_bn(last_in, self.out_channels, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(self.out_channels, ch(LAST_HIDDEN)),
            nn.Hardswish(),
            nn.Dropout(dropout),
            nn.Linear(ch(LAST_HIDDEN), n_classes),
        )

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, F, T) -> (B, out_channels) features averaged over frequency and time."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# --- the network's own front end (used to check the pretrained weights, and documented as its input) -----
def kaldi_mel_banks(sample_rate: int = NET_SAMPLE_RATE) -> torch.Tensor:
    """(128, n_fft // 2 + 1) Kaldi triangular mel banks 0-15 kHz, the last FFT bin zero (as EfficientAT pads)."""
    import torchaudio.compliance.kaldi as K

    banks, _ = K.get_mel_banks(NET_N_MELS, NET_N_FFT, float(sample_rate), 0.0, NET_F_MAX, 100.0, -500.0, 1.0)
    return nn.functional.pad(banks, (0, 1))


def kaldi_centres_hz() -> np.ndarray:
    """Centre frequencies (128,) of the Kaldi mel banks 0-15 kHz (mel = 1127 ln(1 + f / 700))."""
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f) / 700.0)  # noqa: E731
    edges = np.linspace(mel(0.0), mel(NET_F_MAX), NET_N_MELS + 2)
    return 700.0 * np.expm1(edges[1:-1] / 1127.0)


def network_input(audio_32k: torch.Tensor) -> torch.Tensor:
    """EfficientAT's preprocessing: (B, samples) at 32 kHz -> (B, 1, 128, frames) normalised log-mel."""
    x = audio_32k[:, 1:] - NET_PREEMPHASIS * audio_32k[:, :-1]
    spec = torch.stft(x, NET_N_FFT, NET_HOP, NET_WIN, torch.hann_window(NET_WIN), center=True, return_complex=True)
    mel = kaldi_mel_banks() @ spec.abs().pow(2)
    return ((torch.log(mel + NET_LOG_OFFSET) + NET_SHIFT) / NET_SCALE)[:, None]


# --- our log-mel windows onto the network's input ---------------------------------------------------
def mel_map(n_mels: int = DEFAULT_FEATURES.n_mels) -> tuple[torch.Tensor, torch.Tensor]:
    """(128, n_mels) linear interpolation matrix from our band centres to the network's, and (128,) mask of the
    network's bands that lie below our top band (the rest are set to the network's silence)."""
    ours = mel_centres_hz()
    assert len(ours) == n_mels, f"mel_map: FeatureConfig has {len(ours)} bands, config says {n_mels}"
    theirs = kaldi_centres_hz()
    m = np.zeros((NET_N_MELS, n_mels), np.float32)
    inside = theirs <= ours[-1]
    for i, f in enumerate(theirs):
        j = int(np.clip(np.searchsorted(ours, f) - 1, 0, n_mels - 2))
        t = float(np.clip((f - ours[j]) / (ours[j + 1] - ours[j]), 0.0, 1.0))
        m[i, j], m[i, j + 1] = 1 - t, t
    return torch.from_numpy(m), torch.from_numpy(inside)


def level_offsets(seconds: float = 20.0) -> torch.Tensor:
    """(128,) ln-power offset per network band from our log-mel (interpolated by `mel_map`) to the network's
    log-mel of the same sound, measured on seeded white noise at 16 kHz (resampled to 32 kHz for the network):
    the two front ends differ in window length, FFT size and filter normalisation (Slaney-normalised vs
    unnormalised Kaldi triangles), so the offset depends on the band. Bands above our top band get 0."""
    import torchaudio.functional as AF

    from ..features import log_mel

    gen = torch.Generator().manual_seed(0)
    noise = 0.1 * torch.randn(int(seconds * DEFAULT_FEATURES.sample_rate), generator=gen)
    ours = log_mel(noise).exp().mean(-1).log()  # (n_mels,) ln of the mean power per band
    theirs = network_input(AF.resample(noise, DEFAULT_FEATURES.sample_rate, NET_SAMPLE_RATE)[None])[0, 0]
    theirs = (theirs * NET_SCALE - NET_SHIFT).exp().mean(-1).log()
    m, inside = mel_map(len(ours))
    return torch.where(inside, theirs - m @ ours, torch.zeros(()))


NET_SILENCE = (np.log(NET_LOG_OFFSET) + NET_SHIFT) / NET_SCALE  # the network's value for an empty band


@dataclass
class Efficientat2dConfig:
    backbone: str = "efficientat-mn04"
    dropout: float = 0.3
    n_mels: int = 80


def efficientat_weights(cli_value: str | None = None) -> str:
    """The pretrained mn04 state dict: --efficientat, else $EMOTION_EFFICIENTAT, else ../shared (training only)."""
    from ..settings import current

    return cli_value or current().efficientat or DEFAULT_WEIGHTS


class Efficientat2d(EmotionModel):
    """The 2D family on EfficientAT mn04: (B, n_mels, frames) our log-mel -> (B, n_classes) logits.
    The whole network trains; the AudioSet classifier is dropped, a new head reads the 384 pooled channels."""

    family = "cnn2d"
    architecture = "efficientat-mn04-audioset"
    input_kind = "mel"
    config_class = Efficientat2dConfig
    exports_to_onnx = True  # a third of torch's CPU time in ONNX Runtime, the same probabilities (issue 25)

    def __init__(self, cfg: Efficientat2dConfig, n_classes: int, pretrained: bool = True, weights: str | None = None):
        super().__init__()
        self.cfg = cfg
        net = MobileNetMN()
        if pretrained:
            net.load_state_dict(
                torch.load(efficientat_weights(weights), map_location="cpu", weights_only=True), strict=True
            )
        self.features = net.features
        self.embed_dim = net.out_channels
        m, inside = mel_map(cfg.n_mels)
        # the input mapping is part of the checkpoint (a few kB): a checkpoint keeps the mapping it was trained with
        self.register_buffer("mel_matrix", m)
        self.register_buffer("mel_inside", inside)
        self.register_buffer("mel_offset", level_offsets() if pretrained else torch.zeros(NET_N_MELS))
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(self.embed_dim, n_classes))

    def image(self, lm: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) natural-log mel at 16 kHz -> (B, 1, 128, frames) in the network's normalisation."""
        x = torch.einsum("fm,bmt->bft", self.mel_matrix, lm) + self.mel_offset[:, None]
        x = (x + NET_SHIFT) / NET_SCALE
        x = torch.where(self.mel_inside[None, :, None], x, torch.full_like(x, NET_SILENCE))
        return x.clamp(min=NET_SILENCE)[:, None]

    def embed(self, lm: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) -> (B, 384) pooled network features."""
        return self.features(self.image(lm)).mean(dim=(2, 3))

    def forward(self, lm: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(lm))
