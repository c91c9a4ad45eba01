"""Pick the example clips that ship with the app, run the shipped models on them, and write examples/.

    python -m webapp.curate_examples --data ../shared/data/audio          # pick, copy, answer, write
    python -m webapp.curate_examples --refresh                             # new model answers, same clips
    python -m webapp.curate_examples --pools                               # (re)divide the clips into the two pools

Picking (seeded, SEED): clips of the test-split speakers (corpus/splits.csv) of RAVDESS and CREMA-D only
(their licences allow redistribution with attribution; TESS and SAVEE never), 2-4 s long, seven emotions.
For each (emotion, dataset) CANDIDATES_PER_GROUP clips are drawn; every shipped model answers each one;
then per emotion one clip that every model recognises, one that fools every model (or as many as any
candidate does) and one on which the models disagree, alternating the datasets and preferring unused
speakers. The clips are copied byte for byte under their official names; examples/examples.json stores,
per clip, its facts, the CREMA-D listeners' votes (crema_d_human_votes.csv beside the data directory) and
each model's answer; examples/ATTRIBUTION.md names dataset, authors, licence and file of each clip.

Pools: per emotion one clip is listed on Try it ("try") and the others are the guessing game's ("game"),
never listed, so that the game cannot give its answers away. The Try-it clip of the i-th emotion is of
KINDS[i % 3] where there is one (the list shows every kind), datasets alternating.

--refresh reruns the models on the clips already in examples/ (after retraining) and rewrites only the
answers, so the captions ("every model right", "fools every model") stay true; the pools stay as they are.
--pools divides the clips already in examples/ into the pools again, without running any model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
from pathlib import Path

import soundfile as sf

from emotion_core.calibration import CALIBRATION_FILE
from emotion_core.labels import LABELS
from emotion_core.recognizer import ENSEMBLE_FILE
from webapp.examples import EXAMPLES_DIR, EXAMPLES_JSON, GAME_POOL, MAX_SHIPPED_CLIPS, TRY_POOL, human_votes

SEED = 17
DATASETS = ("CREMA-D", "RAVDESS")  # redistributable with attribution; TESS and SAVEE are not
MIN_SECONDS, MAX_SECONDS = 2.0, 4.0  # s: short enough for a class to listen to, long enough to judge
CANDIDATES_PER_GROUP = 20  # clips drawn per (emotion, dataset) for the models to answer
KINDS = ("all right", "disagree", "all wrong")  # one clip of each per emotion
SENTENCES = {  # what the actors say (the datasets' documentation)
    "statement01": "Kids are talking by the door.",
    "statement02": "Dogs are sitting by the door.",
    "DFA": "Don't forget a jacket.",
    "IEO": "It's eleven o'clock.",
    "IOM": "I'm on my way to the meeting.",
    "ITH": "I think I have a doctor's appointment.",
    "ITS": "I think I've seen this before.",
    "IWL": "I would like a new alarm clock.",
    "IWW": "I wonder what this is about.",
    "MTI": "Maybe tomorrow it will be cold.",
    "TAI": "The airplane is almost full.",
    "TIE": "That is exactly what happened.",
    "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}

LICENCES = {
    "CREMA-D": {
        "name": "CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset",
        "authors": "Houwei Cao, David G. Cooper, Michael K. Keutmann, Ruben C. Gur, Ani Nenkova, Ragini Verma",
        "citation": "Cao et al. (2014), CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset. "
        "IEEE Transactions on Affective Computing 5(4), 377-390. doi:10.1109/TAFFC.2014.2336244",
        "licence": "Open Database License 1.0 (ODbL); contents under the Database Contents License 1.0 (DbCL)",
        "source": "https://github.com/CheyneyComputerScience/CREMA-D",
    },
    "RAVDESS": {
        "name": "RAVDESS: The Ryerson Audio-Visual Database of Emotional Speech and Song",
        "authors": "Steven R. Livingstone, Frank A. Russo",
        "citation": "Livingstone & Russo (2018), The Ryerson Audio-Visual Database of Emotional Speech and Song "
        "(RAVDESS). PLoS ONE 13(5): e0196391. doi:10.1371/journal.pone.0196391",
        "licence": "Creative Commons Attribution-NonCommercial-ShareAlike 4.0 (CC BY-NC-SA 4.0)",
        "source": "https://zenodo.org/record/1188976",
    },
}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def candidates(data_dir: Path, seed: int = SEED) -> list:
    """Test-speaker clips of RAVDESS and CREMA-D, 2-4 s, seven emotions: CANDIDATES_PER_GROUP per
    (emotion, dataset), in a seeded order. Returns [(clip, duration_s)]."""
    from corpus import is_known_bad, read_splits, scan

    split = read_splits()
    rng = random.Random(seed)
    groups: dict[tuple, list] = {}
    for c in scan(data_dir)[0]:
        if c.dataset in DATASETS and c.label in LABELS and split.get(c.speaker) == "test" and not is_known_bad(c.path):
            groups.setdefault((c.label, c.dataset), []).append(c)
    out = []
    for key in sorted(groups):
        pool = sorted(groups[key], key=lambda c: c.path)
        rng.shuffle(pool)
        picked = []
        for c in pool:
            seconds = sf.info(c.path).duration
            if MIN_SECONDS <= seconds <= MAX_SECONDS:
                picked.append((c, round(seconds, 3)))
            if len(picked) == CANDIDATES_PER_GROUP:
                break
        out += picked
    return out


def model_answers(path, recognizer) -> dict[str, dict]:
    """What each shipped model (and the ensemble) answers for one clip, as the app computes it."""
    from webapp.service import classify

    pred = classify(str(path), recognizer)
    return {
        name: {"label": o.label, "confidence": round(float(o.probabilities.max()), 3)}
        for name, o in pred.models.items()
    }


def checkpoint_hashes(recognizer) -> dict[str, str]:
    """sha256 of every file the answers came from (checkpoints, the ensemble, the calibration), so a stale
    examples.json can be detected."""
    files = sorted(recognizer.dir.glob("*.pt")) + [
        recognizer.dir / f for f in (ENSEMBLE_FILE, CALIBRATION_FILE) if (recognizer.dir / f).is_file()
    ]
    return {f.name: sha256(f) for f in files}


def kind(label: str, answers: dict[str, dict]) -> str:
    right = sum(a["label"] == label for a in answers.values())
    return "all right" if right == len(answers) else "all wrong" if right == 0 else "disagree"


def badness(r: dict, label: str, want: str, preferred: str, speakers: set) -> tuple:
    """How far a candidate is from the clip wanted: (off its KIND, other dataset, speaker already used)."""
    right = sum(a["label"] == label for a in r["models"].values())
    off = {
        "all right": len(r["models"]) - right,
        "all wrong": right,
        "disagree": int(kind(label, r["models"]) != "disagree"),
    }[want]
    return off, r["dataset"] != preferred, r["speaker"] in speakers


def pick(scored: list[dict]) -> list[dict]:
    """Per emotion one clip of each KIND (the closest there is when none fits), datasets alternating,
    unused speakers first. scored: candidate records in their seeded order, each with "models"."""
    chosen, speakers = [], set()
    for i, label in enumerate(LABELS):
        pool = [r for r in scored if r["label"] == label]
        datasets = sorted({r["dataset"] for r in pool})
        for j, want in enumerate(KINDS):
            left = [r for r in pool if r not in chosen]
            if not left:
                break
            preferred = datasets[(i + j) % len(datasets)]
            best = min(left, key=lambda r: badness(r, label, want, preferred, speakers))  # first among equals
            chosen.append(best)
            speakers.add(best["speaker"])
    return chosen


def assign_pools(chosen: list[dict]) -> list[dict]:
    """The picked clips, each with its "pool": per emotion (LABELS order) one "try" clip, of KINDS[i % 3] when
    one is (else any), from the datasets in turn (CREMA-D for even i), the first such in the given order;
    every other clip "game"."""
    out = [{**r, "pool": GAME_POOL} for r in chosen]
    if len(out) > MAX_SHIPPED_CLIPS:
        raise ValueError(f"{len(out)} clips: the repository may hold at most {MAX_SHIPPED_CLIPS}")
    for i, label in enumerate(LABELS):
        mine = [r for r in out if r["label"] == label]
        if len(mine) < 2:  # a lone clip stays in the game, which needs every emotion
            continue
        want, preferred = KINDS[i % len(KINDS)], DATASETS[i % len(DATASETS)]
        best = min(mine, key=lambda r: (kind(label, r["models"]) != want, r["dataset"] != preferred))
        best["pool"] = TRY_POOL
    return out


def record(clip, seconds: float, votes: dict) -> dict:
    name = Path(clip.path).name
    return {
        "file": name,
        "dataset": clip.dataset,
        "speaker": clip.speaker,
        "sentence": clip.sentence,
        "text": SENTENCES.get(clip.sentence, ""),
        "label": clip.label,
        "duration_s": seconds,
        "sha256": sha256(Path(clip.path)),
        "listeners": [[a, p] for a, p in votes.get(Path(clip.path).stem, [])],
    }


def attribution(clips: list[dict]) -> str:
    lines = [
        "# Example clips: sources and licences",
        "",
        (
            "These clips are copied unchanged from the development corpus (16 kHz Ogg Opus, decoded from the "
            "official releases and re-encoded; the file names are the official ones). They are the only dataset "
            "audio in this repository. Written by `python -m webapp.curate_examples`."
        ),
        "",
    ]
    for ds in DATASETS:
        lic = LICENCES[ds]
        mine = [c for c in clips if c["dataset"] == ds]
        if not mine:
            continue
        lines += [
            f"## {lic['name']}",
            "",
            f"- Authors: {lic['authors']}",
            f"- Cite: {lic['citation']}",
            f"- Licence: {lic['licence']}",
            f"- Source: {lic['source']}",
            "",
            "| file | speaker | emotion (as acted) | sentence | used by |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{c['file']}` | {c['speaker']} | {c['label']} | {c['sentence']} | "
            f"{'the game only' if c.get('pool') == GAME_POOL else 'Try it'} |"
            for c in mine
        ]
        lines.append("")
    lines += [
        (
            "RAVDESS clips are shared non-commercially under the same licence (CC BY-NC-SA 4.0), as is this "
            "project. CREMA-D listener votes in `examples.json` come from the same CREMA-D release. "
            "TESS and SAVEE clips are never included (no-derivatives and research-only licences)."
        ),
        "",
    ]
    return "\n".join(lines)


def write(out_dir: Path, clips: list[dict], checkpoints: dict[str, str], seed: int) -> None:
    """examples.json and ATTRIBUTION.md; checkpoints: sha256 of each file the stored answers came from."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "about": "Example clips of test-split speakers; written by python -m webapp.curate_examples. pool: "
        "'try' clips are listed on Try it, 'game' clips are played by the guessing game only",
        "seed": seed,
        "checkpoints": checkpoints,
        "clips": clips,
    }
    (out_dir / EXAMPLES_JSON).write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / "ATTRIBUTION.md").write_text(attribution(clips))


def curate(data_dir: Path, out_dir: Path, recognizer, seed: int = SEED) -> list[dict]:
    votes = human_votes(Path(data_dir).parent / "crema_d_human_votes.csv")
    scored = []
    pool = candidates(data_dir, seed)
    for k, (clip, seconds) in enumerate(pool):
        r = record(clip, seconds, votes)
        r["models"] = model_answers(clip.path, recognizer)
        r["_path"] = clip.path
        scored.append(r)
        print(f"{k + 1}/{len(pool)} {r['file']} {r['label']}: {kind(r['label'], r['models'])}", file=sys.stderr)
    chosen = assign_pools(pick(scored))
    for old in out_dir.glob("*.opus"):
        old.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    for r in chosen:
        shutil.copyfile(r.pop("_path"), out_dir / r["file"])
    write(out_dir, chosen, checkpoint_hashes(recognizer), seed)
    return chosen


def refresh(out_dir: Path, recognizer) -> list[dict]:
    doc = json.loads((out_dir / EXAMPLES_JSON).read_text())
    for r in doc["clips"]:
        r["models"] = model_answers(out_dir / r["file"], recognizer)
    clips = doc["clips"] if all("pool" in r for r in doc["clips"]) else assign_pools(doc["clips"])
    write(out_dir, clips, checkpoint_hashes(recognizer), doc.get("seed", SEED))
    return clips


def repool(out_dir: Path) -> list[dict]:
    """Divide the clips already in examples/ into the two pools again (assign_pools); no model runs."""
    doc = json.loads((out_dir / EXAMPLES_JSON).read_text())
    clips = assign_pools(doc["clips"])
    write(out_dir, clips, doc["checkpoints"], doc.get("seed", SEED))
    return clips


def main(argv=None) -> int:
    from emotion_core.paths import data_dir
    from emotion_core.recognizer import Recognizer

    ap = argparse.ArgumentParser(description="Curate the example clips shipped in examples/.")
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--out", default=str(EXAMPLES_DIR))
    ap.add_argument("--checkpoints", help="checkpoint directory (default $EMOTION_CHECKPOINTS or checkpoints/)")
    ap.add_argument("--whisper", help="Whisper encoder: a local directory or a Hub id")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--refresh", action="store_true", help="rerun the models on the clips already picked")
    ap.add_argument("--pools", action="store_true", help="divide the clips already picked into Try it's and the game's")
    args = ap.parse_args(argv)
    if args.pools:
        for r in repool(Path(args.out)):
            print(f"{r['file']:28s} {r['label']:9s} {kind(r['label'], r['models']):9s} {r['pool']}")
        return 0
    recognizer = Recognizer(args.checkpoints, device="cpu", whisper=args.whisper)
    if recognizer.unavailable:
        sys.exit(f"every family must answer; not running: {recognizer.unavailable}")
    out = Path(args.out)
    clips = refresh(out, recognizer) if args.refresh else curate(data_dir(args.data), out, recognizer, args.seed)
    from collections import Counter

    for r in clips:
        print(
            f"{r['file']:28s} {r['label']:9s} {kind(r['label'], r['models']):9s} "
            + " ".join(f"{n}={a['label']}" for n, a in r["models"].items())
        )
    kinds = Counter(kind(r["label"], r["models"]) for r in clips)
    print(
        f"{len(clips)} clips ({Counter(r['dataset'] for r in clips)}): {kinds['all right']} every model right, "
        f"{kinds['all wrong']} fool every model, {kinds['disagree']} split"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
