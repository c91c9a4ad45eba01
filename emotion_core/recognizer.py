"""Every model family side by side: load the checkpoints once, predict all of them in one call.

Per clip the work is done once: prepare_speech, one log-mel, one set of 3 s windows; the frame features
(MFCC = DCT of the log-mel) are shared by cnn1d and lstm, and the Whisper encoder reads the same windows.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import SAMPLE_RATE, prepare_speech, speech_bounds
from .features import FeatureConfig, frame_features, log_mel, window_starts, windows
from .labels import LABELS
from .models.base import EmotionModel, load_checkpoint
from .paths import checkpoint_dir, whisper_source

FAMILY_ORDER = ("cnn1d", "lstm", "cnn2d", "whisper")
ENSEMBLE = "ensemble"
ENSEMBLE_FILE = "ensemble.json"  # {"members": [...], "weights": [...]}, chosen on the validation speakers


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class ModelOutput:
    label: str
    probabilities: np.ndarray  # (n_labels,), sums to 1
    window_probabilities: np.ndarray  # (n_windows, n_labels)
    latency_ms: float


@dataclass
class Prediction:
    duration_s: float  # of the audio given
    device: str
    labels: tuple
    window_times_s: list  # (start, end) of each model window in the audio given
    models: dict = field(default_factory=dict)  # name -> ModelOutput, families in FAMILY_ORDER then "ensemble"
    speech_s: tuple = (0.0, 0.0)  # span kept by prepare_speech

    def to_json(self) -> dict:
        return {
            "duration_s": round(self.duration_s, 3),
            "device": self.device,
            "models": {
                name: {
                    "label": out.label,
                    "probabilities": {lab: round(float(p), 5) for lab, p in zip(self.labels, out.probabilities)},
                    "latency_ms": round(out.latency_ms, 1),
                }
                for name, out in self.models.items()
            },
        }


class Recognizer:
    """All shipped families on one device. `unavailable` maps a family to the reason it is not running."""

    def __init__(self, checkpoints: str | Path | None = None, device: str | None = None, whisper: str | None = None):
        self.device = device or default_device()
        self.dir = checkpoint_dir(str(checkpoints) if checkpoints else None)
        self.models: dict[str, EmotionModel] = {}
        self.meta: dict[str, dict] = {}
        self.unavailable: dict[str, str] = {}
        self.encoder = None
        self.features: FeatureConfig | None = None
        for family in FAMILY_ORDER:
            path = self.dir / f"{family}.pt"
            if not path.is_file():
                self.unavailable[family] = f"no checkpoint at {path}"
                continue
            model, meta = load_checkpoint(path, self.device)
            if tuple(meta["labels"]) != LABELS:
                raise ValueError(f"{path}: labels {meta['labels']} differ from {LABELS}")
            if self.features is None:
                self.features = meta["features"]
            elif meta["features"] != self.features:
                raise ValueError(f"{path}: its features differ from the other checkpoints'")
            if family == "whisper":
                try:
                    self.encoder = self._load_whisper(model, whisper)
                except Exception as e:  # the app runs the other families and says why
                    self.unavailable[family] = str(e)
                    continue
            self.models[family] = model
            self.meta[family] = meta
        self.ensemble = self._load_ensemble()

    def _load_whisper(self, head, source):
        from .models.whisper import check_encoder, load_encoder

        src = whisper_source(source)
        enc = load_encoder(src, self.device)
        check_encoder(head.cfg, enc, src)
        return enc

    def _load_ensemble(self) -> dict[str, float]:
        path = self.dir / ENSEMBLE_FILE
        spec = json.loads(path.read_text()) if path.is_file() else {"members": list(FAMILY_ORDER)}
        weights = dict(zip(spec["members"], spec.get("weights", [1.0] * len(spec["members"]))))
        live = {m: w for m, w in weights.items() if m in self.models and w > 0}
        total = sum(live.values())
        return {m: w / total for m, w in live.items()} if total > 0 else {}

    @property
    def names(self) -> list[str]:
        """Names of the outputs predict_all gives, in order."""
        return list(self.models) + ([ENSEMBLE] if len(self.ensemble) > 1 else [])

    def model_windows(self, audio: np.ndarray) -> tuple[torch.Tensor, list[tuple[float, float]], tuple[float, float]]:
        """16 kHz mono audio -> (windows (W, n_mels, window_frames), window times in s, speech span in s)."""
        cfg = self.features
        start, end = speech_bounds(audio)
        speech = prepare_speech(audio)
        lm = log_mel(torch.from_numpy(speech).to(self.device), cfg)
        wins, starts = windows(lm, cfg)
        t0 = start / SAMPLE_RATE
        w_s = cfg.window_s
        times = [(t0 + s / cfg.frames_per_s, t0 + min(s / cfg.frames_per_s + w_s, (end - start) / SAMPLE_RATE)) for s in starts]
        return wins, times, (start / SAMPLE_RATE, end / SAMPLE_RATE)

    @torch.inference_mode()
    def window_probabilities(self, wins: torch.Tensor) -> dict[str, tuple[np.ndarray, float]]:
        """(W, n_mels, frames) log-mel windows -> {family: ((W, n_labels) probabilities, ms)}.

        Each derived input is computed once and its time charged to the first family that needs it."""
        inputs: dict[str, torch.Tensor] = {"mel": wins}
        out = {}
        for name, model in self.models.items():
            t = time.perf_counter()
            kind = model.input_kind
            if kind not in inputs:
                if kind == "frames":
                    inputs[kind] = frame_features(wins, self.features)
                elif kind == "whisper":
                    from .models.whisper import pooled_states

                    inputs[kind] = pooled_states(self.encoder, wins)
            probs = torch.softmax(model(inputs[kind]), dim=-1).float().cpu().numpy()
            if self.device.startswith("cuda"):
                torch.cuda.synchronize()
            out[name] = (probs, (time.perf_counter() - t) * 1000)
        return out

    def combine(self, per_family: dict[str, np.ndarray]) -> np.ndarray:
        """Ensemble of clip (or window) probabilities: the validation-chosen weighted mean."""
        return sum(w * per_family[m] for m, w in self.ensemble.items())

    def predict_all(self, audio: np.ndarray) -> Prediction:
        """16 kHz mono float32 audio (from load_audio) -> every family's answer and the ensemble's.

        The clip answer of a family is the mean of its window probabilities."""
        if not self.models:
            raise RuntimeError("No trained models were found in " + str(self.dir))
        t = time.perf_counter()
        wins, times, span = self.model_windows(audio)
        prep_ms = (time.perf_counter() - t) * 1000
        pred = Prediction(len(audio) / SAMPLE_RATE, self.device, LABELS, times, speech_s=span)
        window_probs = self.window_probabilities(wins)
        for i, (name, (wp, ms)) in enumerate(window_probs.items()):
            p = wp.mean(0)
            pred.models[name] = ModelOutput(LABELS[int(p.argmax())], p, wp, ms + (prep_ms if i == 0 else 0.0))
        if len(self.ensemble) > 1:
            wp = self.combine({m: window_probs[m][0] for m in self.ensemble})
            p = wp.mean(0)
            pred.models[ENSEMBLE] = ModelOutput(LABELS[int(p.argmax())], p, wp, 0.0)
        return pred

    def predict_windows(self, wins: torch.Tensor, batch: int = 64) -> dict[str, np.ndarray]:
        """Many windows at once (evaluation): (N, n_mels, frames) -> {name: (N, n_labels)}, ensemble included."""
        parts: dict[str, list] = {}
        for s in range(0, len(wins), batch):
            for name, (p, _ms) in self.window_probabilities(wins[s : s + batch]).items():
                parts.setdefault(name, []).append(p)
        out = {name: np.concatenate(v) for name, v in parts.items()}
        if len(self.ensemble) > 1:
            out[ENSEMBLE] = self.combine(out)
        return out


def n_windows(n_frames: int, cfg: FeatureConfig) -> int:
    return len(window_starts(n_frames, cfg))
