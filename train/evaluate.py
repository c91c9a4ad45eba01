"""Measure every shipped model (and the ensemble, when it mixes two or more) on the clips under a directory.

    python -m train.evaluate --data DIR --out FILE.json [--split test] [--condition C[,C...]|both|all]

Finds every 7-class clip under DIR with the corpus scanner (with --split test: only the speakers that
corpus/splits.csv puts in test), runs them through exactly the inference path of the app
(load_audio -> prepare_speech -> log-mel -> Silero VAD -> windows -> every family -> mean over windows; a clip the
app refuses for too little speech gets no answer, which counts as a miss for every model) and writes
FILE.json:
  {"labels": [...], "models": {NAME: {"overall": M, "per_dataset": {DATASET: M}, "confusion": [[int]], "no_answer": int,
                                   "per_sex": {SEX: {"overall": M, "per_dataset": {...}}}}},
   "condition": C, "conditions": {C: {"models": {...}}}, "true_shares": {LABEL: share},
   "answer_shares": {C: {NAME: {LABEL: share}}}}
  M = {"n", "accuracy", "uar", "macro_f1"}; confusion rows = true label, columns = predicted (clips without an
  answer are left out of it; "no_answer" counts them per model).
  "models" holds the clean results (the classroom ones when only --condition classroom ran).
plus FILE.md (tables, corpus-balanced UAR = mean over datasets of per-dataset UAR) and FILE.png
(confusion matrices).

--condition classroom passes every clip, after load_audio, through train.classroom's deterministic
simulation of a pupil at a laptop in a classroom (room, babble of the evaluated split's speakers, HVAC noise,
laptop microphone, level and clipping, Opus): the room impulse-response bank comes from the cache directory
(`python -m train.rooms --build-bank`). --condition young gives every speaker one young voice (a child or
teenager of their sex; train.voice_age) and young+classroom puts that voice in the classroom. Several
conditions (a comma list; `both` = clean,classroom; `all` = all four) decode each clip once and are reported
side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from corpus import select_clips
from emotion_core.audio import AudioError, load_audio
from emotion_core.labels import LABELS
from emotion_core.paths import data_dir
from emotion_core.prediction import ENSEMBLE
from emotion_core.recognizer import NoSpeechError, Recognizer
from emotion_core.vad import speech_activity

from .metrics import NO_ANSWER, clip_means, corpus_balanced_uar
from .report import CONDITION_SETS, CONDITIONS, confusion_figure, markdown, merge_reports, report_conditions

GUARD_PER_LABEL = 20
GUARD_SEED = 7


def guard_clips(root: Path) -> list:
    """The fixed quality-guard set: GUARD_PER_LABEL clips per label from the test speakers, drawn with
    GUARD_SEED from the sorted clip list (140 clips for 7 labels)."""
    import random

    rng = random.Random(GUARD_SEED)
    clips = select_clips(root, "test")
    out = []
    for label in LABELS:
        pool = sorted((c for c in clips if c.label == label), key=lambda c: c.path)
        out.extend(rng.sample(pool, min(GUARD_PER_LABEL, len(pool))))
    return out


def _decode(clip, condition_fns: dict):
    """One clip -> {condition: 16 kHz audio}, decoded once; or the AudioError message."""
    try:
        audio = load_audio(clip.path)
        return {name: fn(clip, audio) if fn else audio for name, fn in condition_fns.items()}
    except AudioError as e:
        return str(e)


_WORKER_FNS: dict = {}


def _init_worker(condition_fns):
    torch.set_num_threads(1)
    _WORKER_FNS.update(condition_fns)


def _decode_in_worker(clip):
    return _decode(clip, _WORKER_FNS)


def decoded_clips(clips, condition_fns: dict, workers: int = 1):
    """Yield (clip, {condition: audio} or error message) in clip order; decoding and simulation run in
    `workers` processes (spawned: the parent's torch threads are not inherited) when workers > 1."""
    if workers <= 1:
        for c in clips:
            yield c, _decode(c, condition_fns)
        return
    from multiprocessing import get_context

    with get_context("spawn").Pool(workers, _init_worker, (condition_fns,)) as pool:
        yield from zip(clips, pool.imap(_decode_in_worker, clips, chunksize=4), strict=False)


def _batches(items, n: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def run_probabilities(recognizer: Recognizer, clips, condition_fns: dict, batch_clips: int = 32, workers: int = 1):
    """condition_fns: {condition: None (clean) or fn(clip, audio) -> audio}.
    -> ({condition: {name: (n_kept, n_labels) clip probabilities}}, kept clips, refused [(path, message)]).
    A clip's probabilities are the mean of its windows', cut as the app cuts them (Silero VAD: windows over the
    speech it finds); a clip the app refuses for too little speech in a condition has NaN probabilities there."""
    probs: dict[str, dict[str, list[np.ndarray]]] = {cond: {} for cond in condition_fns}
    names = list(recognizer.models) + ([ENSEMBLE] if recognizer.has_ensemble else [])
    kept, refused = [], []
    stream = decoded_clips(clips, condition_fns, workers)
    n_batches = -(-len(clips) // batch_clips)
    for batch in tqdm(_batches(stream, batch_clips), total=n_batches, desc="evaluate", unit="batch", mininterval=5):
        group, audios = [], []
        for c, out in batch:
            if isinstance(out, str):
                refused.append((c.path, out))
                continue
            group.append(c)
            audios.append(out)
        if not group:
            continue
        for cond in condition_fns:
            wins, owners = [], []
            for i, a in enumerate(audios):
                try:  # the app's windows: over the speech Silero finds, or its refusal
                    w = recognizer.model_windows(a[cond], speech_activity).windows
                except NoSpeechError:
                    continue
                owners.extend([i] * len(w))
                wins.append(w)
            owners = np.array(owners, dtype=int)
            answered = np.bincount(owners, minlength=len(group)) > 0
            out = (
                recognizer.predict_windows(torch.cat(wins)) if wins else {n: np.zeros((0, len(LABELS))) for n in names}
            )
            for name, p in out.items():
                means = clip_means(p, owners, len(group))
                means[~answered] = np.nan  # no answer: the app refused the clip (too little speech)
                probs[cond].setdefault(name, []).append(means)
        kept.extend(group)
    n_labels = len(LABELS)
    stacked = {
        cond: {name: np.concatenate(parts) if parts else np.zeros((0, n_labels)) for name, parts in by_name.items()}
        for cond, by_name in probs.items()
    }
    return stacked, kept, refused


def run_conditions(recognizer: Recognizer, clips, condition_fns: dict, batch_clips: int = 32, workers: int = 1):
    """condition_fns: {condition: None (clean) or fn(clip, audio) -> audio}.
    -> ({condition: {name: predicted index per clip}}, kept clips, refused [(path, message)])."""
    probs, kept, refused = run_probabilities(recognizer, clips, condition_fns, batch_clips, workers)
    preds = {
        cond: {
            name: np.where(np.isnan(p).any(1), NO_ANSWER, np.nan_to_num(p).argmax(1)).tolist()
            for name, p in by_name.items()
        }
        for cond, by_name in probs.items()
    }
    return preds, kept, refused


def run(recognizer: Recognizer, clips, batch_clips: int = 32):
    """The clean condition: -> ({name: predicted index per clip}, kept clips, refused [(path, message)])."""
    preds, kept, refused = run_conditions(recognizer, clips, {"clean": None}, batch_clips)
    return preds["clean"], kept, refused


def classroom_condition(root: Path, clips, split: str | None, guard: bool, cache: str | None):
    """The classroom simulation of this evaluation: the bank from the cache, the babble pool from the clips
    of the evaluated split (the guard set: the test speakers; no split: the evaluated clips themselves)."""
    from .cache import cache_dir
    from .classroom import BabblePool, ClassroomCondition
    from .rooms import load_bank

    bank = load_bank(cache_dir(cache))
    pool_split = "test" if guard else split
    pool_clips = select_clips(root, pool_split) if pool_split else clips
    return ClassroomCondition(root, bank, BabblePool.from_clips(pool_clips, pool_split))


def young_condition(root: Path, clips, split: str | None, guard: bool):
    """Every evaluated speaker's young voice (train.voice_age, copy 0), its calm F0 taken from the speaker's
    neutral clips of the evaluated split (the guard set: the test speakers; no split: the evaluated clips)."""
    from .voice_age import YoungCondition

    pool_split = "test" if guard else split
    return YoungCondition.from_clips(select_clips(root, pool_split) if pool_split else clips)


def condition_functions(names, root: Path, clips, split: str | None, guard: bool, cache: str | None) -> dict:
    """{condition: None (clean) or fn(clip, audio) -> audio} for the named conditions, in CONDITIONS order."""
    from .voice_age import ChainCondition

    classroom = young = None
    if any("classroom" in n for n in names):
        classroom = classroom_condition(root, clips, split, guard, cache)
    if any("young" in n for n in names):
        young = young_condition(root, clips, split, guard)
    made = {
        "clean": None,
        "classroom": classroom,
        "young": young,
        "young+classroom": ChainCondition(young, classroom) if young and classroom else None,
    }
    return {n: made[n] for n in CONDITIONS if n in names}


def parse_conditions(text: str) -> tuple[str, ...]:
    names = CONDITION_SETS.get(text) or tuple(t.strip() for t in text.split(","))
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown condition {', '.join(unknown)}: choose from {', '.join(CONDITIONS + tuple(CONDITION_SETS))}"
        )
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate every shipped model on the clips under a directory.")
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--out", required=True, help="JSON file to write; .md and .png are written beside it")
    ap.add_argument("--split", choices=["train", "val", "test"], help="only the speakers of this split")
    ap.add_argument("--guard", action="store_true", help="only the fixed 140-clip quality-guard set of test speakers")
    ap.add_argument(
        "--condition",
        type=parse_conditions,
        default=("clean",),
        help="clean, classroom (train.classroom), young (train.voice_age), young+classroom, a comma "
        "list of them, both (clean,classroom) or all (the four side by side)",
    )
    ap.add_argument(
        "--cache", help="cache directory holding the classroom bank (default $EMOTION_CACHE_DIR or ./cache)"
    )
    ap.add_argument("--workers", type=int, default=1, help="processes that decode and simulate clips")
    ap.add_argument("--checkpoints", help="checkpoint directory (default $EMOTION_CHECKPOINTS or ./checkpoints)")
    ap.add_argument("--whisper", help="Whisper encoder: local directory or Hub id (default $EMOTION_WHISPER)")
    ap.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--families", help="only these outputs, comma-separated (e.g. cnn1d,lstm); default: every one")
    ap.add_argument(
        "--add-to",
        help="a report of the same clips (e.g. of other families or conditions) that this "
        "run's results are added to (replacing the same condition and model); written to --out",
    )
    ap.add_argument(
        "--fast",
        choices=["on", "off"],
        default="off",
        help="on: the CPU fast path (EMOTION_FAST: the Whisper "
        "encoder with int8 linear layers); default off: the models exactly as trained, as the app runs them",
    )
    args = ap.parse_args(argv)
    root = data_dir(args.data)
    clips = guard_clips(root) if args.guard else select_clips(root, args.split)
    if not clips:
        print(f"no clips found under {root}" + (f" for split {args.split}" if args.split else ""), file=sys.stderr)
        return 2
    try:
        condition_fns = condition_functions(args.condition, root, clips, args.split, args.guard, args.cache)
    except (FileNotFoundError, ValueError) as e:
        print(e, file=sys.stderr)
        return 2
    rec = Recognizer(args.checkpoints, args.device, args.whisper, args.fast == "on")
    if args.families:  # the others are not run (their results come from another run: --add-to)
        rec.models = {k: m for k, m in rec.models.items() if k in args.families.split(",")}
    for fam, why in rec.unavailable.items():
        print(f"not evaluated: {fam}: {why}", file=sys.stderr)
    t = time.perf_counter()
    preds, kept, refused = run_conditions(rec, clips, condition_fns, workers=args.workers)
    seconds = time.perf_counter() - t
    for path, why in refused:
        print(f"refused {path}: {why}", file=sys.stderr)
    if not kept or not rec.models:
        print(
            "nothing to evaluate: " + ("every clip was refused" if not kept else "no model could be loaded"),
            file=sys.stderr,
        )
        return 2
    result = report_conditions(preds, kept)
    result["whisper_int8"] = rec.fast
    if "young" in condition_fns:  # who each speaker became (train.voice_age)
        result["young_voices"] = {
            s: dataclasses.asdict(v) for s, v in condition_fns["young"].voices.items() if s in {c.speaker for c in kept}
        }
    if args.add_to and Path(args.add_to).is_file():
        result = merge_reports(json.loads(Path(args.add_to).read_text()), result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    title = f"Evaluation on {len(kept)} clips" + (
        " of the quality-guard set" if args.guard else f" of the {args.split} speakers" if args.split else ""
    )
    if tuple(condition_fns) != ("clean",):
        title += ", " + " and ".join(condition_fns)
    out.with_suffix(".md").write_text(markdown(result, title))
    confusion_figure(result, out.with_suffix(".png"))
    for cond, c in result["conditions"].items():
        for name, m in c["models"].items():
            print(
                f"{cond:9s} {name:9s} corpus-balanced UAR {corpus_balanced_uar(m['per_dataset']):.3f}  "
                f"pooled accuracy {m['overall']['accuracy']:.3f}  n {m['overall']['n']}"
            )
    print(
        f"{len(clips)} clips in {seconds:.0f} s ({seconds / len(clips) * 1000:.0f} ms a clip, "
        f"{len(condition_fns)} condition(s), {args.workers} worker(s))"
    )
    print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
