"""The README and docs: every results table is what reports/test.json gives (train.results_doc), every page the
README links to exists, and the README stays short."""

from __future__ import annotations

import json
import re

from train import results_doc

from .shared_paths import REPO


def test_the_results_tables_are_the_committed_reports():
    assert results_doc.main(["--check"]) == 0


def test_a_changed_number_in_a_table_is_caught(tmp_path, monkeypatch):
    report = json.loads(results_doc.REPORT.read_text())
    text = "<!-- results:headline -->\n<!-- /results:headline -->\n"
    rendered = results_doc.render(text, report, ["headline"])
    first = next(iter(report["conditions"]["clean"]["models"]))
    cb = results_doc._cb(report["conditions"]["clean"]["models"], first)
    assert f"| {first} | {cb:.3f} |" in rendered
    tampered = rendered.replace(f"| {first} | {cb:.3f} |", f"| {first} | {cb + 0.1:.3f} |")
    assert results_doc.render(tampered, report, ["headline"]) == rendered


def test_the_readme_is_short_and_its_links_exist():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for target in re.findall(r"\]\(((?:docs|reports|examples)/[^)#]*)\)", readme):
        assert (REPO / target).exists(), target
    for page in (REPO / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.(?:md|json|png)|[^)#:]+/)\)", page.read_text()):
            assert (page.parent / target).exists(), (page.name, target)
