"""Measure every shipped model, the ensemble included, on the clips under a directory.

    python -m train.evaluate --data DIR --out FILE.json [--split test] [--condition C[,C...]|both|all]

Finds every 7-class clip under DIR with the corpus scanner (with --split test: only the speakers that
corpus/splits.csv puts in test), runs them through exactly the inference path of the app
(load_audio -> prepare_speech -> log-mel -> windows -> every family -> mean over windows) and writes
FILE.json:
  {"labels": [...], "models": {NAME: {"overall": M, "per_dataset": {DATASET: M}, "confusion": [[int]]}},
   "condition": C, "conditions": {C: {"models": {...}}}, "true_shares": {LABEL: share},
   "answer_shares": {C: {NAME: {LABEL: share}}}}
  M = {"n", "accuracy", "uar", "macro_f1"}; confusion rows = true label, columns = predicted.
  "models" holds the clean results (the classroom ones when only --condition classroom ran).
plus FILE.md (tables, corpus-balanced UAR = mean over datasets of per-dataset UAR) and FILE.png
(confusion matrices).

--condition classroom passes every clip, after load_audio, through train.classroom's deterministic
simulation of a pupil at a laptop in a classroom (room, babble of the evaluated split's speakers, HVAC noise,
laptop microphone, level and clipping, Opus): the room impulse-response bank comes from the cache directory
(`python -m train.classroom --build-bank`). --condition young gives every speaker one young voice (a child or
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

from corpus import DATASETS, select_clips
from emotion_core.audio import AudioError, load_audio
from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.paths import data_dir
from emotion_core.models.registry import FAMILIES
from emotion_core.recognizer import ENSEMBLE, Recognizer

from .metrics import clip_means, corpus_balanced_uar, evaluate_predictions

GUARD_PER_LABEL = 20
GUARD_SEED = 7
CONDITIONS = ("clean", "classroom", "young", "young+classroom")
CONDITION_SETS = {"both": ("clean", "classroom"), "all": CONDITIONS}  # --condition shorthands
MAX_ANSWER_SHARE = 0.25  # issue 24: no model gives any one emotion more than this share of its answers


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
        yield from zip(clips, pool.imap(_decode_in_worker, clips, chunksize=4))


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
    A clip's probabilities are the mean of its windows', as in the app."""
    probs: dict[str, dict[str, list[np.ndarray]]] = {cond: {} for cond in condition_fns}
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
                w = recognizer.model_windows(a[cond]).windows
                owners.extend([i] * len(w))
                wins.append(w)
            owners = np.array(owners)
            for name, p in recognizer.predict_windows(torch.cat(wins)).items():
                probs[cond].setdefault(name, []).append(clip_means(p, owners, len(group)))
        kept.extend(group)
    n_labels = len(LABELS)
    stacked = {cond: {name: np.concatenate(parts) if parts else np.zeros((0, n_labels)) for name, parts in by_name.items()}
               for cond, by_name in probs.items()}
    return stacked, kept, refused


def run_conditions(recognizer: Recognizer, clips, condition_fns: dict, batch_clips: int = 32, workers: int = 1):
    """condition_fns: {condition: None (clean) or fn(clip, audio) -> audio}.
    -> ({condition: {name: predicted index per clip}}, kept clips, refused [(path, message)])."""
    probs, kept, refused = run_probabilities(recognizer, clips, condition_fns, batch_clips, workers)
    preds = {cond: {name: p.argmax(1).tolist() for name, p in by_name.items()} for cond, by_name in probs.items()}
    return preds, kept, refused


def run(recognizer: Recognizer, clips, batch_clips: int = 32):
    """The clean condition: -> ({name: predicted index per clip}, kept clips, refused [(path, message)])."""
    preds, kept, refused = run_conditions(recognizer, clips, {"clean": None}, batch_clips)
    return preds["clean"], kept, refused


def report(preds, clips) -> dict:
    y = [LABEL_INDEX[c.label] for c in clips]
    ds = [c.dataset for c in clips]
    models = {}
    for name, p in preds.items():
        r = evaluate_predictions(y, p, ds, len(LABELS))
        models[name] = {"overall": r["overall"], "per_dataset": r["per_dataset"], "confusion": r["confusion"]}
    return {"labels": list(LABELS), "models": models}


def shares(counts) -> dict:
    """Counts per label (7,) -> {label: share of the total}."""
    counts = np.asarray(counts, dtype=float)
    return {lab: float(x / max(counts.sum(), 1)) for lab, x in zip(LABELS, counts)}


def report_conditions(preds_by_condition: dict, clips) -> dict:
    """{condition: preds} -> the report of every condition; "models" = the first condition's (clean first)."""
    per = {cond: report(p, clips)["models"] for cond, p in preds_by_condition.items()}
    first = next(iter(per))
    any_models = next(iter(per[first].values()), None)
    true_counts = np.array(any_models["confusion"]).sum(1) if any_models else np.zeros(len(LABELS))
    return {
        "labels": list(LABELS),
        "models": per[first],
        "condition": next((k for k, v in CONDITION_SETS.items() if v == tuple(per)), ",".join(per)),
        "conditions": {cond: {"models": models} for cond, models in per.items()},
        "true_shares": shares(true_counts),
        "answer_shares": {cond: {name: shares(np.array(m["confusion"]).sum(0)) for name, m in models.items()}
                          for cond, models in per.items()},
    }


def merge_reports(base: dict, new: dict) -> dict:
    """Two reports of the same clips (runs of other families or conditions) -> one, in CONDITIONS order; a
    (condition, model) in both takes the new run's result."""
    n = {m["overall"]["n"] for r in (base, new) for c in r["conditions"].values() for m in c["models"].values()}
    if len(n) != 1 or base["true_shares"] != new["true_shares"]:
        raise ValueError("the reports hold different clips; they cannot be merged")
    conds = [c for c in CONDITIONS if c in base["conditions"] or c in new["conditions"]]
    order = [*FAMILIES, ENSEMBLE]

    def ordered(d: dict) -> dict:
        return dict(sorted(d.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))

    per = {c: ordered({**base["conditions"].get(c, {}).get("models", {}), **new["conditions"].get(c, {}).get("models", {})})
           for c in conds}
    shares = {c: ordered({**base["answer_shares"].get(c, {}), **new["answer_shares"].get(c, {})}) for c in conds}
    merged = {**base, **new, "models": per[conds[0]], "conditions": {c: {"models": per[c]} for c in conds},
              "answer_shares": shares,
              "condition": next((k for k, v in CONDITION_SETS.items() if v == tuple(conds)), ",".join(conds))}
    return merged


def _model_tables(models: dict) -> list[str]:
    """Markdown: the headline table, per dataset, and the confusion of every model, for one condition."""
    lines = []
    names = list(models)
    datasets = [d for d in DATASETS if any(d in m["per_dataset"] for m in models.values())]
    lines += ["| model | corpus-balanced UAR | " + " | ".join(f"{d} UAR" for d in datasets) + " | pooled accuracy | pooled UAR | macro-F1 | n |",
              "|---|---|" + "---|" * len(datasets) + "---|---|---|---|"]
    for name in names:
        m = models[name]
        cb = corpus_balanced_uar(m["per_dataset"])
        per = " | ".join(f"{m['per_dataset'][d]['uar']:.3f}" if d in m["per_dataset"] else "-" for d in datasets)
        o = m["overall"]
        lines.append(f"| {name} | **{cb:.3f}** | {per} | {o['accuracy']:.3f} | {o['uar']:.3f} | {o['macro_f1']:.3f} | {o['n']} |")
    lines += ["", "Per dataset (accuracy / UAR / macro-F1, n):", ""]
    lines += ["| model | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for name in names:
        m = models[name]["per_dataset"]
        cells = [f"{m[d]['accuracy']:.3f} / {m[d]['uar']:.3f} / {m[d]['macro_f1']:.3f} ({m[d]['n']})" if d in m else "-" for d in datasets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in names:
        cm = models[name]["confusion"]
        lines += ["", f"Confusion of {name} (rows = true, columns = predicted):", "",
                  "| true \\ pred | " + " | ".join(LABELS) + " |", "|---|" + "---|" * len(LABELS)]
        lines += [f"| {lab} | " + " | ".join(map(str, row)) + " |" for lab, row in zip(LABELS, cm)]
    return lines


def _side_by_side(result: dict) -> list[str]:
    """Markdown: clean and classroom per family and per dataset, and the share of each model's answers."""
    conds = list(result["conditions"])
    per = {c: result["conditions"][c]["models"] for c in conds}
    names = list(per[conds[0]])
    datasets = [d for d in DATASETS if any(d in m["per_dataset"] for m in per[conds[0]].values())]
    vs = " / ".join(conds)
    lines = [f"Corpus-balanced UAR, {vs}:", "",
             "| model | " + " | ".join(f"cb-UAR {c}" for c in conds) + " | " + " | ".join(f"{d} UAR {vs}" for d in datasets)
             + f" | pooled accuracy {vs} |", "|---|" + "---|" * (len(conds) + len(datasets) + 1)]
    for name in names:
        cbs = " | ".join(f"**{corpus_balanced_uar(per[c][name]['per_dataset']):.3f}**" for c in conds)
        ds = " | ".join(" / ".join(f"{per[c][name]['per_dataset'][d]['uar']:.3f}" if d in per[c][name]["per_dataset"] else "-"
                                   for c in conds) for d in datasets)
        acc = " / ".join(f"{per[c][name]['overall']['accuracy']:.3f}" for c in conds)
        lines.append(f"| {name} | {cbs} | {ds} | {acc} |")
    return lines


def _answer_shares(result: dict) -> list[str]:
    lines = [(f"Share of each model's answers per emotion, beside the true class shares (issue 15: no model should "
              f"give any one emotion more than {MAX_ANSWER_SHARE:.0%} of its answers):"), "",
             "| condition | model | " + " | ".join(LABELS) + " | largest share |", "|---|---|" + "---|" * (len(LABELS) + 1)]
    true = result["true_shares"]
    lines.append("| - | *true classes* | " + " | ".join(f"{true[lab]:.1%}" for lab in LABELS) + f" | {max(true.values()):.1%} |")
    for cond, models in result["answer_shares"].items():
        for name, sh in models.items():
            top = max(sh, key=sh.get)
            flag = " (over)" if sh[top] > MAX_ANSWER_SHARE else ""
            lines.append(f"| {cond} | {name} | " + " | ".join(f"{sh[lab]:.1%}" for lab in LABELS)
                         + f" | {top} {sh[top]:.1%}{flag} |")
    return lines


def markdown(result: dict, title: str) -> str:
    lines = [f"# {title}", "", "Corpus-balanced UAR = mean over datasets of the per-dataset UAR (headline metric).", ""]
    conditions = result.get("conditions") or {"clean": {"models": result["models"]}}
    if len(conditions) > 1:
        lines += _side_by_side(result) + [""]
    if "answer_shares" in result:
        lines += _answer_shares(result) + [""]
    for cond, c in conditions.items():
        if len(conditions) > 1 or cond != "clean":
            lines += [f"## Condition: {cond}", ""]
        lines += _model_tables(c["models"]) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def confusion_figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = result.get("conditions") or {"clean": {"models": result["models"]}}
    names = list(result["models"])
    fig, axes = plt.subplots(len(conditions), len(names), figsize=(3.6 * len(names), 3.8 * len(conditions)), squeeze=False)
    short = [lab[:4] for lab in LABELS]
    for row, (cond, c) in zip(axes, conditions.items()):
        for ax, name in zip(row, names):
            cm = np.array(c["models"][name]["confusion"], dtype=float)
            norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            for i in range(len(LABELS)):
                for j in range(len(LABELS)):
                    if cm[i].sum() > 0:
                        ax.text(j, i, f"{norm[i, j]:.2f}".lstrip("0"), ha="center", va="center", fontsize=6,
                                color="white" if norm[i, j] > 0.5 else "black")
            cb = corpus_balanced_uar(c["models"][name]["per_dataset"])
            label = f"{name}, {cond}" if len(conditions) > 1 or cond != "clean" else name
            ax.set_title(f"{label} (cb-UAR {cb:.2f})", fontsize=9)
            ax.set_xticks(range(len(LABELS)), short, rotation=90, fontsize=7)
            ax.set_yticks(range(len(LABELS)), short, fontsize=7)
            ax.set_xlabel("predicted", fontsize=8)
        row[0].set_ylabel("true (row-normalised)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def classroom_condition(root: Path, clips, split: str | None, guard: bool, cache: str | None):
    """The classroom simulation of this evaluation: the bank from the cache, the babble pool from the clips
    of the evaluated split (the guard set: the test speakers; no split: the evaluated clips themselves)."""
    from .cache import cache_dir
    from .classroom import BabblePool, ClassroomCondition, load_bank

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
    made = {"clean": None, "classroom": classroom, "young": young,
            "young+classroom": ChainCondition(young, classroom) if young and classroom else None}
    return {n: made[n] for n in CONDITIONS if n in names}


def parse_conditions(text: str) -> tuple[str, ...]:
    names = CONDITION_SETS.get(text) or tuple(t.strip() for t in text.split(","))
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown condition {', '.join(unknown)}: choose from "
                                         f"{', '.join(CONDITIONS + tuple(CONDITION_SETS))}")
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate every shipped model on the clips under a directory.")
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--out", required=True, help="JSON file to write; .md and .png are written beside it")
    ap.add_argument("--split", choices=["train", "val", "test"], help="only the speakers of this split")
    ap.add_argument("--guard", action="store_true", help="only the fixed 140-clip quality-guard set of test speakers")
    ap.add_argument("--condition", type=parse_conditions, default=("clean",),
                    help="clean, classroom (train.classroom), young (train.voice_age), young+classroom, a comma "
                    "list of them, both (clean,classroom) or all (the four side by side)")
    ap.add_argument("--cache", help="cache directory holding the classroom bank (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--workers", type=int, default=1, help="processes that decode and simulate clips")
    ap.add_argument("--checkpoints", help="checkpoint directory (default $EMOTION_CHECKPOINTS or ./checkpoints)")
    ap.add_argument("--whisper", help="Whisper encoder: local directory or Hub id (default $EMOTION_WHISPER)")
    ap.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--families", help="only these outputs, comma-separated (e.g. cnn1d,lstm); default: every one")
    ap.add_argument("--add-to", help="a report of the same clips (e.g. of other families or conditions) that this "
                    "run's results are added to (replacing the same condition and model); written to --out")
    ap.add_argument("--fast", choices=["on", "off"], default="off", help="on: the CPU fast path (EMOTION_FAST: the Whisper "
                    "encoder with int8 linear layers); default off: the models exactly as trained, as the app runs them")
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
        print("nothing to evaluate: " + ("every clip was refused" if not kept else "no model could be loaded"), file=sys.stderr)
        return 2
    result = report_conditions(preds, kept)
    result["whisper_int8"] = rec.fast
    if "young" in condition_fns:  # who each speaker became (train.voice_age)
        result["young_voices"] = {s: dataclasses.asdict(v) for s, v in condition_fns["young"].voices.items()
                                  if s in {c.speaker for c in kept}}
    if args.add_to and Path(args.add_to).is_file():
        result = merge_reports(json.loads(Path(args.add_to).read_text()), result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    title = f"Evaluation on {len(kept)} clips" + (" of the quality-guard set" if args.guard else f" of the {args.split} speakers" if args.split else "")
    if tuple(condition_fns) != ("clean",):
        title += ", " + " and ".join(condition_fns)
    out.with_suffix(".md").write_text(markdown(result, title))
    confusion_figure(result, out.with_suffix(".png"))
    for cond, c in result["conditions"].items():
        for name, m in c["models"].items():
            print(f"{cond:9s} {name:9s} corpus-balanced UAR {corpus_balanced_uar(m['per_dataset']):.3f}  "
                  f"pooled accuracy {m['overall']['accuracy']:.3f}  n {m['overall']['n']}")
    print(f"{len(clips)} clips in {seconds:.0f} s ({seconds / len(clips) * 1000:.0f} ms a clip, "
          f"{len(condition_fns)} condition(s), {args.workers} worker(s))")
    print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
