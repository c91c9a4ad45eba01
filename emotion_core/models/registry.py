"""Which class builds which checkpoint: every architecture by its registered name, and the migrations that bring
checkpoints of older formats to base.FORMAT_VERSION. The only place that maps names to classes."""

from __future__ import annotations

import importlib
from pathlib import Path

FAMILIES = ("cnn1d", "lstm", "cnn2d", "whisper")  # the app's model slots, in the order the page shows them

# registered name -> "module:Class" (imported on first use: an unused architecture's packages need not be there)
ARCHITECTURES = {
    "cnn1d-frames": "emotion_core.models.cnn1d:Cnn1d",
    "bilstm-frames": "emotion_core.models.lstm:Lstm",
    "efficientat-mn04-audioset": "emotion_core.models.mobilenet:Efficientat2d",
    "whisper-base-heads": "emotion_core.models.whisper:WhisperFamily",
}


def architecture_class(name: str):
    """The class registered under `name` (ValueError for a name not registered)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}: this code knows {', '.join(ARCHITECTURES)}")
    module, cls = ARCHITECTURES[name].split(":")
    return getattr(importlib.import_module(module), cls)


# --- migrations: each takes a checkpoint dict of version v and returns version v + 1 ---------------------------
# (family, config "backbone") of a version-1 file -> its architecture; any other pair (the ImageNet EfficientNet-Lite0
# cnn2d, backbone "efficientnet-lite0", removed in issue 26: git history keeps it) becomes an unknown architecture
V1_ARCHITECTURES = {
    ("cnn1d", None): "cnn1d-frames",
    ("lstm", None): "bilstm-frames",
    ("cnn2d", "efficientat-mn04"): "efficientat-mn04-audioset",
    ("whisper", None): "whisper-base-heads",
}


def portable(path_text: str) -> str:
    """An absolute path of the machine that trained -> its last two parts (e.g. weights/whisper-base-encoder-hf);
    anything else as it is."""
    p = Path(path_text)
    return Path(*p.parts[-2:]).as_posix() if p.is_absolute() else path_text


def _v1_to_v2(ck: dict) -> dict:
    """Version 1 (no format_version): the architecture was implied by the family and the cnn2d backbone; the
    record held absolute paths."""
    family, backbone = ck["family"], ck["config"].get("backbone")
    arch = V1_ARCHITECTURES.get((family, backbone)) or f"{family}-{backbone}"
    record = dict(ck.get("record", {}))
    if isinstance(record.get("encoder_source"), str):
        record["encoder_source"] = portable(record["encoder_source"])
    return {**ck, "format_version": 2, "architecture": arch, "record": record}


MIGRATIONS = {1: _v1_to_v2}


def migrate(ck: dict, path) -> dict:
    """A loaded checkpoint dict -> the current format, through every migration from its version."""
    from .base import FORMAT_VERSION

    version = ck.get("format_version", 1)
    while version < FORMAT_VERSION:
        if version not in MIGRATIONS:
            raise ValueError(f"{path}: checkpoint format {version} has no migration to {FORMAT_VERSION}")
        ck = MIGRATIONS[version](ck)
        version = ck["format_version"]
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {version} is newer than this code's ({FORMAT_VERSION})")
    return ck
