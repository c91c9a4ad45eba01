"""train.fit helpers (train.loop, train.teacher): the training loop (plain, with an objective) and the teacher
representations of --hint."""

import numpy as np
import pytest
import torch
from torch import nn

from emotion_core import DEFAULT_FEATURES
from emotion_core.labels import LABELS
from emotion_core.models.base import save_checkpoint
from emotion_core.models.whisper import WhisperFamily, WhisperHeadConfig
from train.loop import train_loop
from train.recipe import Recipe
from train.teacher import teacher_embeddings
from train.validation import validation_scores


def _toy_problem(n=350, seed=0):
    """Seven well separated Gaussian blobs in 8 dimensions: (x, y) and rows for validation_scores()."""
    centres = torch.randn(len(LABELS), 8, generator=torch.Generator().manual_seed(123)) * 4  # same for every seed
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % len(LABELS)
    x = centres[y] + torch.randn(n, 8, generator=g)
    rows = [{"dataset": "toy", "label": LABELS[int(k)]} for k in y]
    return x, y, rows


@pytest.mark.slow
def test_train_loop_learns_and_keeps_the_best_validated_weights():
    torch.manual_seed(0)
    x, y, _ = _toy_problem(seed=0)
    vx, _, vrows = _toy_problem(seed=1)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, len(LABELS)))
    hp = Recipe("toy", lr=1e-2, weight_decay=0.0, epochs=6, steps=20, patience=6)

    def step(gen):
        idx = torch.randint(0, len(x), (32,), generator=gen)
        return x[idx], y[idx]

    def evaluate():
        with torch.inference_mode():
            return validation_scores({"clean": torch.softmax(model(vx), -1).numpy()}, vrows)

    result = train_loop(model, model.parameters(), step, evaluate, hp, seed=0, desc="toy")
    assert not model.training
    assert result["val"]["corpus_balanced_uar"] > 0.9
    # the model handed back is the one that scored best, not the last epoch's
    best = max(h["val_cb_uar"] for h in result["history"])
    assert result["history"][result["best_epoch"]]["val_cb_uar"] == best
    assert evaluate()["corpus_balanced_uar"] == pytest.approx(best)
    assert np.isfinite([h["loss"] for h in result["history"]]).all()


@pytest.mark.slow
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
            return validation_scores({"clean": torch.softmax(model(vx), -1).numpy()}, vrows)

    before = nn.functional.mse_loss(side(body(x)), side_target).item()
    hp = Recipe("toy", lr=1e-2, weight_decay=0.0, epochs=6, steps=20, patience=6)
    result = train_loop(
        model, list(model.parameters()) + list(side.parameters()), step, evaluate, hp, 0, "toy", objective
    )
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


# --- balanced sampling --------------------------------------------------------------------------
def _rows(counts):
    """{(dataset, label): clips} -> rows in a shuffled order."""
    rows = [{"dataset": d, "label": lab} for (d, lab), n in counts.items() for _ in range(n)]
    order = np.random.default_rng(0).permutation(len(rows))
    return [rows[i] for i in order]


@pytest.mark.parametrize("power", [0.5, 0.0, 1.0])
def test_sample_weights_balance_labels_within_and_datasets_by_clip_count_power(power):
    from train.loop import sample_weights

    # dataset A: 900 clips, labels unbalanced 600/200/100; dataset B: 100 clips over two labels 90/10
    counts = {("A", "angry"): 600, ("A", "sad"): 200, ("A", "happy"): 100, ("B", "angry"): 90, ("B", "neutral"): 10}
    rows = _rows(counts)
    w = sample_weights(rows, power)
    assert w.shape == (len(rows),) and np.all(w > 0) and w.sum() == pytest.approx(1.0)
    mass = {}
    for r, wi in zip(rows, w, strict=False):
        mass[(r["dataset"], r["label"])] = mass.get((r["dataset"], r["label"]), 0.0) + wi
    ds_mass = {d: sum(m for (dd, _), m in mass.items() if dd == d) for d in "AB"}
    assert ds_mass["A"] / ds_mass["B"] == pytest.approx((900 / 100) ** power)
    for (d, _), m in mass.items():  # every label of a dataset carries the same share of it
        n_labels = sum(dd == d for dd, _ in mass)
        assert m == pytest.approx(ds_mass[d] / n_labels)
    same_cell = [wi for r, wi in zip(rows, w, strict=False) if (r["dataset"], r["label"]) == ("A", "angry")]
    assert np.ptp(same_cell) == 0  # clips of one cell are interchangeable


# --- window-to-clip averaging -------------------------------------------------------------------
def test_clip_means_average_each_clips_windows():
    from train.metrics import clip_means

    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8], [0.5, 0.5], [0.7, 0.3]])
    owners = np.array([2, 0, 0, 2, 2])  # clip 1 has no window
    out = clip_means(probs, owners, 3)
    assert np.allclose(out, [[0.1, 0.9], [0.0, 0.0], [2.2 / 3, 0.8 / 3]])


# --- augmentation -------------------------------------------------------------------------------
def _voice_mels(n=8, seconds=2.0):
    """Log-mel (80, frames) of synthesized harmonic voices with vibrato."""
    from emotion_core.features import log_mel
    from tests.synthetic_cache import voice

    rng = np.random.default_rng(1)
    return [log_mel(torch.from_numpy(voice(120.0 + 20 * i, seconds, 4.0, rng)), DEFAULT_FEATURES) for i in range(n)]


def test_random_window_crops_or_pads_to_one_window():
    from train.augment import random_window

    cfg = DEFAULT_FEATURES
    long, short = _voice_mels(1, 5.0)[0], _voice_mels(1, 1.0)[0]
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        w = random_window(long, gen, p_speed=0.0)
        assert w.shape == (cfg.n_mels, cfg.window_frames)
        # without speed perturbation the window is a contiguous crop of the clip
        starts = [
            s
            for s in range(long.shape[1] - cfg.window_frames + 1)
            if torch.equal(long[:, s : s + cfg.window_frames], w)
        ]
        assert starts
        p = random_window(short, gen, p_speed=0.0)
        assert p.shape == (cfg.n_mels, cfg.window_frames)
        padded = (p == cfg.pad_value).all(0)
        assert padded.sum() == cfg.window_frames - short.shape[1]  # the clip placed whole, silence around it
    warped = random_window(long, torch.Generator().manual_seed(0), p_speed=1.0)
    assert warped.shape == (cfg.n_mels, cfg.window_frames) and torch.isfinite(warped).all()


def test_augmenter_degrades_windows_reproducibly_and_strength_zero_leaves_them():
    from train.augment import Augmenter, random_window

    gen = torch.Generator().manual_seed(0)
    batch = torch.stack([random_window(m, gen, p_speed=0.0) for m in _voice_mels()])
    out = Augmenter(torch.Generator().manual_seed(3))(batch)
    again = Augmenter(torch.Generator().manual_seed(3))(batch)
    other = Augmenter(torch.Generator().manual_seed(4))(batch)
    assert out.shape == batch.shape and out.dtype == batch.dtype and torch.isfinite(out).all()
    assert torch.equal(out, again) and not torch.equal(out, other)  # seeded by its generator alone
    changed = (out - batch).abs().mean(dim=(1, 2))
    assert (changed > 0.1).float().mean() >= 0.75  # most windows are audibly degraded
    # every degradation scales with strength: at zero the window passes through (up to exp/log rounding)
    clean = Augmenter(torch.Generator().manual_seed(3), strength=0.0)(batch)
    assert torch.allclose(clean, batch, atol=1e-4)
    # noise fills the quiet time-frequency cells: over a batch the quietest decile rises
    many = Augmenter(torch.Generator().manual_seed(5))(batch.repeat(4, 1, 1))
    assert many.quantile(0.1) > batch.repeat(4, 1, 1).quantile(0.1)
