"""For teachers (folded under How it works): a 10-minute lesson with the three tabs, questions to discuss, who the
models fail (read from the committed test report), and a card for each corpus the models learned from."""
from __future__ import annotations

from emotion_core.labels import MODEL_NAMES

from .report_figures import CONDITIONS, PANEL_TITLES, corpus_balanced_uar

LESSON = """## A 10-minute lesson

| minutes | tab | what the class does |
|---|---|---|
| 0-2 | **Try it** | Press an example that "fools every model". Read the spectrogram together: where is the voice loud, high, fast? |
| 2-5 | **Guess the emotion** | Three rounds, the class voting by hand. Compare the class, the models and CREMA-D's listeners. |
| 5-8 | **Act it out** | Two volunteers act the named emotion. Did the models hear what was meant? Did the class? |
| 8-10 | **How it works** | Look at the four panels: the same clips clean, in a classroom, in a pupil's voice, and both. |

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

DATASET_CARDS = """## The voices the models learned from

| corpus | speakers | ages | what was acted | accent and language | licence |
|---|---|---|---|---|---|
| RAVDESS (Livingstone & Russo, 2018) | 24 professional actors, 12 women and 12 men | 21-33 | two neutral statements ("Kids are talking by the door", "Dogs are sitting by the door") in 8 emotions, 2 intensities | North American English | CC BY-NC-SA 4.0 |
| CREMA-D (Cao et al., 2014) | 91 actors, 48 men and 43 women, of several ethnicities | 20-74 | 12 sentences in 6 emotions, up to 4 intensities; every clip rated by about 10 listeners | American English | Open Database Licence 1.0 |
| TESS (Dupuis & Pichora-Fuller, 2010) | 2 actresses | 26 and 64 | "Say the word ..." with 200 words, in 7 emotions | Canadian English (Toronto) | CC BY-NC-ND 4.0 |
| SAVEE (Haq & Jackson, 2009) | 4 men, researchers at the University of Surrey | 27-31 | 15 TIMIT sentences per emotion, in 7 emotions | British English | free for research use |

None of the speakers is a child or a teenager: the "pupil's voice" condition is a simulation (each adult's voice
made higher and shorter-throated, as a child's or teenager's of the same sex), not a recording of pupils.
"""


def who_it_fails(reports: dict[str, dict]) -> str:
    """Markdown: each model's corpus-balanced UAR in every condition of the committed test report ({} -> '')."""
    conds = [c for c in CONDITIONS if c in reports]
    if not conds:
        return ""
    names = list(reports[conds[0]]["models"])
    lines = ["## Who the models fail", "",
             "Balanced recall on speakers the models never heard (chance: 14%), from `reports/test.json`:", "",
             "| model | " + " | ".join(PANEL_TITLES[c] for c in conds) + " |", "|---|" + "---|" * len(conds)]
    for name in names:
        cells = [f"{corpus_balanced_uar(reports[c]['models'][name]):.0%}" if name in reports[c]["models"] else "-"
                 for c in conds]
        lines.append(f"| {MODEL_NAMES.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def teachers_page(reports: dict[str, dict]) -> str:
    """The whole tab, in the order a teacher reads it."""
    return "\n".join(part for part in (LESSON, who_it_fails(reports), DATASET_CARDS) if part)
