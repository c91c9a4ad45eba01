"""The teachers' page (folded under How it works): the lesson uses the three tabs, the questions cover what issue 27
asks, the table of who the models fail is the committed report's, and every corpus has its card."""

from __future__ import annotations

import json

import pytest

from webapp import report_figures, teachers


def test_the_lesson_the_questions_and_the_cards():
    page = teachers.teachers_page(report_figures.load_reports())
    for tab in ("Try it", "Guess the emotion", "Act it out", "How it works"):
        assert f"**{tab}**" in page
    for topic in (
        "Acted or felt?",
        "Who are the actors?",
        "Who do the models fail?",
        "Privacy.",
        "AI Act, Art. 5(1)(f)",
    ):
        assert topic in page
    for corpus in ("RAVDESS", "CREMA-D", "TESS", "SAVEE"):
        assert f"| {corpus} (" in page
    assert "## Who the models fail" in page


def test_who_it_fails_reads_every_condition_of_the_report(tmp_path):
    clean = json.loads((report_figures.REPORT_DIR / "test.json").read_text())
    models = {"cnn1d": json.loads(json.dumps(clean["conditions"]["clean"]["models"]["cnn1d"]))}
    young = json.loads(json.dumps(models))
    for v in young["cnn1d"]["per_dataset"].values():
        v["uar"] = 0.25
    report = {**clean, "models": models, "conditions": {"clean": {"models": models}, "young": {"models": young}}}
    (tmp_path / "test.json").write_text(json.dumps(report))
    table = teachers.who_it_fails(report_figures.load_reports(tmp_path))
    row = next(line for line in table.splitlines() if line.startswith("| 1D CNN"))
    expected = report_figures.corpus_balanced_uar(models["cnn1d"])
    assert row == f"| 1D CNN | {expected:.0%} | 25% |"
    assert "| model | clean audio | a pupil's voice |" in table
    assert teachers.who_it_fails({}) == ""


def per_sex(women_uar: dict, men_uar: dict) -> dict:
    def group(uars):
        per = {d: {"n": 10, "accuracy": u, "uar": u, "macro_f1": u} for d, u in uars.items()}
        return {"overall": {"n": 10 * len(per), "accuracy": 0.0, "uar": 0.0, "macro_f1": 0.0}, "per_dataset": per}

    return {"female": group(women_uar), "male": group(men_uar)}


def test_who_it_fails_by_sex_compares_women_and_men_on_the_corpora_both_speak_in(tmp_path):
    """Issue 27: accuracy by speaker sex. SAVEE's test speaker is a man: the comparison leaves SAVEE out."""
    by_sex = {
        "cnn1d": per_sex({"RAVDESS": 0.6, "CREMA-D": 0.4}, {"RAVDESS": 0.5, "CREMA-D": 0.3, "SAVEE": 0.9}),
        "whisper": per_sex({"RAVDESS": 0.7, "CREMA-D": 0.7}, {"RAVDESS": 0.8, "CREMA-D": 0.8, "SAVEE": 0.1}),
    }
    table = teachers.who_it_fails_by_sex(by_sex)
    assert "of RAVDESS and CREMA-D" in table
    assert "| 1D CNN | 50% | 40% | 10 points better for women |" in table
    assert "| Whisper encoder | 70% | 80% | 10 points better for men |" in table
    assert "(8 women, 8 men; SAVEE's are all men)" in table  # the test speakers of RAVDESS and CREMA-D
    assert teachers.who_it_fails_by_sex({}) == ""
    report = {"clean": {"models": {n: {"per_sex": p} for n, p in by_sex.items()}}}
    assert teachers.load_by_sex(report, tmp_path) == by_sex  # the report's own, when train.evaluate wrote it
    (tmp_path / teachers.BY_SEX_REPORT).write_text(json.dumps({"models": {"lstm": {"per_sex": by_sex["cnn1d"]}}}))
    assert teachers.load_by_sex({"clean": {"models": {"lstm": {}}}}, tmp_path) == {"lstm": by_sex["cnn1d"]}
    assert "| LSTM | 50% | 40% |" in teachers.teachers_page({}, teachers.load_by_sex({}, tmp_path))


def test_the_page_shows_the_committed_results_by_sex():
    committed = json.loads((report_figures.REPORT_DIR / teachers.BY_SEX_REPORT).read_text())["models"]
    page = teachers.teachers_page(report_figures.load_reports())
    for name, p in committed.items():
        _, uar = teachers.sex_uar(p["per_sex"])
        assert f"| {teachers.MODEL_NAMES.get(name, name)} | {uar['female']:.0%} | {uar['male']:.0%} |" in page


@pytest.mark.slow
def test_how_it_works_holds_the_teachers_page(environment, tmp_path):
    environment(EMOTION_TEMP_DIR=str(tmp_path / "app-temp"))  # a temporary directory no running app owns
    import app

    folds = [b for b in app.demo.blocks.values() if type(b).__name__ == "Accordion" and b.elem_id == "teachers"]
    assert len(folds) == 1 and folds[0].label.startswith("For teachers")
    texts = [b.value for b in app.demo.blocks.values() if type(b).__name__ == "Markdown"]
    assert any(
        "## A 10-minute lesson" in t
        and "## Who the models fail" in t
        and "By speaker sex" in t
        and "## The voices the models learned from" in t
        for t in texts
    )
