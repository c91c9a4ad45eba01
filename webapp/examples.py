"""Example clips for the app: the curated clips shipped in examples/ (test-split speakers of CREMA-D and
RAVDESS, written by `python -m webapp.curate_examples`), plus, when a data directory is given, a few more
per emotion from the corpus's test-split speakers. Each comes with its true label and, for CREMA-D, what
human listeners answered from the voice alone.

examples.json puts each shipped clip in one of two pools: "try" clips are listed on Try it (label and
model answers on the button), "game" clips are played only by the guessing game and never listed, so
the game cannot give its answers away. A clip without a pool is a Try-it clip."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

from emotion_core.labels import LABELS
from emotion_core.models.registry import (
    FAMILIES,  # the models a caption counts when all run (the ensemble follows them)
)
from emotion_core.paths import PROJECT_DIR

EXAMPLES_DIR = PROJECT_DIR / "examples"  # shipped clips, examples.json, ATTRIBUTION.md
EXAMPLES_JSON = "examples.json"
VOTE_NAMES = {
    "A": "angry",
    "D": "disgust",
    "F": "fearful",
    "H": "happy",
    "N": "neutral",
    "S": "sad",
    "X": "no majority",
}
MAX_CAPTION = 60  # characters: Gradio cuts an example's label after 60
TRY_POOL, GAME_POOL = "try", "game"  # examples.json's "pool" of a clip: listed on Try it, or played by the game only
MAX_SHIPPED_CLIPS = 24  # dataset clips the repository may hold, both pools together


@dataclass(frozen=True)
class Example:
    path: str  # absolute path of the clip
    label: str  # the emotion the actor was asked to act
    dataset: str  # "CREMA-D" or "RAVDESS" (corpus extras may be any dataset)
    speaker: str  # e.g. "CREMAD_1089", "RAVDESS_21"
    votes: tuple  # ((answer, percent), ...) CREMA-D listeners, voice only; () otherwise
    caption: str  # what the example button says


def human_votes(votes_csv: Path) -> dict[str, list[tuple[str, float]]]:
    """CREMA-D clip name -> [(answer, % of listeners)] of listeners who heard the voice only; several
    answers when the release lists a split vote (e.g. "A:D" with "37.2:58.6")."""
    if not votes_csv.is_file():
        return {}
    out = {}
    with open(votes_csv, newline="") as f:
        for r in csv.DictReader(f):
            answers, shares = r["voice_vote"].split(":"), (r["voice_agreement_percent"] or "").split(":")
            out[r["clip"]] = [
                (VOTE_NAMES.get(a, a), float(p) if p else 0.0)
                for a, p in zip(answers, shares + [""] * len(answers), strict=False)
            ]
    return out


def models_verdict(label: str, answers: dict[str, dict], running=FAMILIES) -> str:
    """'all n models right' / 'fools all n models' / 'k of n models right', over the families running here
    that answered at curation time (n counts those: 3 when the Whisper encoder is not installed)."""
    families = [answers[f]["label"] for f in running if f in answers and f in FAMILIES]
    if not families:
        return ""
    right, n = sum(a == label for a in families), len(families)
    if right == n:
        return f"all {n} models right" if n > 1 else "the model is right"
    if right == 0:
        return f"fools all {n} models" if n > 1 else "fools the model"
    return f"{right} of {n} models right"


def caption(label: str, dataset: str, speaker: str, votes: tuple, answers: dict | None = None, running=FAMILIES) -> str:
    """At most MAX_CAPTION characters: 'angry · fools all 4 models · listeners: angry 80%' for a curated
    clip (how the models running here did at curation time), 'angry · CREMA-D 1089 · listeners: angry 80%'
    for a corpus clip (whose answers nobody stored)."""
    verdict = models_verdict(label, answers, running) if answers else ""
    parts = [label, verdict or f"{dataset} {speaker.split('_')[-1]}"]
    if votes:
        answer, percent = max(votes, key=lambda v: v[1])
        parts.append(f"listeners: {answer} {percent:.0f}%")
    return " · ".join(parts)[:MAX_CAPTION]


def _shipped(examples_dir: Path, pool: str, running) -> list[Example]:
    index = Path(examples_dir) / EXAMPLES_JSON
    if not index.is_file():
        return []
    out = []
    for r in json.loads(index.read_text())["clips"]:
        path = (Path(examples_dir) / r["file"]).resolve()
        if r.get("pool", TRY_POOL) != pool or not path.is_file():
            continue
        votes = tuple((a, float(p)) for a, p in r.get("listeners", []))
        out.append(
            Example(
                str(path),
                r["label"],
                r["dataset"],
                r["speaker"],
                votes,
                caption(r["label"], r["dataset"], r["speaker"], votes, r.get("models"), running),
            )
        )
    return out


def shipped_examples(examples_dir: Path = EXAMPLES_DIR, running=FAMILIES) -> list[Example]:
    """The curated Try-it clips of examples/ in the order examples.json lists them, captioned for the families
    `running`; [] when there are none."""
    return _shipped(examples_dir, TRY_POOL, running)


def game_clips(examples_dir: Path = EXAMPLES_DIR) -> list[Example]:
    """The guessing game's own pool: the shipped clips examples.json marks "game", never listed on Try it
    (their captions are never shown). Shipped, so the game plays the same clips with or without a corpus."""
    return _shipped(examples_dir, GAME_POOL, FAMILIES)


def corpus_examples(data_dir: Path | None, per_label: int = 2, seed: int = 1) -> list[Example]:
    """A few clips per emotion from the corpus's test-split speakers, one per dataset (seeded); [] when
    there is no data directory."""
    if data_dir is None or not Path(data_dir).is_dir():
        return []
    from corpus import is_known_bad, read_splits, scan

    split = read_splits()
    clips = [c for c in scan(data_dir)[0] if split.get(c.speaker) == "test" and not is_known_bad(c.path)]
    votes = human_votes(Path(data_dir).parent / "crema_d_human_votes.csv")
    rng = random.Random(seed)
    out = []
    for label in LABELS:
        pool = sorted((c for c in clips if c.label == label), key=lambda c: c.path)
        by_ds = {}
        for c in rng.sample(pool, len(pool)):
            by_ds.setdefault(c.dataset, c)
        for c in list(by_ds.values())[:per_label]:
            v = tuple(votes.get(Path(c.path).stem, ()))
            out.append(
                Example(
                    str(Path(c.path).resolve()),
                    c.label,
                    c.dataset,
                    c.speaker,
                    v,
                    caption(c.label, c.dataset, c.speaker, v),
                )
            )
    return out


def example_clips(extra_data_dir: Path | str | None = None, running=FAMILIES) -> list[Example]:
    """The Try-it list: the shipped Try-it examples (captions counting the families `running`), then (when a
    data directory is given) corpus test-speaker clips not already among them and not in the game's pool."""
    shipped = shipped_examples(running=running)
    names = {Path(e.path).name for e in shipped + game_clips()}
    extra = corpus_examples(Path(extra_data_dir)) if extra_data_dir else []
    return shipped + [e for e in extra if Path(e.path).name not in names]
