"""The teachers' page (folded under How it works): the lesson uses the three tabs, the questions cover what issue 27 asks, the table of who
the models fail is the committed report's, and every corpus has its card."""
from __future__ import annotations

import json

import pytest

from webapp import report_figures, teachers


def test_the_lesson_the_questions_and_the_cards():
    page = teachers.teachers_page(report_figures.load_reports())
    for tab in ("Try it", "Guess the emotion", "Act it out", "How it works"):
        assert f"**{tab}**" in page
    for topic in ("Acted or felt?", "Who are the actors?", "Who do the models fail?", "Privacy.", "AI Act, Art. 5(1)(f)"):
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


@pytest.mark.slow
def test_how_it_works_holds_the_teachers_page():
    import app

    folds = [b for b in app.demo.blocks.values() if type(b).__name__ == "Accordion" and b.elem_id == "teachers"]
    assert len(folds) == 1 and folds[0].label.startswith("For teachers")
    texts = [b.value for b in app.demo.blocks.values() if type(b).__name__ == "Markdown"]
    assert any("## A 10-minute lesson" in t and "## Who the models fail" in t and "## The voices the models learned from"
               in t for t in texts)
