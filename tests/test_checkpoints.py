"""Checkpoints carry a format version and an architecture name, and load strictly: an unknown architecture,
an unknown or missing config key, a weight that does not fit or a newer format is an error; the shipped
version-1 files go through the explicit migration."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from emotion_core.features import DEFAULT_FEATURES
from emotion_core.labels import LABELS
from emotion_core.models.base import FORMAT_VERSION, load_checkpoint, save_checkpoint
from emotion_core.models.cnn1d import Cnn1d, Cnn1dConfig
from emotion_core.models.registry import ARCHITECTURES, FAMILIES, architecture_class

from .shared_paths import CHECKPOINTS


def test_every_architecture_is_registered_under_its_own_name():
    classes = {name: architecture_class(name) for name in ARCHITECTURES}
    assert all(cls.architecture == name for name, cls in classes.items())
    assert len({id(c) for c in classes.values()}) == len(classes)  # distinct architectures, distinct names
    assert {cls.family for cls in classes.values()} == set(FAMILIES)
    with pytest.raises(ValueError, match="unknown architecture"):
        architecture_class("cnn2d")


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_checkpoints_load_strictly(family):
    model, meta = load_checkpoint(CHECKPOINTS / f"{family}.pt")
    assert meta["format_version"] == FORMAT_VERSION and model.family == family == meta["family"]
    assert type(model).architecture == meta["architecture"]
    assert not any(isinstance(v, str) and v.startswith("/") for v in meta["record"].values())  # no machine paths


def _saved(tmp_path, edit=lambda ck: ck):
    model = Cnn1d(Cnn1dConfig(), len(LABELS))
    path = tmp_path / "cnn1d.pt"
    save_checkpoint(path, model, DEFAULT_FEATURES, LABELS, {"note": "test"})
    ck = torch.load(path, weights_only=True)
    torch.save(edit(ck), path)
    return model, path


def test_a_saved_checkpoint_round_trips(tmp_path):
    model, path = _saved(tmp_path)
    loaded, meta = load_checkpoint(path)
    assert meta["architecture"] == "cnn1d-frames" and meta["format_version"] == FORMAT_VERSION
    assert loaded.cfg == model.cfg
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=False):
        assert torch.equal(a.float(), b.float()), k


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda ck: {**ck, "config": {**ck["config"], "width": 3}}, "unknown keys"),
        (lambda ck: {**ck, "config": {k: v for k, v in ck["config"].items() if k != "channels"}}, "lacks keys"),
        (lambda ck: {**ck, "architecture": "resnet-imagenet"}, "unknown architecture"),
        (lambda ck: {**ck, "format_version": FORMAT_VERSION + 1}, "newer"),
        (lambda ck: {**ck, "state_dict": {**ck["state_dict"], "extra.weight": torch.zeros(1)}}, "extra.weight"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_refused(tmp_path, edit, message):
    _, path = _saved(tmp_path, edit)
    with pytest.raises((ValueError, RuntimeError), match=message):
        load_checkpoint(path)


def test_version_one_is_migrated_explicitly(tmp_path):
    """A version-1 file: no format_version or architecture, the architecture implied by the family."""

    def as_v1(ck):
        ck = {k: v for k, v in ck.items() if k not in ("format_version", "architecture")}
        return {**ck, "record": {"encoder_source": "/home/someone/weights/whisper-base"}}

    model, path = _saved(tmp_path, as_v1)
    loaded, meta = load_checkpoint(path)
    assert meta["architecture"] == "cnn1d-frames" and meta["record"]["encoder_source"] == "weights/whisper-base"
    assert dataclasses.asdict(loaded.cfg) == dataclasses.asdict(model.cfg)


def test_a_version_one_efficientnet_lite0_file_is_an_unknown_architecture(tmp_path):
    """The ImageNet EfficientNet-Lite0 cnn2d (a version-1 file with backbone "efficientnet-lite0") was removed
    (issue 26; git history keeps it): its checkpoint is refused, not built as something else."""

    def as_lite0_v1(ck):
        ck = {k: v for k, v in ck.items() if k not in ("format_version", "architecture")}
        return {
            **ck,
            "family": "cnn2d",
            "config": {"backbone": "efficientnet-lite0", "frozen": False, "dropout": 0.3, "n_mels": 80},
        }

    _, path = _saved(tmp_path, as_lite0_v1)
    with pytest.raises(ValueError, match="unknown architecture 'cnn2d-efficientnet-lite0'"):
        load_checkpoint(path)
