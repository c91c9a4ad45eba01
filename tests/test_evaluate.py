"""train.evaluate: the metric arithmetic on a hand-checked example, and the JSON it writes."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from train.metrics import NO_ANSWER, confusion, corpus_balanced_uar, evaluate_predictions, summary

from .shared_paths import CHECKPOINTS, DATA_DIR, FAMILIES, WHISPER_DIR, needs_corpus


def test_metrics_by_hand():
    # true:  A A B B C ; predicted: A B B B A
    cm = confusion([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 7)
    assert cm[0].tolist()[:3] == [1, 1, 0] and cm[1].tolist()[:3] == [0, 2, 0] and cm[2].tolist()[:3] == [1, 0, 0]
    m = summary(cm)
    assert m["n"] == 5 and m["accuracy"] == pytest.approx(3 / 5)
    assert m["uar"] == pytest.approx((1 / 2 + 2 / 2 + 0 / 1) / 3)  # classes absent from the truth do not count
    # F1: A p=1/2 r=1/2 -> 1/2; B p=2/3 r=1 -> 4/5; C p=0 r=0 -> 0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    r = evaluate_predictions([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["X", "X", "Y", "Y", "Y"], 7)
    assert r["per_dataset"]["X"]["uar"] == pytest.approx(0.5)  # X: A only, 1 of 2
    assert r["per_dataset"]["Y"]["uar"] == pytest.approx(0.5)  # Y: B 2/2, C 0/1
    assert corpus_balanced_uar(r["per_dataset"]) == pytest.approx(0.5)


def test_a_clip_without_an_answer_counts_as_a_miss():
    # true: A A B ; predicted: A (none) B -- the refused clip stays out of the confusion matrix, not out of n
    r = evaluate_predictions([0, 0, 1], [0, NO_ANSWER, 1], ["X", "X", "X"], 7)
    assert r["no_answer"] == 1 and np.array(r["confusion"]).sum() == 2
    assert r["overall"]["n"] == 3 and r["overall"]["accuracy"] == pytest.approx(2 / 3)
    assert r["overall"]["uar"] == pytest.approx((1 / 2 + 1) / 2)  # A: 1 of 2, B: 1 of 1


@pytest.mark.slow
@needs_corpus
def test_evaluate_cli_writes_the_promised_json(tmp_path):
    from train.evaluate import main

    # a small directory in the datasets' own layout: links to a few clips of each dataset
    picks = sorted(DATA_DIR.glob("RAVDESS/Actor_03/03-01-0[1-8]-01-01-01-03.opus"))
    picks += (
        sorted(DATA_DIR.glob("CREMA-D/AudioWAV/1015_IEO_*"))[:4] + sorted(DATA_DIR.glob("SAVEE/*/su0[1-2].opus"))[:2]
    )
    for p in picks:
        dst = tmp_path / "data" / p.relative_to(DATA_DIR)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(p, dst)  # DATA_DIR is absolute (shared_paths)
    # and a clip the app refuses (a steady tone, no voice): it is evaluated as no answer, a miss for every model
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 16000)
    sf.write(tmp_path / "data" / "RAVDESS" / "Actor_03" / "03-01-05-02-02-02-03.wav", tone.astype(np.float32), 16000)
    out = tmp_path / "out" / "eval.json"
    assert (
        main(
            [
                "--data",
                str(tmp_path / "data"),
                "--out",
                str(out),
                "--checkpoints",
                str(CHECKPOINTS),
                "--whisper",
                str(WHISPER_DIR),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["labels"] == ["angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]
    # the app's outputs, and no more: an ensemble that gives all its weight to one family is that family
    assert set(result["models"]) == FAMILIES
    n_calm = 1  # RAVDESS 03-01-02: calm, outside the task
    for m in result["models"].values():
        assert set(m) == {"overall", "per_dataset", "confusion", "no_answer", "per_sex"}
        assert m["no_answer"] == 1  # the tone
        assert set(m["per_sex"]) == {"male"}  # RAVDESS_03, CREMAD_1015 and SAVEE's speakers are men (corpus/splits.csv)
        assert sum(g["overall"]["n"] for g in m["per_sex"].values()) == m["overall"]["n"]
        assert m["overall"]["n"] == len(picks) - n_calm + 1
        for metrics in [m["overall"], *m["per_dataset"].values()]:
            assert set(metrics) == {"n", "accuracy", "uar", "macro_f1"}
            assert all(0.0 <= metrics[k] <= 1.0 for k in ("accuracy", "uar", "macro_f1"))
        assert set(m["per_dataset"]) == {"RAVDESS", "CREMA-D", "SAVEE"}
        cm = np.array(m["confusion"])
        assert cm.shape == (7, 7) and cm.sum() == m["overall"]["n"] - 1
        assert cm.trace() / m["overall"]["n"] == pytest.approx(m["overall"]["accuracy"])
    assert out.with_suffix(".md").is_file() and out.with_suffix(".png").stat().st_size > 1000


def test_reports_of_other_families_and_conditions_merge_into_one():
    from train.report import merge_reports, report_conditions

    class Clip:
        def __init__(self, label, dataset):
            self.label, self.dataset = label, dataset

    clips = [Clip(lab, ds) for ds in ("CREMA-D", "RAVDESS") for lab in ("angry", "sad", "happy")]
    a = report_conditions({"clean": {"whisper": [0, 5, 3, 0, 5, 3]}, "young": {"whisper": [0, 5, 5, 0, 5, 3]}}, clips)
    b = report_conditions({"clean": {"cnn1d": [0, 0, 0, 0, 0, 0]}, "classroom": {"cnn1d": [5, 5, 5, 5, 5, 5]}}, clips)
    m = merge_reports(a, b)
    assert list(m["conditions"]) == ["clean", "classroom", "young"] and m["condition"] == "clean,classroom,young"
    assert (
        list(m["conditions"]["clean"]["models"]) == ["cnn1d", "whisper"]
        and m["models"] == m["conditions"]["clean"]["models"]
    )
    assert m["conditions"]["young"]["models"]["whisper"] == a["conditions"]["young"]["models"]["whisper"]
    assert m["answer_shares"]["classroom"]["cnn1d"]["sad"] == 1.0
    with pytest.raises(ValueError, match="different clips"):
        merge_reports(a, report_conditions({"clean": {"cnn1d": [0, 0, 0]}}, clips[:3]))


def test_the_report_gives_each_models_results_by_speaker_sex():
    """Issue 27: who the models fail, by sex. Hand-checked: two women (RAVDESS, CREMA-D) and two men (both, and
    a SAVEE man, whose dataset has no woman and so is left out of the comparison)."""
    from types import SimpleNamespace

    from train.report import by_sex_lines, report, shared_datasets

    sexes = {"R_f": "female", "C_f": "female", "R_m": "male", "C_m": "male", "S_m": "male"}
    clips = [
        SimpleNamespace(label=lab, dataset=ds, speaker=spk)
        for spk, ds in (
            ("R_f", "RAVDESS"),
            ("C_f", "CREMA-D"),
            ("R_m", "RAVDESS"),
            ("C_m", "CREMA-D"),
            ("S_m", "SAVEE"),
        )
        for lab in ("angry", "sad")
    ]
    #            R_f    C_f    R_m    C_m    S_m   (angry = 0, sad = 5)
    predicted = [0, 5, 0, 0, 5, 5, 5, 0, 0, 5]
    m = report({"cnn1d": predicted}, clips, sexes)["models"]["cnn1d"]
    women, men = m["per_sex"]["female"], m["per_sex"]["male"]
    assert (women["overall"]["n"], women["overall"]["accuracy"]) == (4, pytest.approx(3 / 4))
    assert (men["overall"]["n"], men["overall"]["accuracy"]) == (6, pytest.approx(3 / 6))
    assert women["per_dataset"]["RAVDESS"]["uar"] == 1.0 and women["per_dataset"]["CREMA-D"]["uar"] == 0.5
    assert men["per_dataset"]["RAVDESS"]["uar"] == 0.5 and men["per_dataset"]["CREMA-D"]["uar"] == 0.0
    assert shared_datasets(m["per_sex"]) == ["RAVDESS", "CREMA-D"]
    assert by_sex_lines({"cnn1d": m})[-1] == "| cnn1d | 0.750 (4) | 0.250 (4) |"  # SAVEE left out
    assert report({"cnn1d": predicted}, clips, {})["models"]["cnn1d"]["per_sex"].keys() == {"unknown"}
