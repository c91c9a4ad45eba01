"""What the recognizer answers: one clip's windows, every model's output, and the API's JSON of them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

ENSEMBLE = "ensemble"


@dataclass
class ModelOutput:
    label: str
    probabilities: np.ndarray  # (n_labels,), sums to 1
    window_probabilities: np.ndarray  # (n_windows, n_labels)
    latency_ms: float
    calibrated: bool = False  # probabilities through the family's validation-chosen calibration (train.calibration)


@dataclass
class ClipWindows:
    """One clip prepared for the models: its log-mel (computed once) and the windows cut from it."""

    log_mel: torch.Tensor  # (n_mels, frames) of the prepared speech, on the model device
    speech: np.ndarray  # the prepared speech itself (16 kHz), kept in memory for this request only
    windows: torch.Tensor  # (W, n_mels, window_frames)
    times_s: list  # (start, end) of each window, in seconds of the audio given
    speech_s: tuple  # (start, end) in seconds of the span kept by prepare_speech


@dataclass
class Prediction:
    duration_s: float  # of the audio given
    device: str
    labels: tuple
    clip: ClipWindows
    models: dict = field(default_factory=dict)  # name -> ModelOutput, families in FAMILY_ORDER then "ensemble"
    lead: str = ""  # the output to headline (see lead_model)
    timing_ms: dict = field(default_factory=dict)  # {"features": shared work, "total": the whole answer}, ms
    pending: tuple = ()  # families still to answer (Recognizer.predict_more adds them); empty: the answer is complete

    @property
    def window_times_s(self) -> list:
        return self.clip.times_s

    def timeline(self, model: str = ENSEMBLE) -> list[dict]:
        """Per-window answers of one model over time (empty when the clip fits one window)."""
        if len(self.clip.times_s) < 2 or model not in self.models:
            return []
        wp = self.models[model].window_probabilities
        return [
            {
                "start_s": round(a, 3),
                "end_s": round(b, 3),
                "label": self.labels[int(p.argmax())],
                "probabilities": {lab: round(float(x), 5) for lab, x in zip(self.labels, p, strict=False)},
            }
            for (a, b), p in zip(self.clip.times_s, wp, strict=False)
        ]

    def to_json(self) -> dict:
        """The API answer: {"duration_s", "device", "lead", "models": {name: {label, probabilities, latency_ms,
        calibrated}}, "pending", "timing_ms": {"features", "total", ...}, "timeline"}. "pending" lists the families
        still to answer (a first-stage answer) and is empty for a complete one. A model's latency_ms is its own work
        only; the work shared by several models is timing_ms["features"]; timing_ms["total"] is the whole answer."""
        name = self.lead or next(iter(self.models), None)
        return {
            "duration_s": round(self.duration_s, 3),
            "device": self.device,
            "lead": name,
            "models": {
                name: {
                    "label": out.label,
                    "probabilities": {
                        lab: round(float(p), 5) for lab, p in zip(self.labels, out.probabilities, strict=False)
                    },
                    "latency_ms": round(out.latency_ms, 1),
                    "calibrated": out.calibrated,
                }
                for name, out in self.models.items()
            },
            "pending": list(self.pending),
            "timing_ms": {k: round(v, 1) for k, v in self.timing_ms.items()},
            "timeline": self.timeline(name) if name else [],
        }
