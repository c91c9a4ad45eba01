"""Speech emotion recognition core: audio in, every model family's probabilities out."""

from .audio import (
    MIN_DURATION_S,
    SAMPLE_RATE,
    AudioError,
    load_audio,
    max_duration_s,
    prepare_speech,
)
from .features import DEFAULT_FEATURES, FeatureConfig, frame_features, log_mel, log_mel_batch
from .labels import LABELS

__all__ = [
    "AudioError",
    "DEFAULT_FEATURES",
    "FeatureConfig",
    "LABELS",
    "max_duration_s",
    "MIN_DURATION_S",
    "SAMPLE_RATE",
    "frame_features",
    "load_audio",
    "log_mel",
    "log_mel_batch",
    "prepare_speech",
]
