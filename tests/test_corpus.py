"""The corpus scanner against the shared manifest, and the committed speaker-independent split."""

import csv
from collections import Counter
from pathlib import Path

from corpus import SPLITS_CSV, parse_clip, read_splits, scan, speaker_split

from .shared_paths import DATA_DIR, MANIFEST, needs_corpus


def manifest_rows():
    with open(MANIFEST, newline="") as f:
        return list(csv.DictReader(f))


@needs_corpus
def test_scanner_finds_exactly_the_manifest_clips_with_their_labels():
    clips, skipped = scan(DATA_DIR)
    found = {str(Path(c.path).relative_to(DATA_DIR)): c for c in clips + skipped}
    rows = {r["path"]: r for r in manifest_rows()}
    assert set(found) == set(rows)
    for path, r in rows.items():
        c = found[path]
        assert (c.dataset, c.speaker, c.label) == (r["dataset"], r["speaker"], r["label"]), path
        assert c.sentence.lower() == r["sentence"].lower(), path
    assert all(c.label == "calm" for c in skipped)
    assert len(skipped) == sum(r["label"] == "calm" for r in rows.values()) == 160


def test_official_names_and_known_quirks_parse():
    cases = {
        "Actor_12/03-01-05-01-02-01-12.wav": ("RAVDESS", "RAVDESS_12", "angry"),
        "Actor_01/03-01-02-01-01-02-01.wav": ("RAVDESS", "RAVDESS_01", "calm"),
        "AudioWAV/1001_DFA_ANG_XX.wav": ("CREMA-D", "CREMAD_1001", "angry"),
        "AudioWAV/1076_MTI_SAD_XX.wav": ("CREMA-D", "CREMAD_1076", "sad"),
        "OAF_angry/OAF_back_angry.wav": ("TESS", "TESS_OAF", "angry"),
        "OAF_neutral/OA_bite_neutral.wav": ("TESS", "TESS_OAF", "neutral"),
        "YAF_pleasant_surprised/YAF_back_ps.wav": ("TESS", "TESS_YAF", "surprised"),
        "OAF_Fear/OAF_neat_fear.wav": ("TESS", "TESS_OAF", "fearful"),
        "DC/sa01.wav": ("SAVEE", "SAVEE_DC", "sad"),
        "AudioData/DC/su15.wav": ("SAVEE", "SAVEE_DC", "surprised"),
        "ALL/DC_a01.wav": ("SAVEE", "SAVEE_DC", "angry"),
        "ALL/KL_n30.wav": ("SAVEE", "SAVEE_KL", "neutral"),
    }
    for rel, want in cases.items():
        c = parse_clip(Path("/x") / rel)
        assert c is not None and (c.dataset, c.speaker, c.label) == want, rel
    for rel in (
        "Actor_01/03-02-05-01-02-01-01.wav",
        "notes/readme.wav",
        "x/a01.wav",
        "Actor_01/02-01-05-01-02-01-01.wav",
    ):
        assert parse_clip(Path("/x") / rel) is None, rel  # song, unknown, SAVEE name outside a speaker folder, video


def test_committed_split_is_speaker_independent_and_balanced():
    with open(SPLITS_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    speakers = [r["speaker"] for r in rows]
    assert len(speakers) == len(set(speakers)), "a speaker appears twice"
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    by = Counter((r["dataset"], r["split"]) for r in rows)
    for ds in ("RAVDESS", "CREMA-D", "SAVEE"):
        assert by[(ds, "val")] >= 1 and by[(ds, "test")] >= 1 and by[(ds, "train")] >= 1
    assert by[("TESS", "train")] == 1 and by[("TESS", "test")] == 0  # one TESS speaker: train only (README)
    sexes = Counter((r["dataset"], r["split"], r["sex"]) for r in rows)
    for ds in ("RAVDESS", "CREMA-D"):
        for part in ("val", "test"):
            assert abs(sexes[(ds, part, "male")] - sexes[(ds, part, "female")]) <= 1


@needs_corpus
def test_split_covers_every_speaker_and_regenerates_identically(tmp_path):
    from corpus.splits import main

    clips, skipped = scan(DATA_DIR)
    assignment = read_splits()
    assert {c.speaker for c in clips + skipped} == set(assignment)
    out = tmp_path / "splits.csv"
    assert main(["--data", str(DATA_DIR), "--out", str(out)]) == 0
    assert out.read_text() == SPLITS_CSV.read_text()


def test_speaker_split_never_shares_speakers():
    speakers = {f"S{i}": "X" for i in range(40)}
    sexes = {s: "male" if i % 2 else "female" for i, s in enumerate(speakers)}
    split = speaker_split(speakers, sexes, seed=3)
    assert set(split) == set(speakers)
    counts = Counter(split.values())
    assert counts["test"] == counts["val"] == 6 and counts["train"] == 28


def test_corpus_package_is_the_one_home_of_the_split_and_the_bad_clips(tmp_path):
    """The app side imports the corpus package, never train/; the split file kept its bytes (and so the
    splits_sha256 recorded in every checkpoint); a known bad clip is recognised whatever its extension."""
    import subprocess
    import sys

    from corpus import KNOWN_BAD_CLIPS, is_known_bad, splits_hash

    assert SPLITS_CSV.parent.name == "corpus"
    assert splits_hash() == "d9599e3ad3a24a7908d2c7363a1d523f5f9a532a0239df5d4387d3c4c764c040"
    assert "1076_MTI_SAD_XX" in KNOWN_BAD_CLIPS
    assert is_known_bad("CREMA-D/AudioWAV/1076_MTI_SAD_XX.opus") and is_known_bad("x/1076_MTI_SAD_XX.wav")
    assert not is_known_bad("CREMA-D/AudioWAV/1076_MTI_SAD_HI.opus")
    code = "import sys; sys.modules['train'] = None; import webapp.examples as e; print(e.example_clips(sys.argv[1]))"
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 0, out.stderr
