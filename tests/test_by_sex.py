"""Who the models fail by speaker sex (issue 27): every test clip's answers are committed (reports/test_clips.json,
train.clip_answers), so train.by_sex breaks the results down from committed files alone, and reports/by_sex.json is
what it writes."""

import json
import os

import numpy as np
import pytest

from corpus import read_speaker_sexes, read_splits
from emotion_core.labels import LABEL_INDEX, LABELS
from train.by_sex import ANSWERS, OUT, by_sex, main
from train.clip_answers import checkpoint_hashes

from .shared_paths import CHECKPOINTS, DATA_DIR, WHISPER_DIR, needs_corpus

REPORT = ANSWERS.parent / "test.json"


def committed_answers() -> dict:
    return json.loads(ANSWERS.read_text())


def test_the_committed_answers_are_every_test_clip_and_agree_with_the_committed_report():
    """Each model's confusion from the per-clip answers is the one reports/test.json holds for clean audio."""
    answers, report = committed_answers(), json.loads(REPORT.read_text())
    split = read_splits()
    assert answers["split"] == "test" and answers["condition"] == "clean" and answers["labels"] == list(LABELS)
    assert {split[speaker] for _f, speaker, _d, _l in answers["clips"]} == {"test"}
    clean = report["conditions"]["clean"]["models"]
    assert set(answers["probabilities"]) == set(clean)
    y = np.array([LABEL_INDEX[label] for *_, label in answers["clips"]])
    for name, p in answers["probabilities"].items():
        p = np.asarray(p)
        assert p.shape == (len(y), len(LABELS)) and np.allclose(p.sum(1), 1, atol=1e-3)
        cm = np.zeros((len(LABELS), len(LABELS)), int)
        np.add.at(cm, (y, p.argmax(1)), 1)
        assert cm.tolist() == clean[name]["confusion"], name


def test_the_answers_come_from_the_shipped_checkpoints_and_calibration():
    """Fails after retraining or recalibrating until `python -m train.clip_answers --out reports/test_clips.json`
    and `python -m train.by_sex` have run again."""
    assert committed_answers()["checkpoints"] == checkpoint_hashes(CHECKPOINTS)


def test_reports_by_sex_is_what_train_by_sex_computes_from_the_committed_files(tmp_path):
    assert main(["--out", str(tmp_path / "by_sex.json")]) == 0
    assert json.loads((tmp_path / "by_sex.json").read_text()) == json.loads(OUT.read_text())
    result = json.loads(OUT.read_text())
    sexes = read_speaker_sexes()
    n_women = sum(sexes[s] == "female" for _f, s, _d, _l in committed_answers()["clips"])
    for m in result["models"].values():
        assert set(m["per_sex"]) == {"female", "male"}
        assert m["per_sex"]["female"]["overall"]["n"] == n_women
        assert set(m["per_sex"]["female"]["per_dataset"]) == {"RAVDESS", "CREMA-D"}  # SAVEE's test speaker is a man


def test_by_sex_counts_each_clip_under_its_speakers_sex():
    answers = {
        "split": "test",
        "condition": "clean",
        "clips": [["a", "W", "RAVDESS", "sad"], ["b", "M", "RAVDESS", "sad"], ["c", "M", "RAVDESS", "angry"]],
        "probabilities": {"lstm": [np.eye(len(LABELS))[LABELS.index("sad")].tolist()] * 3},
    }
    per_sex = by_sex(answers, {"W": "female", "M": "male"})["models"]["lstm"]["per_sex"]
    assert per_sex["female"]["overall"]["accuracy"] == 1.0 and per_sex["male"]["overall"]["accuracy"] == 0.5
    assert per_sex["male"]["per_dataset"]["RAVDESS"]["uar"] == 0.5
    answers["probabilities"]["lstm"][1] = None  # the app refused b (too little speech): a miss, still counted
    per_sex = by_sex(answers, {"W": "female", "M": "male"})["models"]["lstm"]["per_sex"]
    assert per_sex["male"]["overall"]["n"] == 2 and per_sex["male"]["overall"]["accuracy"] == 0.0


@pytest.mark.slow
@needs_corpus
def test_clip_answers_runs_the_models_as_the_app_does(tmp_path):
    from train import clip_answers

    picks = sorted(DATA_DIR.glob("RAVDESS/Actor_14/03-01-0[3-5]-01-01-01-14.opus"))
    picks += sorted(DATA_DIR.glob("CREMA-D/AudioWAV/1013_IEO_*"))[:3]
    for p in picks:
        dst = tmp_path / "data" / p.relative_to(DATA_DIR)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(p, dst)
    out = tmp_path / "clips.json"
    assert (
        clip_answers.main(
            [
                "--data",
                str(tmp_path / "data"),
                "--out",
                str(out),
                "--checkpoints",
                str(CHECKPOINTS),
                "--whisper",
                str(WHISPER_DIR),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert sorted(c[0] for c in doc["clips"]) == sorted(p.name for p in picks)
    committed = committed_answers()
    row = {c[0]: i for i, c in enumerate(committed["clips"])}
    for name, p in doc["probabilities"].items():  # the same numbers as the full run's, clip for clip
        for i, c in enumerate(doc["clips"]):
            assert p[i] == pytest.approx(committed["probabilities"][name][row[c[0]]], abs=2e-4), (name, c[0])


def test_the_docs_table_by_sex_is_the_committed_one():
    """docs/results.md's generated by-sex block (from reports/test.json) is the table reports/by_sex.json gives (the
    teachers' page's source): the full evaluation and the per-clip answers agree."""
    from train.report import by_sex_lines

    text = (ANSWERS.parent.parent / "docs" / "results.md").read_text()
    block = text.split("<!-- results:by_sex -->\n")[1].split("<!-- /results:by_sex -->")[0].strip()
    assert block == "\n".join(by_sex_lines(json.loads(OUT.read_text())["models"]))
    assert "| whisper | " in block and "| cnn1d | " in block
