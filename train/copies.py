"""Simulated copies of cached clips: the classroom, a young voice, or a young voice in a classroom.

    python -m train.copies --condition classroom --copies 1 --split train   # needs the bank (train.classroom)
    python -m train.copies --condition young --copies 1 --split val         # copy 0 = train.evaluate's clips
    python -m train.copies --condition young+classroom --copies 1 --split train

Each clip of the split goes load_audio -> [young voice (train.voice_age), copy k's voice of its speaker] ->
[speed perturbation (SPEED_FACTORS), train split only] -> [classroom (train.classroom.simulate)] ->
prepare_speech -> log_mel, and the log-mels are stored beside the clean cache as <stem>_mels_<k>.npy +
<stem>_clips_<k>.csv, where stem is the condition (+ "_<split>" for a split other than train): classroom_mels_0,
classroom_val_mels_0, young_mels_0, young_classroom_val_mels_0, ... Each csv row has the columns of clips.csv
(its own offset and frames into the new .npy) plus `row`, the row's index in clips.csv. Validation copy 0 (no
speed perturbation) is exactly what `train.evaluate --split val --condition C` hears.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

from corpus.conditions import SIMULATED
from emotion_core.audio import AudioError, load_audio, prepare_speech


def copy_stem(condition: str, split: str) -> str:
    base = condition.replace("+", "_")
    return base if split == "train" else f"{base}_{split}"


def copy_files(cache: Path, split: str, copy: int, condition: str = "classroom") -> tuple[Path, Path]:
    """(mels .npy, rows .csv) of one copy of one split under one simulated condition."""
    stem = copy_stem(condition, split)
    return Path(cache) / f"{stem}_mels_{copy}.npy", Path(cache) / f"{stem}_clips_{copy}.csv"


def load_copy(cache: Path, split: str, copy: int, condition: str = "classroom"):
    """(rows, mels) like train.cache.load_cache; rows carry int offset, frames and row (index in clips.csv)."""
    mels_path, rows_path = copy_files(cache, split, copy, condition)
    with open(rows_path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["offset"], r["frames"], r["row"] = int(r["offset"]), int(r["frames"]), int(r["row"])
    return rows, np.load(mels_path, mmap_mode="r")


_WORKER: dict = {}


def _init_worker(settings: dict):
    import torch

    torch.set_num_threads(1)
    _WORKER.clear()
    _WORKER.update(settings)


def _copy_one(row: dict):
    """One clip -> float16 (frames, 80) log-mel of its simulated copy, or an error message."""
    import torch

    from emotion_core.features import DEFAULT_FEATURES, log_mel

    from .classroom import clip_rng, simulate, speed_perturb
    from .voice_age import make_young

    w = _WORKER
    rng = clip_rng(row["path"], w["copy"])
    try:
        audio = load_audio(Path(w["root"]) / row["path"])
        if w["voices"] is not None:
            audio = make_young(audio, w["voices"][row["speaker"]])
        if w["speed"]:
            audio = speed_perturb(audio, rng)
        if w["bank"] is not None:
            audio = simulate(audio, rng, w["bank"], w["pool"], row["speaker"])
        audio = prepare_speech(audio)
    except AudioError as e:
        return str(e)
    return log_mel(torch.from_numpy(audio), DEFAULT_FEATURES).T.numpy().astype(np.float16)


def build_copies(
    root: Path,
    cache: Path,
    split: str,
    copies: list[int],
    condition: str = "classroom",
    workers: int = 1,
    limit: int | None = None,
) -> None:
    """Write copies of every cached clip of `split` under `condition` (see the module docstring)."""
    from multiprocessing import get_context

    from tqdm import tqdm

    from corpus import select_clips

    from .cache import FIELDS, load_cache, write_mels
    from .classroom import BabblePool
    from .rooms import load_bank
    from .voice_age import speaker_voices

    all_rows, _ = load_cache(cache)
    rows = [dict(r, row=i) for i, r in enumerate(all_rows) if r["split"] == split][:limit]
    clips = select_clips(root, split)
    bank = pool = None
    if "classroom" in condition:
        bank = load_bank(cache)
        t = time.perf_counter()
        pool = BabblePool.from_clips(clips, split)
        print(
            f"babble pool: {len(pool.audio)} clips of {len(set(pool.speakers))} {split} speakers "
            f"({time.perf_counter() - t:.0f} s)",
            flush=True,
        )
    for copy in copies:
        voices = speaker_voices(clips, copy) if "young" in condition else None
        out_rows, mels, offset, t = [], [], 0, time.perf_counter()
        settings = dict(bank=bank, pool=pool, voices=voices, root=str(root), copy=copy, speed=split == "train")
        if workers > 1:
            with get_context("fork").Pool(workers, _init_worker, (settings,)) as p:
                results = list(
                    tqdm(
                        p.imap(_copy_one, rows, chunksize=8),
                        total=len(rows),
                        mininterval=30,
                        desc=f"{condition} {split} copy {copy}",
                    )
                )
        else:
            _init_worker(settings)
            results = [_copy_one(r) for r in tqdm(rows, mininterval=30, desc=f"{condition} {split} copy {copy}")]
        for r, lm in zip(rows, results, strict=False):
            if isinstance(lm, str):
                print(f"refused {r['path']}: {lm}")
                continue
            out_rows.append({**{k: r[k] for k in FIELDS}, "offset": offset, "frames": lm.shape[0], "row": r["row"]})
            mels.append(lm)
            offset += lm.shape[0]
        mels_path, rows_path = copy_files(cache, split, copy, condition)
        write_mels(mels_path, rows_path, out_rows, mels, FIELDS + ["row"])
        s = time.perf_counter() - t
        print(
            f"wrote {mels_path.name} + {rows_path.name}: {len(out_rows)} clips in {s:.0f} s "
            f"({s / max(len(rows), 1) * 1000:.0f} ms a clip)",
            flush=True,
        )


def main(argv=None) -> int:
    from emotion_core.paths import data_dir

    from .cache import cache_dir

    ap = argparse.ArgumentParser(description="Simulated copies of the cached clips of one split.")
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--cache", help="feature cache directory (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--condition", choices=SIMULATED, default="classroom")
    ap.add_argument("--copies", type=int, default=1, help="write copies 0..K-1 of every clip of --split")
    ap.add_argument("--first-copy", type=int, default=0, help="start numbering the copies here")
    ap.add_argument(
        "--split",
        choices=["train", "val"],
        default="train",
        help="test copies are not made: train.evaluate simulates them",
    )
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--limit", type=int, help="only the first N clips (timing)")
    args = ap.parse_args(argv)
    build_copies(
        data_dir(args.data),
        cache_dir(args.cache),
        args.split,
        list(range(args.first_copy, args.first_copy + args.copies)),
        args.condition,
        args.workers,
        args.limit,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
