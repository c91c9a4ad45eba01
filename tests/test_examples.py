"""The example clips shipped in examples/: what they are (test speakers, CREMA-D and RAVDESS only, short,
official names, attributed), what examples.json stores about them, how the app lists them, and how the
curation picks them."""

import json
import re
from pathlib import Path

import pytest
import soundfile as sf

from corpus import read_splits
from corpus.clips import parse_clip
from emotion_core.labels import LABELS
from webapp.curate_examples import KINDS, assign_pools, checkpoint_hashes, kind, pick, sha256
from webapp.examples import (
    EXAMPLES_DIR,
    EXAMPLES_JSON,
    GAME_POOL,
    MAX_CAPTION,
    MAX_SHIPPED_CLIPS,
    TRY_POOL,
    Example,
    example_clips,
    game_clips,
    human_votes,
    models_verdict,
    shipped_examples,
)

from .shared_paths import CHECKPOINTS, DATA_DIR, MANIFEST, WHISPER_DIR, needs_corpus

OFFICIAL_NAME = re.compile(r"^(\d{4}_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}|03-01-0[1-8]-0[12]-0[12]-0[12]-\d{2})\.opus$")
INDEX = json.loads((EXAMPLES_DIR / EXAMPLES_JSON).read_text())
CLIPS = INDEX["clips"]
TRY_CLIPS = [r for r in CLIPS if r["pool"] == TRY_POOL]  # listed on Try it
GAME_CLIPS = [r for r in CLIPS if r["pool"] == GAME_POOL]  # played by the game only


def test_shipped_clips_are_test_speakers_of_crema_d_and_ravdess_two_or_more_per_emotion():
    assert 14 <= len(CLIPS) <= MAX_SHIPPED_CLIPS == 24
    split = read_splits()
    for r in CLIPS:
        path = EXAMPLES_DIR / r["file"]
        assert OFFICIAL_NAME.match(r["file"]), r["file"]
        clip = parse_clip(path)  # what the official name says agrees with what examples.json says
        assert (clip.dataset, clip.speaker, clip.label, clip.sentence) == (
            r["dataset"],
            r["speaker"],
            r["label"],
            r["sentence"],
        )
        assert r["dataset"] in ("CREMA-D", "RAVDESS") and split[r["speaker"]] == "test", r
        info = sf.info(str(path))
        assert info.samplerate == 16000 and info.channels == 1 and 2.0 <= info.duration <= 4.0, (r["file"], info)
        assert sha256(path) == r["sha256"]
    labels = [r["label"] for r in CLIPS]
    assert all(labels.count(label) >= 2 for label in LABELS), labels
    assert {r["dataset"] for r in CLIPS} == {"CREMA-D", "RAVDESS"}


def test_nothing_else_of_a_dataset_is_in_the_folder():
    listed = {r["file"] for r in CLIPS}
    present = {p.name for p in EXAMPLES_DIR.iterdir()}
    assert present == listed | {EXAMPLES_JSON, "ATTRIBUTION.md"}, present ^ (listed | {EXAMPLES_JSON, "ATTRIBUTION.md"})


def test_attribution_names_dataset_authors_licence_and_every_file():
    text = (EXAMPLES_DIR / "ATTRIBUTION.md").read_text()
    for words in (
        "Livingstone",
        "Russo",
        "CC BY-NC-SA 4.0",
        "Cao et al.",
        "Open Database License",
        "Database Contents License",
    ):
        assert words in text, words
    ravdess, crema = text.split("## RAVDESS")[1], text.split("## CREMA-D")[1].split("## RAVDESS")[0]
    for r in CLIPS:
        assert f"`{r['file']}`" in (ravdess if r["dataset"] == "RAVDESS" else crema), r["file"]


def test_some_clips_every_model_recognises_and_some_fool_every_model():
    verdicts = [models_verdict(r["label"], r["models"]) for r in CLIPS]
    assert "all 4 models right" in verdicts and "fools all 4 models" in verdicts, verdicts
    for r in CLIPS:
        assert (
            {"cnn1d", "lstm", "cnn2d", "whisper"}
            <= set(r["models"])
            <= {"cnn1d", "lstm", "cnn2d", "whisper", "ensemble"}
        )
        assert all(a["label"] in LABELS and 0 < a["confidence"] <= 1 for a in r["models"].values())


def test_stored_answers_come_from_the_shipped_checkpoints():
    """Fails after retraining until `python -m webapp.curate_examples --refresh` has rerun the models."""
    from types import SimpleNamespace

    assert INDEX["checkpoints"] == checkpoint_hashes(SimpleNamespace(dir=CHECKPOINTS)), (
        "the checkpoints changed: run python -m webapp.curate_examples --refresh"
    )


def test_example_clips_without_a_data_directory_are_the_shipped_ones():
    examples = example_clips()
    assert examples == shipped_examples() and len(examples) == len(TRY_CLIPS)
    for e, r in zip(examples, TRY_CLIPS, strict=False):
        assert isinstance(e, Example) and Path(e.path).is_absolute() and Path(e.path).is_file()
        assert (Path(e.path).name, e.label, e.dataset, e.speaker) == (r["file"], r["label"], r["dataset"], r["speaker"])
        assert e.votes == tuple((a, p) for a, p in r["listeners"])
        assert bool(e.votes) == (e.dataset == "CREMA-D")
        assert e.caption.startswith(e.label) and models_verdict(e.label, r["models"]) in e.caption
        assert len(e.caption) <= MAX_CAPTION, e.caption  # the page cuts longer labels
        if e.votes:
            top = max(e.votes, key=lambda v: v[1])
            assert e.caption.endswith(f"listeners: {top[0]} {top[1]:.0f}%"), e.caption
    hash(examples[0])  # frozen: usable as a key


def test_captions_say_how_the_models_did():
    right = {m: {"label": "sad", "confidence": 0.9} for m in ("cnn1d", "lstm", "cnn2d", "whisper", "ensemble")}
    assert models_verdict("sad", right) == "all 4 models right"
    assert models_verdict("angry", right) == "fools all 4 models"
    right["lstm"] = {"label": "angry", "confidence": 0.5}
    assert models_verdict("sad", right) == "3 of 4 models right"


def test_captions_count_the_models_running_here():
    """Without the Whisper encoder three families run: a caption counts those three, never four."""
    three = ("cnn1d", "lstm", "cnn2d")
    for e, r in zip(shipped_examples(running=three), TRY_CLIPS, strict=False):
        right = sum(r["models"][f]["label"] == r["label"] for f in three)
        expected = {3: "all 3 models right", 0: "fools all 3 models"}.get(right, f"{right} of 3 models right")
        assert expected in e.caption and "4" not in e.caption.split(" · ")[1], e.caption
    assert example_clips(running=three) == shipped_examples(running=three)


def test_the_game_has_its_own_pool_that_try_it_never_lists():
    """Issue 27: the game played the clips Try it lists with their true emotion on the buttons. Now every shipped
    clip is in one pool; Try it lists one clip per emotion, the game plays the others, at least two per emotion."""
    assert {r["pool"] for r in CLIPS} == {TRY_POOL, GAME_POOL}
    game = game_clips()
    assert [Path(c.path).name for c in game] == [r["file"] for r in GAME_CLIPS]
    assert all(Path(c.path).is_file() for c in game)
    listed = {Path(e.path).name for e in example_clips()}
    assert listed and not listed & {Path(c.path).name for c in game}
    assert sorted(r["label"] for r in TRY_CLIPS) == sorted(LABELS)
    assert all(sum(c.label == label for c in game) >= 2 for label in LABELS), [c.label for c in game]
    assert [(c.label, c.votes) for c in game] == [(r["label"], tuple(map(tuple, r["listeners"]))) for r in GAME_CLIPS]
    assert {kind(r["label"], r["models"]) for r in TRY_CLIPS} == set(KINDS)  # Try it still shows every kind


def test_the_pools_stay_apart_without_a_clip_folder(tmp_path):
    assert game_clips(tmp_path) == [] and shipped_examples(tmp_path) == []


@needs_corpus
def test_no_corpus_clip_on_try_it_is_a_game_clip():
    listed = {Path(e.path).name for e in example_clips(DATA_DIR)}
    assert len(listed) > len(TRY_CLIPS) and not listed & {r["file"] for r in GAME_CLIPS}


def test_assign_pools_lists_one_clip_per_emotion_of_each_kind_in_turn():
    pool = []
    for label in LABELS:
        other = "sad" if label != "sad" else "happy"
        pool += [
            scored(label, "CREMA-D", f"c-{label}-a", [label] * 5),
            scored(label, "RAVDESS", f"r-{label}-b", [label, other] * 2),
            scored(label, "RAVDESS", f"r-{label}-c", [other] * 5),
        ]
    pooled = assign_pools(pool)
    assert [r["file"] for r in pooled] == [r["file"] for r in pool] and "pool" not in pool[0]
    listed = [r for r in pooled if r["pool"] == TRY_POOL]
    assert [r["label"] for r in listed] == list(LABELS)
    assert [kind(r["label"], r["models"]) for r in listed] == [KINDS[i % 3] for i in range(len(LABELS))]
    with pytest.raises(ValueError):
        assign_pools(pool + pool[:4])  # 25 clips: over the allowance


@needs_corpus
def test_a_data_directory_adds_corpus_test_speaker_clips():
    shipped = example_clips()
    examples = example_clips(DATA_DIR)
    assert examples[: len(shipped)] == shipped and len(examples) > len(shipped)
    names = [Path(e.path).name for e in examples]
    assert len(names) == len(set(names))
    split = read_splits()
    for e in examples[len(shipped) :]:
        assert len(e.caption) <= MAX_CAPTION and e.caption.startswith(e.label)
        assert split[e.speaker] == "test" and Path(e.path).is_relative_to(DATA_DIR) and e.label in LABELS


@needs_corpus
def test_shipped_clips_are_the_corpus_files_and_votes_are_the_release_votes():
    votes = human_votes(MANIFEST.parent / "crema_d_human_votes.csv")
    for r in CLIPS:
        original = (
            DATA_DIR
            / ("CREMA-D/AudioWAV" if r["dataset"] == "CREMA-D" else f"RAVDESS/Actor_{r['speaker'][-2:]}")
            / r["file"]
        )
        assert sha256(original) == r["sha256"], r["file"]
        assert [tuple(v) for v in r["listeners"]] == votes.get(Path(r["file"]).stem, []), r["file"]


def scored(label, dataset, speaker, answers):
    names = ("cnn1d", "lstm", "cnn2d", "whisper", "ensemble")
    return {
        "label": label,
        "dataset": dataset,
        "speaker": speaker,
        "file": f"{speaker}-{len(answers)}",
        "models": {n: {"label": a, "confidence": 0.5} for n, a in zip(names, answers, strict=False)},
    }


def test_pick_takes_one_of_each_kind_per_emotion_and_alternates_datasets():
    pool = []
    for label in LABELS:
        other = "sad" if label != "sad" else "happy"
        for ds in ("CREMA-D", "RAVDESS"):
            pool += [
                scored(label, ds, f"{ds}-{label}-a", [label] * 5),
                scored(label, ds, f"{ds}-{label}-b", [label, other, label, label, label]),
                scored(label, ds, f"{ds}-{label}-c", [other] * 5),
            ]
    chosen = pick(pool)
    assert len(chosen) == 3 * len(LABELS)
    for label in LABELS:
        mine = [r for r in chosen if r["label"] == label]
        assert [kind(label, r["models"]) for r in mine] == list(KINDS)
        assert {r["dataset"] for r in mine} == {"CREMA-D", "RAVDESS"}


def test_pick_falls_back_to_the_closest_clip_when_no_clip_fools_every_model():
    pool = [
        scored("angry", "RAVDESS", "s1", ["angry"] * 5),
        scored("angry", "RAVDESS", "s2", ["angry"] * 4 + ["sad"]),
        scored("angry", "RAVDESS", "s3", ["sad", "sad", "angry", "angry", "sad"]),
        scored("angry", "RAVDESS", "s4", ["sad", "angry", "angry", "angry", "sad"]),
    ]
    chosen = pick(pool)
    assert [r["speaker"] for r in chosen] == ["s1", "s2", "s3"]


@pytest.mark.slow
@pytest.mark.skipif(not WHISPER_DIR.is_dir(), reason=f"Whisper encoder not found at {WHISPER_DIR}")
def test_refresh_reruns_the_models_without_repicking(tmp_path):
    import shutil

    from emotion_core.recognizer import Recognizer
    from webapp.curate_examples import refresh

    for f in EXAMPLES_DIR.iterdir():
        shutil.copyfile(f, tmp_path / f.name)
    doc = json.loads((tmp_path / EXAMPLES_JSON).read_text())
    for r in doc["clips"]:  # answers as if from other models
        r["models"] = {n: {"label": "neutral", "confidence": 1.0} for n in r["models"]}
    (tmp_path / EXAMPLES_JSON).write_text(json.dumps(doc))
    recognizer = Recognizer(CHECKPOINTS, device="cpu", whisper=str(WHISPER_DIR))
    refresh(tmp_path, recognizer)
    again = json.loads((tmp_path / EXAMPLES_JSON).read_text())
    assert [r["file"] for r in again["clips"]] == [r["file"] for r in CLIPS]
    for new, old in zip(again["clips"], CLIPS, strict=False):
        assert list(new["models"]) == recognizer.names  # the app's outputs (an ensemble of one is none)
        assert {n: a["label"] for n, a in new["models"].items()} == {
            n: old["models"][n]["label"] for n in new["models"]
        }
        assert {k: v for k, v in new.items() if k != "models"} == {k: v for k, v in old.items() if k != "models"}
    assert (tmp_path / "ATTRIBUTION.md").read_text() == (EXAMPLES_DIR / "ATTRIBUTION.md").read_text()
