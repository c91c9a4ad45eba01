"""Measure every shipped model, the ensemble included, on the clips under a directory.

    python -m train.evaluate --data DIR --out FILE.json [--split test]

Finds every 7-class clip under DIR with the corpus scanner (with --split test: only the speakers that
corpus/splits.csv puts in test), runs them through exactly the inference path of the app
(load_audio -> prepare_speech -> log-mel -> windows -> every family -> mean over windows) and writes
FILE.json:
  {"labels": [...], "models": {NAME: {"overall": M, "per_dataset": {DATASET: M}, "confusion": [[int]]}}}
  M = {"n", "accuracy", "uar", "macro_f1"}; confusion rows = true label, columns = predicted.
plus FILE.md (tables, corpus-balanced UAR = mean over datasets of per-dataset UAR) and FILE.png
(confusion matrices).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from corpus import DATASETS, SPLITS_CSV, read_splits, scan
from emotion_core.audio import AudioError, load_audio
from emotion_core.labels import LABEL_INDEX, LABELS
from emotion_core.paths import data_dir
from emotion_core.recognizer import Recognizer

from .metrics import corpus_balanced_uar, evaluate_predictions


GUARD_PER_LABEL = 20
GUARD_SEED = 7


def select_clips(root: Path, split: str | None, splits_csv: Path = SPLITS_CSV):
    clips, _skipped = scan(root)
    if split:
        assignment = read_splits(splits_csv)
        clips = [c for c in clips if assignment.get(c.speaker) == split]
    return clips


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


def run(recognizer: Recognizer, clips, batch_clips: int = 32):
    """-> ({name: predicted index per clip}, kept clips, refused [(path, message)])."""
    preds: dict[str, list[int]] = {}
    kept, refused = [], []
    for s in tqdm(range(0, len(clips), batch_clips), desc="evaluate", unit="batch", mininterval=5):
        wins, owners, group = [], [], []
        for c in clips[s : s + batch_clips]:
            try:
                w = recognizer.model_windows(load_audio(c.path)).windows
            except AudioError as e:
                refused.append((c.path, str(e)))
                continue
            owners.extend([len(group)] * len(w))
            wins.append(w)
            group.append(c)
        if not group:
            continue
        owners = np.array(owners)
        probs = recognizer.predict_windows(torch.cat(wins))
        for name, p in probs.items():
            clip_p = np.zeros((len(group), p.shape[1]))
            np.add.at(clip_p, owners, p)
            preds.setdefault(name, []).extend(clip_p.argmax(1).tolist())
        kept.extend(group)
    return preds, kept, refused


def report(preds, clips) -> dict:
    y = [LABEL_INDEX[c.label] for c in clips]
    ds = [c.dataset for c in clips]
    models = {}
    for name, p in preds.items():
        r = evaluate_predictions(y, p, ds, len(LABELS))
        models[name] = {"overall": r["overall"], "per_dataset": r["per_dataset"], "confusion": r["confusion"]}
    return {"labels": list(LABELS), "models": models}


def markdown(result: dict, title: str) -> str:
    lines = [f"# {title}", "", "Corpus-balanced UAR = mean over datasets of the per-dataset UAR (headline metric).", ""]
    names = list(result["models"])
    datasets = [d for d in DATASETS if any(d in m["per_dataset"] for m in result["models"].values())]
    lines += ["| model | corpus-balanced UAR | " + " | ".join(f"{d} UAR" for d in datasets) + " | pooled accuracy | pooled UAR | macro-F1 | n |",
              "|---|---|" + "---|" * len(datasets) + "---|---|---|---|"]
    for name in names:
        m = result["models"][name]
        cb = corpus_balanced_uar(m["per_dataset"])
        per = " | ".join(f"{m['per_dataset'][d]['uar']:.3f}" if d in m["per_dataset"] else "-" for d in datasets)
        o = m["overall"]
        lines.append(f"| {name} | **{cb:.3f}** | {per} | {o['accuracy']:.3f} | {o['uar']:.3f} | {o['macro_f1']:.3f} | {o['n']} |")
    lines += ["", "Per dataset (accuracy / UAR / macro-F1, n):", ""]
    lines += ["| model | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for name in names:
        m = result["models"][name]["per_dataset"]
        cells = [f"{m[d]['accuracy']:.3f} / {m[d]['uar']:.3f} / {m[d]['macro_f1']:.3f} ({m[d]['n']})" if d in m else "-" for d in datasets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in names:
        cm = result["models"][name]["confusion"]
        lines += ["", f"Confusion of {name} (rows = true, columns = predicted):", "",
                  "| true \\ pred | " + " | ".join(LABELS) + " |", "|---|" + "---|" * len(LABELS)]
        lines += [f"| {lab} | " + " | ".join(map(str, row)) + " |" for lab, row in zip(LABELS, cm)]
    return "\n".join(lines) + "\n"


def confusion_figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["models"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.8), squeeze=False)
    short = [lab[:4] for lab in LABELS]
    for ax, name in zip(axes[0], names):
        cm = np.array(result["models"][name]["confusion"], dtype=float)
        norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(LABELS)):
            for j in range(len(LABELS)):
                if cm[i].sum() > 0:
                    ax.text(j, i, f"{norm[i, j]:.2f}".lstrip("0"), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
        cb = corpus_balanced_uar(result["models"][name]["per_dataset"])
        ax.set_title(f"{name} (cb-UAR {cb:.2f})", fontsize=9)
        ax.set_xticks(range(len(LABELS)), short, rotation=90, fontsize=7)
        ax.set_yticks(range(len(LABELS)), short, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
    axes[0][0].set_ylabel("true (row-normalised)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate every shipped model on the clips under a directory.")
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--out", required=True, help="JSON file to write; .md and .png are written beside it")
    ap.add_argument("--split", choices=["train", "val", "test"], help="only the speakers of this split")
    ap.add_argument("--guard", action="store_true", help="only the fixed 140-clip quality-guard set of test speakers")
    ap.add_argument("--checkpoints", help="checkpoint directory (default $EMOTION_CHECKPOINTS or ./checkpoints)")
    ap.add_argument("--whisper", help="Whisper encoder: local directory or Hub id (default $EMOTION_WHISPER)")
    ap.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    args = ap.parse_args(argv)
    root = data_dir(args.data)
    clips = guard_clips(root) if args.guard else select_clips(root, args.split)
    if not clips:
        print(f"no clips found under {root}" + (f" for split {args.split}" if args.split else ""), file=sys.stderr)
        return 2
    rec = Recognizer(args.checkpoints, args.device, args.whisper)
    for fam, why in rec.unavailable.items():
        print(f"not evaluated: {fam}: {why}", file=sys.stderr)
    preds, kept, refused = run(rec, clips)
    for path, why in refused:
        print(f"refused {path}: {why}", file=sys.stderr)
    if not kept or not rec.models:
        print("nothing to evaluate: " + ("every clip was refused" if not kept else "no model could be loaded"), file=sys.stderr)
        return 2
    result = report(preds, kept)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    title = f"Evaluation on {len(kept)} clips" + (" of the quality-guard set" if args.guard else f" of the {args.split} speakers" if args.split else "")
    out.with_suffix(".md").write_text(markdown(result, title))
    confusion_figure(result, out.with_suffix(".png"))
    for name, m in result["models"].items():
        print(f"{name:9s} corpus-balanced UAR {corpus_balanced_uar(m['per_dataset']):.3f}  "
              f"pooled accuracy {m['overall']['accuracy']:.3f}  n {m['overall']['n']}")
    print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
