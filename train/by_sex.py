"""Who the models fail, by speaker sex, from committed files only: no corpus, no model.

    python -m train.by_sex [--answers reports/test_clips.json] [--out reports/by_sex.json]

Reads every clip's probabilities (reports/test_clips.json, written by train.clip_answers) and each speaker's sex
(corpus/splits.csv, from the corpus manifest), and writes, per model, the metrics of the women's and the men's
clips, per dataset:
  {"source", "split", "condition", "models": {name: {"per_sex": {sex: {"overall": M, "per_dataset": {dataset: M}}}}}}
(the "per_sex" that train.evaluate now writes into every model's entry of its report). Sexes are compared over
the datasets with test speakers of both (RAVDESS and CREMA-D; SAVEE's speakers are all men); the table it prints
says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from corpus import read_speaker_sexes
from emotion_core.labels import LABEL_INDEX
from emotion_core.paths import PROJECT_DIR

from .metrics import NO_ANSWER
from .report import by_group, by_sex_lines

ANSWERS = PROJECT_DIR / "reports" / "test_clips.json"
OUT = PROJECT_DIR / "reports" / "by_sex.json"


def by_sex(answers: dict, sexes: dict[str, str]) -> dict:
    """train.clip_answers' document -> {"models": {name: {"per_sex": ...}}} (each clip's answer: its top probability;
    a clip without an answer counts as a miss)."""
    clips = answers["clips"]
    y = [LABEL_INDEX[label] for _file, _speaker, _dataset, label in clips]
    datasets = [dataset for _file, _speaker, dataset, _label in clips]
    sex = [sexes.get(speaker, "unknown") for _file, speaker, _dataset, _label in clips]
    models = {
        name: {"per_sex": by_group(y, [NO_ANSWER if row is None else int(np.argmax(row)) for row in p], datasets, sex)}
        for name, p in answers["probabilities"].items()
    }
    return {
        "source": "reports/test_clips.json and corpus/splits.csv (python -m train.by_sex)",
        "split": answers["split"],
        "condition": answers["condition"],
        "models": models,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Each model's results by speaker sex, from the committed clip answers.")
    ap.add_argument("--answers", default=str(ANSWERS), help="train.clip_answers' JSON")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    result = by_sex(json.loads(Path(args.answers).read_text()), read_speaker_sexes())
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(by_sex_lines(result["models"])))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
