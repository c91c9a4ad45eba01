"""Find every clip of RAVDESS, CREMA-D, TESS and SAVEE under a directory, by each dataset's own file naming.

    python -m corpus.clips DIR        # prints clips per dataset and label, speakers, and what was skipped

Works on the official downloads and on ../shared/data/audio alike: any audio extension is accepted, and
the dataset is recognised from the file name (and, for SAVEE and TESS, the folder) rather than the path.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from emotion_core.labels import LABELS
from emotion_core.paths import data_dir
from emotion_core.settings import variable

AUDIO_EXTENSIONS = {".wav", ".opus", ".ogg", ".flac", ".mp3", ".m4a", ".aac", ".aif", ".aiff", ".aifc", ".webm"}
DATASETS = ("RAVDESS", "CREMA-D", "TESS", "SAVEE")

RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
CREMAD_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
TESS_EMOTIONS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "ps": "surprised",
}
SAVEE_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
SAVEE_SPEAKERS = {"DC", "JE", "JK", "KL"}
TESS_SPEAKER_FIXES = {"OA": "OAF"}  # one official TESS file is named OA_bite_neutral

RAVDESS_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
CREMAD_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
TESS_RE = re.compile(r"^([A-Za-z]{2,3})_([A-Za-z]+)_([A-Za-z]+)$")
SAVEE_RE = re.compile(r"^(?:([A-Z]{2})_)?(sa|su|a|d|f|h|n)(\d{2})$")


@dataclass(frozen=True)
class Clip:
    path: str
    dataset: str
    speaker: str  # unique across datasets, e.g. RAVDESS_01, CREMAD_1001, TESS_YAF, SAVEE_JE
    label: str  # dataset's emotion in the project's names (may be "calm", which is outside the 7 classes)
    sentence: str


def parse_clip(path: Path) -> Clip | None:
    """Recognise one file by its dataset's naming; None if it is not a clip of the four datasets."""
    stem, parent = path.stem, path.parent.name
    m = RAVDESS_RE.match(stem)
    if m:
        modality, channel, emotion, _intensity, statement, _rep, actor = m.groups()
        if modality not in ("01", "03") or channel != "01" or emotion not in RAVDESS_EMOTIONS:
            return None  # song, or video-only
        return Clip(str(path), "RAVDESS", f"RAVDESS_{actor}", RAVDESS_EMOTIONS[emotion], f"statement{statement}")
    m = CREMAD_RE.match(stem)
    if m and m.group(3) in CREMAD_EMOTIONS:
        actor, sentence, emotion, _level = m.groups()
        return Clip(str(path), "CREMA-D", f"CREMAD_{actor}", CREMAD_EMOTIONS[emotion], sentence)
    m = SAVEE_RE.match(stem)
    if m:
        speaker = m.group(1) or parent
        if speaker in SAVEE_SPEAKERS:
            code, number = m.group(2), m.group(3)
            return Clip(str(path), "SAVEE", f"SAVEE_{speaker}", SAVEE_EMOTIONS[code], f"{code}{number}")
    m = TESS_RE.match(stem)
    if m and m.group(3).lower() in TESS_EMOTIONS:
        speaker, word, emotion = m.groups()
        speaker = TESS_SPEAKER_FIXES.get(speaker.upper(), speaker.upper())
        if speaker in ("OAF", "YAF"):
            return Clip(str(path), "TESS", f"TESS_{speaker}", TESS_EMOTIONS[emotion.lower()], word.lower())
    return None


def scan(root: str | os.PathLike) -> tuple[list[Clip], list[Clip]]:
    """All clips under root: (clips of the 7-class task, clips skipped because their label is outside it).

    Sorted by path, so every run sees the same order.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data directory not found: {root} (set {variable('data_dir')} or pass --data)")
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.suffix.lower() in AUDIO_EXTENSIONS:
                clip = parse_clip(p)
                if clip is not None:
                    found.append(clip)
    found.sort(key=lambda c: c.path)
    keep = [c for c in found if c.label in LABELS]
    skipped = [c for c in found if c.label not in LABELS]
    return keep, skipped


def table(clips: list[Clip], skipped: list[Clip]) -> str:
    """Markdown table of clips per dataset and label, with speakers and skipped clips."""
    counts = Counter((c.dataset, c.label) for c in clips)
    speakers = {d: {c.speaker for c in clips + skipped if c.dataset == d} for d in DATASETS}
    skip = Counter(c.dataset for c in skipped)
    head = "| dataset | " + " | ".join(LABELS) + " | clips | speakers | skipped (calm) |"
    rows = [head, "|" + "---|" * (len(LABELS) + 4)]
    for d in DATASETS:
        n = [counts[(d, lab)] for lab in LABELS]
        rows.append(f"| {d} | " + " | ".join(map(str, n)) + f" | {sum(n)} | {len(speakers[d])} | {skip[d]} |")
    tot = [sum(counts[(d, lab)] for d in DATASETS) for lab in LABELS]
    n_spk = sum(len(s) for s in speakers.values())
    rows.append("| **all** | " + " | ".join(map(str, tot)) + f" | {sum(tot)} | {n_spk} | {len(skipped)} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", help=f"datasets directory (default ${variable('data_dir')} or ./data)")
    args = ap.parse_args(argv)
    try:
        clips, skipped = scan(data_dir(args.data))
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    print(table(clips, skipped))
    print(
        f"\n{len(clips)} clips in the 7-class task; {len(skipped)} skipped: RAVDESS 'calm' is not one of the 7 classes."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
