"""Each family's calibration (fitted by train.calibration on the validation speakers): logits z become
softmax(z / T + b), with a temperature T and a bias b per emotion, bound to the checkpoint it was fitted for."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

CALIBRATION_FILE = "calibration.json"  # {family: {"temperature", "bias", "adopted", "checkpoint_sha256", ...}}

log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_calibration(directory: Path, families, device: str = "cpu") -> dict[str, tuple[float, torch.Tensor]]:
    """family -> (temperature, bias (n_labels,)) for each of `families` whose calibration in directory/
    CALIBRATION_FILE was adopted on validation and belongs to the checkpoint there (its sha256); another
    checkpoint runs as is."""
    path = Path(directory) / CALIBRATION_FILE
    out = {}
    for family, c in (json.loads(path.read_text()) if path.is_file() else {}).items():
        if family not in families or not c.get("adopted"):
            continue
        if file_sha256(Path(directory) / f"{family}.pt") != c.get("checkpoint_sha256"):
            log.warning("%s: %s belongs to another checkpoint; running it uncalibrated", family, CALIBRATION_FILE)
            continue
        out[family] = (float(c["temperature"]), torch.tensor(c["bias"], dtype=torch.float32, device=device))
    return out
