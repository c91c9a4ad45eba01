"""train.fit helpers: mixup of cached windows, the training loop (plain, weight-averaged, with an objective)
and the teacher representations of --hint."""
import numpy as np
import pytest
import torch
from torch import nn

from emotion_core import DEFAULT_FEATURES
from emotion_core.labels import LABELS
from emotion_core.models.base import save_checkpoint
from emotion_core.models.whisper import WhisperFamily, WhisperHeadConfig
from train.fit import mixup, teacher_embeddings, train_loop, validate


def test_mixup_mixes_inputs_and_targets_alike():
    gen = torch.Generator().manual_seed(0)
    x = torch.stack([torch.full((3, 4), float(i)) for i in range(16)])  # window i is constant i
    y = torch.arange(16) % len(LABELS)
    mx, my = mixup(x, y, 0.4, gen)
    assert mx.shape == x.shape and my.shape == (16, len(LABELS))
    assert torch.allclose(my.sum(1), torch.ones(16))
    for i in range(16):
        values = mx[i].unique()
        assert len(values) == 1  # one weight per example, the same over the whole window
        # the example itself keeps at least half: its smoothed label keeps the largest target share
        assert my[i].argmax() == y[i] or my[i, y[i]] == pytest.approx(my[i].max())
        lam = my[i, y[i]].item()
        assert lam >= 0.5 * (1 - 0.1) - 1e-6  # label smoothing 0.1 spreads a tenth of the mass
    assert not torch.equal(mx, x)  # something was mixed


def _toy_problem(n=350, seed=0):
    """Seven well separated Gaussian blobs in 8 dimensions: (x, y) and rows for validate()."""
    centres = torch.randn(len(LABELS), 8, generator=torch.Generator().manual_seed(123)) * 4  # same for every seed
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % len(LABELS)
    x = centres[y] + torch.randn(n, 8, generator=g)
    rows = [{"dataset": "toy", "label": LABELS[int(k)]} for k in y]
    return x, y, rows


@pytest.mark.parametrize("ema", [None, 0.9])
def test_train_loop_learns_and_keeps_the_best_validated_weights(ema):
    torch.manual_seed(0)
    x, y, _ = _toy_problem(seed=0)
    vx, _, vrows = _toy_problem(seed=1)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, len(LABELS)))
    hp = dict(lr=1e-2, weight_decay=0.0, epochs=6, steps=20, patience=6, ema=ema)

    def step(gen):
        idx = torch.randint(0, len(x), (32,), generator=gen)
        return x[idx], y[idx]

    def evaluate():
        with torch.inference_mode():
            return validate(torch.softmax(model(vx), -1).numpy(), vrows)

    result = train_loop(model, model.parameters(), step, evaluate, hp, seed=0, desc="toy")
    assert not model.training
    assert result["val"]["corpus_balanced_uar"] > 0.9
    # the model handed back is the one that scored best, not the last epoch's
    best = max(h["val_cb_uar"] for h in result["history"])
    assert result["history"][result["best_epoch"]]["val_cb_uar"] == best
    assert evaluate()["corpus_balanced_uar"] == pytest.approx(best)
    assert np.isfinite([h["loss"] for h in result["history"]]).all()


def test_train_loop_takes_an_objective_beside_the_model_loss():
    """--hint trains a side map on the pooled embedding: the loop minimises whatever objective it is given."""
    torch.manual_seed(0)
    x, y, _ = _toy_problem(seed=0)
    vx, _, vrows = _toy_problem(seed=1)
    body, head = nn.Sequential(nn.Linear(8, 16), nn.ReLU()), nn.Linear(16, len(LABELS))
    model = nn.Sequential(body, head)
    side = nn.Linear(16, 2)
    side_target = x[:, :2] * 3  # a representation the side map can learn from the embedding

    def step(gen):
        idx = torch.randint(0, len(x), (32,), generator=gen)
        return x[idx], (y[idx], side_target[idx])

    def objective(xb, yb):
        labels, hint = yb
        emb = body(xb)
        return nn.functional.cross_entropy(head(emb), labels) + nn.functional.mse_loss(side(emb), hint)

    def evaluate():
        with torch.inference_mode():
            return validate(torch.softmax(model(vx), -1).numpy(), vrows)

    before = nn.functional.mse_loss(side(body(x)), side_target).item()
    hp = dict(lr=1e-2, weight_decay=0.0, epochs=6, steps=20, patience=6)
    result = train_loop(model, list(model.parameters()) + list(side.parameters()), step, evaluate, hp, 0, "toy", objective)
    assert result["val"]["corpus_balanced_uar"] > 0.9
    with torch.no_grad():
        assert nn.functional.mse_loss(side(body(x)), side_target).item() < 0.2 * before


@pytest.mark.parametrize("kind", ["head", "states"])
def test_teacher_embeddings_are_whitened_components_of_training_clips_only(tmp_path, kind):
    torch.manual_seed(0)
    family = WhisperFamily(WhisperHeadConfig(members=2), len(LABELS)).eval()
    save_checkpoint(tmp_path / "whisper.pt", family, DEFAULT_FEATURES, LABELS, {})
    rows = [{"split": "train" if i < 40 else ("val" if i < 50 else "test")} for i in range(60)]
    owners = np.repeat(np.arange(60), 2)  # two windows per clip
    rng = np.random.default_rng(0)
    np.save(tmp_path / "whisper_0.npy", rng.normal(size=(len(owners), 7, 1024)).astype(np.float16))
    np.save(tmp_path / "whisper_0_owner.npy", owners.astype(np.int32))
    hints = teacher_embeddings(rows, tmp_path, tmp_path / "whisper.pt", kind, dim=16).numpy()
    assert hints.shape == (60, 16)
    assert not hints[40:].any()  # validation and test clips never get a target
    train = hints[:40]
    assert np.mean(train**2) == pytest.approx(1.0, rel=1e-4)
    assert np.allclose(train.mean(0), 0.0, atol=1e-4)
    cov = train.T @ train
    assert np.allclose(cov - np.diag(np.diag(cov)), 0.0, atol=1e-3)  # principal components: uncorrelated
    assert np.all(np.diff(np.diag(cov)) <= 1e-4)  # in order of variance
