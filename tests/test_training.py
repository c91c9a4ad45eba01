"""train.fit helpers: mixup of cached windows and the weight-averaged (EMA) training loop."""
import numpy as np
import pytest
import torch
from torch import nn

from emotion_core.labels import LABELS
from train.fit import mixup, train_loop, validate


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
