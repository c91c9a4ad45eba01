"""Occlusion explanations for teaching: hide one time-frequency patch of a window at a time and see how
much each model's chosen label loses. All patches of all families go through the models as one batch."""

from __future__ import annotations

import numpy as np
import torch

from emotion_core.labels import LABELS

PATCH_BANDS = 20  # mel bands per patch (4 rows over 80 bands)
PATCH_FRAMES = 50  # frames per patch (0.5 s; 6 columns over a 3 s window)
BACKGROUND_QUANTILE = 0.1  # a hidden patch takes each band's quiet level in this window


def occlusion_maps(recognizer, window: torch.Tensor) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """window (n_mels, frames) log-mel -> ({model: (n_mels, frames) probability drop}, {model: label})."""
    n_mels, frames = window.shape
    background = torch.quantile(window, BACKGROUND_QUANTILE, dim=1, keepdim=True).expand_as(window)
    patches, batch = [], [window]
    for b in range(0, n_mels, PATCH_BANDS):
        for f in range(0, frames, PATCH_FRAMES):
            w = window.clone()
            w[b : b + PATCH_BANDS, f : f + PATCH_FRAMES] = background[b : b + PATCH_BANDS, f : f + PATCH_FRAMES]
            batch.append(w)
            patches.append((b, f))
    probs = recognizer.window_probabilities(torch.stack(batch))
    if recognizer.has_ensemble:
        probs["ensemble"] = (recognizer.combine({m: probs[m][0] for m in recognizer.ensemble}), 0.0)
    maps, labels = {}, {}
    for name, (p, _ms) in probs.items():
        k = int(p[0].argmax())
        drop = np.zeros((n_mels, frames), dtype=np.float32)
        for (b, f), row in zip(patches, p[1:], strict=False):
            drop[b : b + PATCH_BANDS, f : f + PATCH_FRAMES] = p[0, k] - row[k]
        maps[name], labels[name] = drop, LABELS[k]
    return maps, labels
