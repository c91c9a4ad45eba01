"""Train one family on the training speakers; select on the validation speakers; never look at test.

    python -m train.fit --family whisper      # first: the teacher of the others (a bag of five heads)
    python -m train.fit --family cnn1d        # also lstm, cnn2d
    python -m train.fit --family cnn2d --epochs 20 --distill 0.5 --out /tmp/x   # any recipe field, overridden

Each family trains with its shipped recipe (train/recipe.py, RECIPES); flags override recipe fields (train.cli), and
the resolved recipe and the command line go into the checkpoint's record and the top of the log. The recipe's
architecture (its registered name, emotion_core.models.registry) picks how it trains: TRAINERS, below.

Balancing: each training step draws a batch with replacement, weighted so that every (dataset, label)
cell of a dataset has equal mass and each dataset's mass is proportional to its clip count ** dataset_power
(0.5: CREMA-D is 61% of the clips and would otherwise drown the others; TESS is one speaker saying one carrier
phrase and should not weigh as much as 55 CREMA-D speakers).

Two ways to train:
- cnn1d, lstm, cnn2d (EfficientAT mn04): end to end from the log-mel cache; each window gets a fresh random crop,
  speed perturbation and the acoustic augmentations of train.augment.
- whisper: the expensive frozen encoder runs once per window into a cache (train.trunk: clean windows of
  every clip, plus `copies` augmented windows of each training clip); the trainable heads train on the cache.
  The Whisper family is a bag of `members` heads, one per seed.
With distill > 0 (cnn1d, lstm, cnn2d) each training clip's target mixes its smoothed label with the trained
Whisper family's probabilities for that clip (train.teacher), the teacher's share set by distill.
With a hint (cnn1d, lstm) a second target joins: a linear map of the model's pooled embedding learns to predict
the Whisper family's representation of each training clip (representation distillation; the map is dropped
after training).
Model selection: early stopping on the validation corpus-balanced UAR (mean over datasets of per-dataset UAR).

With --out elsewhere than checkpoints/, the log goes beside the checkpoint and --teacher names the Whisper
checkpoint, e.g.
    python -m train.fit --family lstm --out /tmp/x --teacher checkpoints/whisper.pt --seed 1
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from corpus import splits_hash
from emotion_core.features import DEFAULT_FEATURES, frame_features
from emotion_core.labels import LABELS
from emotion_core.models.base import save_checkpoint
from emotion_core.models.registry import architecture_class, portable
from emotion_core.paths import DEFAULT_CHECKPOINT_DIR, checkpoint_dir, data_dir, whisper_source

from .augment import Augmenter, random_window
from .cache import build_mels, cache_dir, clip_mel, load_cache
from .cli import parser, resolve
from .loop import classification_loss, labels_of, sample_weights, soft_targets, train_loop
from .metrics import clip_means
from .recipe import Recipe
from .teacher import teacher_embeddings, teacher_identity, teacher_targets
from .trunk import (
    cached_val_set,
    fit_from_cache,
    simulated_trunk_cache,
    simulated_val_set,
    trunk_cache,
    validate_conditions,
)
from .validation import validation_scores, validation_sets

log = logging.getLogger("fit")
EVAL_BATCH = 256  # validation windows per forward pass


# --- end-to-end families ------------------------------------------------------------------------
def simulated_copies(cdir: Path, recipe: Recipe) -> dict[int, list[torch.Tensor]]:
    """Row index in clips.csv -> the log-mels (80, frames) of its simulated copies (train.copies) that the
    recipe trains on: copies 0..n-1 of each condition in recipe.simulated_copies()."""
    from .copies import load_copy

    out: dict[int, list[torch.Tensor]] = {}
    for condition, copies in recipe.simulated_copies().items():
        for k in range(copies):
            crows, cmels = load_copy(cdir, "train", k, condition)
            for r in crows:
                out.setdefault(r["row"], []).append(clip_mel(cmels, r))
    return out


def end_to_end_model(recipe: Recipe, efficientat: str | None = None):
    """A new model of recipe.architecture, its config the architecture's defaults with recipe.arch's overrides;
    an architecture that starts from a pretrained weights file (EfficientAT mn04) reads `efficientat`, else
    $EMOTION_EFFICIENTAT, else ../shared."""
    cls = architecture_class(recipe.architecture)
    cfg = dataclasses.replace(cls.config_class(), **dict(recipe.arch))
    weights = {"weights": efficientat} if "weights" in inspect.signature(cls).parameters else {}
    return cls(cfg, len(LABELS), pretrained=True, **weights)


def fit_end_to_end(
    rows,
    mels,
    recipe: Recipe,
    teacher: torch.Tensor | None = None,
    hints: torch.Tensor | None = None,
    cdir: Path | None = None,
    efficientat: str | None = None,
):
    """cnn1d, lstm and cnn2d (EfficientAT mn04) end to end. `teacher` (n_rows, C): clip probabilities to distil from;
    `hints` (n_rows, d): teacher representations that a linear map of the model's pooled embedding learns to predict
    (mean squared error, weight recipe.hint_weight); the map is used in training only and is not part of the
    checkpoint. With simulated copies (recipe.simulated_copies(), read from `cdir`), a training window comes from one
    of its clip's copies with chance recipe.classroom_share, and validation scores the mean over clean and those
    conditions."""
    torch.manual_seed(recipe.seed)
    model = end_to_end_model(recipe, efficientat)
    inputs = frame_features if model.input_kind == "frames" else (lambda w: w)  # cnn2d-mn04 reads the log-mel
    train_idx = [i for i, r in enumerate(rows) if r["split"] == "train"]
    train = [rows[i] for i in train_idx]
    train_mels = [clip_mel(mels, r) for r in train]
    y_train = soft_targets(labels_of(train), None if teacher is None else teacher[train_idx], recipe.distill)
    weights = torch.from_numpy(sample_weights(train, recipe.dataset_power))
    val_sets = validation_sets(cdir, recipe.simulated_copies(), cached=(rows, mels))
    val_inputs = {c: inputs(v.windows) for c, v in val_sets.items()}
    copies = {}
    if recipe.simulated_copies():
        by_row = simulated_copies(cdir, recipe)
        copies = {j: by_row[i] for j, i in enumerate(train_idx) if i in by_row}
    aug = None

    def source(j: int, gen) -> torch.Tensor:
        """Training clip j's clean log-mel, or (with chance classroom_share) one of its simulated copies."""
        if j in copies and torch.rand((), generator=gen) < recipe.classroom_share:
            return copies[j][int(torch.randint(0, len(copies[j]), (), generator=gen))]
        return train_mels[j]

    def step(gen):
        nonlocal aug
        aug = aug or Augmenter(gen, strength=recipe.augment)
        idx = torch.multinomial(weights, recipe.batch, replacement=True, generator=gen)
        x = aug(torch.stack([random_window(source(j, gen), gen) for j in idx.tolist()]))
        return inputs(x), (y_train[idx] if hints is None else (y_train[idx], h_train[idx]))

    def evaluate():
        probs = {}
        for condition, v in val_sets.items():
            x = val_inputs[condition]
            p = torch.cat([torch.softmax(model(x[s : s + EVAL_BATCH]), -1) for s in range(0, len(x), EVAL_BATCH)])
            probs[condition] = clip_means(p.numpy(), v.owners, len(v.rows))
        return validation_scores(probs, val_sets["clean"].rows)

    if hints is None:
        return model, train_loop(model, model.parameters(), step, evaluate, recipe, recipe.seed, recipe.family)
    h_train = hints[train_idx]
    hint_map = nn.Linear(model.embed_dim, hints.shape[1])

    def objective(x, y):
        targets, h = y
        emb = model.embed(x)
        return classification_loss(model.head(emb), targets) + recipe.hint_weight * nn.functional.mse_loss(
            hint_map(emb), h
        )

    params = list(model.parameters()) + list(hint_map.parameters())
    return model, train_loop(model, params, step, evaluate, recipe, recipe.seed, recipe.family, objective)


# --- the trunk-cached Whisper family --------------------------------------------------------------
def trunk_caches(cdir: Path, name: str, rows, mels, trunk, recipe: Recipe):
    """The trunk caches a recipe trains on and the validation sets it is chosen on: (cached, val_sets).
    cached = clean windows + recipe.copies augmented copies (train.trunk.trunk_cache) + the simulated copies
    of recipe.simulated_copies(); val_sets = {"clean": ..., and each simulated condition trained on: ...}."""
    cached = trunk_cache(cdir, name, rows, mels, trunk, recipe.copies, recipe.augment)
    val_sets = {"clean": cached_val_set(rows, cached)}
    for condition, copies in recipe.simulated_copies().items():
        cached += simulated_trunk_cache(cdir, name, trunk, condition, copies)
        val_sets[condition] = simulated_val_set(cdir, name, rows, trunk, condition)
    return cached, val_sets


def fit_whisper(rows, mels, recipe: Recipe, cdir: Path, source: str):
    """A bag of recipe.members heads on the cached pooled encoder states, seeds recipe.seed + i."""
    from emotion_core.models.base import weights_fingerprint
    from emotion_core.models.whisper import (
        WhisperFamily,
        WhisperHead,
        WhisperHeadConfig,
        encoder_probe,
        load_encoder,
        pooled_states,
    )

    enc = load_encoder(source)
    cached, val_sets = trunk_caches(cdir, "whisper", rows, mels, lambda w: pooled_states(enc, w), recipe)
    cfg = WhisperHeadConfig(
        encoder_name=source if not Path(source).exists() else "openai/whisper-base",
        encoder_sha256=weights_fingerprint(enc),
        encoder_probe=encoder_probe(enc),
        members=recipe.members,
        n_states=recipe.encoder_layers + 1,
    )
    heads, members = [], []
    for i in range(recipe.members):
        seed = recipe.seed + i
        torch.manual_seed(seed)
        heads.append(WhisperHead(cfg, len(LABELS)))
        members.append(
            fit_from_cache(
                rows, cached, heads[-1], heads[-1].parameters(), recipe, seed, f"whisper-{i}", val_sets=val_sets
            )
        )
        log.info("whisper member %d (seed %d): val cb-UAR %.4f", i, seed, members[-1]["val"]["corpus_balanced_uar"])
    family = WhisperFamily(cfg, len(LABELS))
    family.heads = nn.ModuleList(heads)
    family.eval()
    result = {
        "val": validate_conditions(family, val_sets),
        "members": [
            {"seed": recipe.seed + i, "val_cb_uar": m["val"]["corpus_balanced_uar"], "best_epoch": m["best_epoch"]}
            for i, m in enumerate(members)
        ],
        "best_epoch": [m["best_epoch"] for m in members],
        "epoch_s": float(np.median([m["epoch_s"] for m in members])),
        "history": [m["history"] for m in members],
        "encoder_source": portable(source),
    }
    log.info("whisper bag of %d: val cb-UAR %.4f", len(members), result["val"]["corpus_balanced_uar"])
    return family, result


# --- command line -------------------------------------------------------------------------------
# --- which architecture trains how ------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """What a trainer reads besides the clips and the recipe: the cache directory, the teacher's clip
    probabilities and hint targets (None when not used), and the pretrained weights named on the command line."""

    cdir: Path
    teacher: torch.Tensor | None = None
    hints: torch.Tensor | None = None
    efficientat: str | None = None
    whisper: str | None = None


@dataclass(frozen=True)
class Trainer:
    """How an architecture trains: fit(rows, mels, recipe, job) -> (model, result); whether it learns from the
    Whisper teacher's clip probabilities (recipe.distill) and representations (recipe.hint); whether it trains
    on a trunk cache holding recipe.copies augmented copies of each training clip."""

    fit: Callable
    distils: bool = False
    hints: bool = False
    trunk_cached: bool = False


def _end_to_end(rows, mels, recipe: Recipe, job: Job):
    return fit_end_to_end(rows, mels, recipe, job.teacher, job.hints, job.cdir, job.efficientat)


def _whisper_heads(rows, mels, recipe: Recipe, job: Job):
    return fit_whisper(rows, mels, recipe, job.cdir, whisper_source(job.whisper))


# registered architecture name (Recipe.architecture) -> how train.fit trains it: the one place that tells them apart
TRAINERS = {
    "cnn1d-frames": Trainer(_end_to_end, distils=True, hints=True),
    "bilstm-frames": Trainer(_end_to_end, distils=True, hints=True),
    "efficientat-mn04-audioset": Trainer(_end_to_end, distils=True),
    "whisper-base-heads": Trainer(_whisper_heads, trunk_cached=True),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = parser()
    args = ap.parse_args(argv)
    recipe = resolve(args)
    if recipe.architecture not in TRAINERS or architecture_class(recipe.architecture).family != recipe.family:
        ap.error(
            f"--architecture {recipe.architecture!r} does not train the {recipe.family} family "
            f"(trainers: {', '.join(TRAINERS)})"
        )
    trainer = TRAINERS[recipe.architecture]
    command = "python -m train.fit " + shlex.join(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out_dir = checkpoint_dir(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the shipped checkpoints' logs live in train/logs/; an experiment's log goes beside its checkpoint
    shipped = out_dir.resolve() == DEFAULT_CHECKPOINT_DIR.resolve()
    logs = Path(__file__).resolve().parent / "logs" if shipped else out_dir
    logs.mkdir(exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        force=True,
        handlers=[logging.FileHandler(logs / f"{recipe.family}.log", mode="w"), logging.StreamHandler()],
    )
    log.info("command: %s", command)
    log.info("recipe: %s", json.dumps(dataclasses.asdict(recipe)))
    cdir = cache_dir(args.cache)
    if not (cdir / "mels.npy").exists():
        build_mels(data_dir(args.data), cdir)
    rows, mels = load_cache(cdir)
    log.info(
        "family %s seed %d: %d clips (%s)",
        recipe.family,
        recipe.seed,
        len(rows),
        {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")},
    )
    t0 = time.time()
    teacher_path = Path(args.teacher) if args.teacher else out_dir / "whisper.pt"
    teacher = teacher_targets(rows, cdir, teacher_path) if trainer.distils and recipe.distill > 0 else None
    hinted = trainer.hints and recipe.hint is not None
    hints = teacher_embeddings(rows, cdir, teacher_path, recipe.hint, recipe.hint_dims) if hinted else None
    model, result = trainer.fit(rows, mels, recipe, Job(cdir, teacher, hints, args.efficientat, args.whisper))
    power = recipe.dataset_power
    record = {
        "seed": recipe.seed,
        "command": command,
        "recipe": dataclasses.asdict(recipe),
        "train_seconds": time.time() - t0,
        "data_fingerprint": (cdir / "fingerprint.txt").read_text().strip(),
        "splits_sha256": splits_hash(),
        "balancing": "batches drawn with replacement; classes equal within a dataset, datasets by "
        + ("sqrt(clips)" if power == 0.5 else f"clips ** {power}"),
        "hyperparameters": recipe.optimisation(),
        "augmented_copies": recipe.copies if trainer.trunk_cached else None,
        "distilled_from": teacher_identity(teacher_path) if teacher is not None else None,
        "distill_weight": recipe.distill if teacher is not None else None,
        "hint": {"kind": recipe.hint, "dims": recipe.hint_dims, "weight": recipe.hint_weight} if hinted else None,
        **{k: v for k, v in result.items() if k != "history"},
        "history": result["history"],
    }
    path = out_dir / f"{recipe.family}.pt"
    save_checkpoint(path, model, DEFAULT_FEATURES, LABELS, record)
    log.info(
        "saved %s (%.1f MB); val cb-UAR %.3f", path, path.stat().st_size / 1e6, result["val"]["corpus_balanced_uar"]
    )
    print(
        json.dumps(
            {
                "family": recipe.family,
                "val_cb_uar": result["val"]["corpus_balanced_uar"],
                "val_per_dataset": {d: m["uar"] for d, m in result["val"]["per_dataset"].items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
