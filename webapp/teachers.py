"""For teachers (folded under How it works): a 10-minute lesson with the three tabs, questions to discuss, who the
models fail (read from the committed test report), and a card for each corpus the models learned from."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np

from corpus import SPLITS_CSV
from emotion_core.labels import MODEL_NAMES

from .report_figures import CONDITIONS, PANEL_TITLES, REPORT_DIR, corpus_balanced_uar

BY_SEX_REPORT = "by_sex.json"  # python -m train.by_sex, until reports/test.json holds "per_sex" itself
SEX_WORDS = {"female": "women's voices", "male": "men's voices"}


def markdown_table(header: tuple, rows: list[tuple]) -> str:
    """A markdown table: a header row, the rule, then one row per tuple."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


LESSON_PLAN = [  # minutes, tab, what the class does
    (
        "0-2",
        "**Try it**",
        'Press an example that "fools every model". Read the spectrogram together: where is the voice loud, high, '
        "fast?",
    ),
    (
        "2-5",
        "**Guess the emotion**",
        "Three rounds, the class voting by hand. Compare the class, the models and CREMA-D's listeners.",
    ),
    (
        "5-8",
        "**Act it out**",
        "Two volunteers act the named emotion. Did the models hear what was meant? Did the class?",
    ),
    (
        "8-10",
        "**How it works**",
        "Look at the four panels: the same clips clean, in a classroom, in a pupil's voice, and both.",
    ),
]
CORPUS_CARDS = [  # corpus, speakers, ages, what was acted, accent and language, licence
    (
        "RAVDESS (Livingstone & Russo, 2018)",
        "24 professional actors, 12 women and 12 men",
        "21-33",
        'two neutral statements ("Kids are talking by the door", "Dogs are sitting by the door") in 8 emotions, '
        "2 intensities",
        "North American English",
        "CC BY-NC-SA 4.0",
    ),
    (
        "CREMA-D (Cao et al., 2014)",
        "91 actors, 48 men and 43 women, of several ethnicities",
        "20-74",
        "12 sentences in 6 emotions, up to 4 intensities; every clip rated by about 10 listeners",
        "American English",
        "Open Database Licence 1.0",
    ),
    (
        "TESS (Dupuis & Pichora-Fuller, 2010)",
        "2 actresses",
        "26 and 64",
        '"Say the word ..." with 200 words, in 7 emotions',
        "Canadian English (Toronto)",
        "CC BY-NC-ND 4.0",
    ),
    (
        "SAVEE (Haq & Jackson, 2009)",
        "4 men, researchers at the University of Surrey",
        "27-31",
        "15 TIMIT sentences per emotion, in 7 emotions",
        "British English",
        "free for research use",
    ),
]

LESSON = f"""## A 10-minute lesson

{markdown_table(("minutes", "tab", "what the class does"), LESSON_PLAN)}

## Questions to discuss

- **Acted or felt?** Every training clip is an actor asked to *sound* angry or sad. Is that the same as being angry?
  What would the models make of someone who is sad but speaks calmly?
- **Who are the actors?** Adults, mostly from North America and England, reading set sentences in a studio (the
  cards below). Nobody in the training data is your age, has your accent or speaks another language.
- **Who do the models fail?** Compare the panels of How it works and the table below: a pupil's voice and a noisy
  room cost every model accuracy. Which answers do the models give too often (the confusion matrices)?
- **Privacy.** A recording stays only while the page shows it, and is deleted when it is replaced or the page
  closes. Why would it matter if it were kept?
- **Why this is only a demonstration.** Inferring the emotions of pupils in schools (and of employees at work) is
  prohibited in the EU (AI Act, Art. 5(1)(f)). This page shows how the technology works and how often it is wrong;
  it says nothing reliable about anyone who uses it.
"""

DATASET_CARDS = f"""## The voices the models learned from

{markdown_table(("corpus", "speakers", "ages", "what was acted", "accent and language", "licence"), CORPUS_CARDS)}

None of the speakers is a child or a teenager: the "pupil's voice" condition is a simulation (each adult's voice
made higher and shorter-throated, as a child's or teenager's of the same sex), not a recording of pupils.
"""


def who_it_fails(reports: dict[str, dict]) -> str:
    """Markdown: each model's corpus-balanced UAR in every condition of the committed test report ({} -> '')."""
    conds = [c for c in CONDITIONS if c in reports]
    if not conds:
        return ""
    names = list(reports[conds[0]]["models"])
    lines = [
        "## Who the models fail",
        "",
        "Balanced recall on speakers the models never heard (chance: 14%), from `reports/test.json`:",
        "",
        "| model | " + " | ".join(PANEL_TITLES[c] for c in conds) + " |",
        "|---|" + "---|" * len(conds),
    ]
    for name in names:
        cells = [
            f"{corpus_balanced_uar(reports[c]['models'][name]):.0%}" if name in reports[c]["models"] else "-"
            for c in conds
        ]
        lines.append(f"| {MODEL_NAMES.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def load_by_sex(reports: dict[str, dict], report_dir: Path = REPORT_DIR) -> dict[str, dict]:
    """{model: per_sex} on the clean test speakers: the clean report's own (train.evaluate writes "per_sex" now),
    else reports/by_sex.json (train.by_sex); {} when neither has it."""
    clean = reports.get("clean", {}).get("models", {})
    if clean and all("per_sex" in m for m in clean.values()):
        return {name: m["per_sex"] for name, m in clean.items()}
    try:
        doc = json.loads((Path(report_dir) / BY_SEX_REPORT).read_text())
    except (OSError, ValueError):
        return {}
    return {name: m["per_sex"] for name, m in doc["models"].items()}


def sex_uar(per_sex: dict) -> tuple[list[str], dict[str, float]]:
    """(the datasets with speakers of every sex, {sex: mean UAR over them}): SAVEE's speakers are all men, so a
    plain pooled figure would compare women on two datasets with men on three."""
    shared = [
        d for d in next(iter(per_sex.values()))["per_dataset"] if all(d in g["per_dataset"] for g in per_sex.values())
    ]
    return shared, {sex: float(np.mean([g["per_dataset"][d]["uar"] for d in shared])) for sex, g in per_sex.items()}


def test_speakers_by_sex(datasets) -> Counter:
    """How many test speakers of each sex the given corpora have (corpus/splits.csv)."""
    with open(SPLITS_CSV, newline="") as f:
        return Counter(r["sex"] for r in csv.DictReader(f) if r["split"] == "test" and r["dataset"] in datasets)


def who_it_fails_by_sex(by_sex: dict[str, dict]) -> str:
    """Markdown: each model's balanced recall on women's and men's voices, and the gap in points ({} -> '')."""
    sexes = [s for s in SEX_WORDS if all(s in p for p in by_sex.values())]
    if not by_sex or len(sexes) < 2:
        return ""
    shared, _ = sex_uar(next(iter(by_sex.values())))
    speakers = test_speakers_by_sex(shared)
    lines = [
        f"By speaker sex: balanced recall on the clean test clips of {' and '.join(shared)}, the corpora whose test "
        f"speakers include women and men ({speakers['female']} women, {speakers['male']} men; SAVEE's are all men). "
        "With so few speakers, a gap of a few points may belong to these particular voices rather than to their sex.",
        "",
        "| model | " + " | ".join(SEX_WORDS[s] for s in sexes) + " | gap |",
        "|---|" + "---|" * (len(sexes) + 1),
    ]
    for name, per_sex in by_sex.items():
        _, uar = sex_uar({s: per_sex[s] for s in sexes})
        women, men = round(100 * uar["female"]), round(100 * uar["male"])
        gap = f"{abs(women - men)} points better for {'women' if women > men else 'men'}" if women != men else "none"
        lines.append(f"| {MODEL_NAMES.get(name, name)} | {women}% | {men}% | {gap} |")
    return "\n".join(lines) + "\n"


def teachers_page(reports: dict[str, dict], by_sex: dict[str, dict] | None = None) -> str:
    """The whole tab, in the order a teacher reads it (by_sex: {model: per_sex}, default load_by_sex(reports))."""
    by_sex = load_by_sex(reports) if by_sex is None else by_sex
    return "\n".join(
        part for part in (LESSON, who_it_fails(reports), who_it_fails_by_sex(by_sex), DATASET_CARDS) if part
    )
