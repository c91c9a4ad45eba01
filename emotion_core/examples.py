"""Example clips for the app: a few per emotion from the test-split speakers, with their true label and,
for CREMA-D, what human listeners answered from the voice alone."""
from __future__ import annotations

import csv
import random
from pathlib import Path

from .labels import LABELS

VOTE_NAMES = {"A": "angry", "D": "disgust", "F": "fearful", "H": "happy", "N": "neutral", "S": "sad", "X": "no majority"}


def human_votes(votes_csv: Path) -> dict[str, list[tuple[str, float]]]:
    """CREMA-D clip name -> [(answer, % of listeners)] of listeners who heard the voice only; several
    answers when the release lists a split vote (e.g. "A:D" with "37.2:58.6")."""
    if not votes_csv.is_file():
        return {}
    out = {}
    with open(votes_csv, newline="") as f:
        for r in csv.DictReader(f):
            answers, shares = r["voice_vote"].split(":"), (r["voice_agreement_percent"] or "").split(":")
            out[r["clip"]] = [(VOTE_NAMES.get(a, a), float(p) if p else 0.0) for a, p in zip(answers, shares + [""] * len(answers))]
    return out


def example_clips(data_dir: Path | None, per_label: int = 2, seed: int = 1) -> list[tuple[str, str]]:
    """[(path, caption)] from test-split speakers; [] when there is no data directory."""
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
            caption = f"{c.label} ({c.dataset}, speaker {c.speaker.split('_')[1]})"
            name = Path(c.path).stem
            if name in votes:
                caption += "; listeners said " + " / ".join(f"{a} ({p:.0f}%)" for a, p in votes[name])
            out.append((c.path, caption))
    return out
