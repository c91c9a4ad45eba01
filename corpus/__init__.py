"""The corpus, shared by training and the app: finding the clips of the four datasets (clips.py), the fixed
speaker-independent split (splits.py, splits.csv) and the clips of the originals known to be unusable."""

from .clips import AUDIO_EXTENSIONS, DATASETS, Clip, parse_clip, scan
from .splits import SPLITS_CSV, read_speaker_sexes, read_splits, select_clips, speaker_split, splits_hash

# File-name stems of original clips that are unusable; matched against any extension.
KNOWN_BAD_CLIPS = {
    "1076_MTI_SAD_XX": "CREMA-D: the original is digital silence (load_audio refuses it)",
}


def is_known_bad(path) -> bool:
    """True for a clip listed in KNOWN_BAD_CLIPS, whatever its folder or audio extension."""
    from pathlib import Path

    return Path(path).stem in KNOWN_BAD_CLIPS


__all__ = [
    "AUDIO_EXTENSIONS",
    "DATASETS",
    "KNOWN_BAD_CLIPS",
    "SPLITS_CSV",
    "Clip",
    "is_known_bad",
    "parse_clip",
    "read_speaker_sexes",
    "read_splits",
    "scan",
    "select_clips",
    "speaker_split",
    "splits_hash",
]
