"""A tiny training feature cache built from synthesized audio, the layout train.cache writes
(mels.npy, clips.csv, fingerprint.txt), and a tiny random-init Whisper encoder saved to a directory:
enough for train.fit to run every family's path in seconds, with no corpus and no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emotion_core.audio import SAMPLE_RATE
from emotion_core.features import DEFAULT_FEATURES, log_mel
from emotion_core.labels import LABELS
from train.cache import write_mels

DATASETS = ("toyA", "toyB")  # two datasets so the corpus-balanced metrics and the balancing have work to do
SPLIT_OF_TAKE = ("train", "train", "val")  # per (dataset, label): two training clips and one validation clip


def voice(f0_hz: float, seconds: float, vibrato_hz: float, rng: np.random.Generator) -> np.ndarray:
    """A harmonic tone with vibrato, an amplitude envelope and a little noise: (samples,) float32 at 16 kHz."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f = f0_hz * (1 + 0.03 * np.sin(2 * np.pi * vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    x *= np.sqrt(np.clip(np.sin(np.pi * t / t[-1]), 0.0, None))
    x += 0.01 * rng.standard_normal(len(t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def build_cache(out: Path) -> list[dict]:
    """Write a 42-clip cache (2 datasets x 7 labels x 3 clips of 1-4 s) into `out`; returns its rows."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, mels, offset = [], [], 0
    for d, dataset in enumerate(DATASETS):
        for k, label in enumerate(LABELS):
            for take, split in enumerate(SPLIT_OF_TAKE):
                seconds = 1.0 + 3.0 * rng.random()
                audio = voice(110.0 * 1.12**k + 20 * d, seconds, 3.0 + k, rng)
                lm = log_mel(torch.from_numpy(audio), DEFAULT_FEATURES).T.numpy().astype(np.float16)
                rows.append(
                    {
                        "path": f"{dataset}/{label}_{take}.opus",
                        "dataset": dataset,
                        "speaker": f"{dataset}-{take}",
                        "label": label,
                        "sentence": "tone",
                        "split": split,
                        "offset": offset,
                        "frames": lm.shape[0],
                    }
                )
                mels.append(lm)
                offset += lm.shape[0]
    write_mels(out / "mels.npy", out / "clips.csv", rows, mels)
    (out / "fingerprint.txt").write_text("synthetic\n")
    return rows


def build_tiny_whisper(out: Path) -> Path:
    """A random-init Whisper encoder with Whisper-base's interface (80 mels, 6 layers, width 512; the head
    reads 7 hidden states of 512) but 1 attention head and a 64-wide feed-forward, saved with
    save_pretrained so load_encoder reads it like the real one."""
    from transformers import WhisperConfig, WhisperForAudioClassification

    cfg = WhisperConfig(
        num_mel_bins=80,
        d_model=512,
        encoder_layers=6,
        encoder_attention_heads=1,
        encoder_ffn_dim=64,
        decoder_layers=1,
        decoder_attention_heads=1,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        num_labels=2,
    )
    torch.manual_seed(0)
    WhisperForAudioClassification(cfg).save_pretrained(out)
    return out
