"""Batch command line: one line per file.

    python -m emotion_core.predict FILES... [--json] [--checkpoints DIR] [--whisper SRC] [--device cpu|cuda]

A file that cannot be used prints its reason on its line; the exit status is 1 if any file failed.
"""
from __future__ import annotations

import argparse
import json
import sys

from .audio import AudioError
from .recognizer import Recognizer
from .service import classify


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Emotion of each audio file, from every model.")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--json", action="store_true", help="one JSON object per line (the API's answer plus 'file')")
    ap.add_argument("--checkpoints")
    ap.add_argument("--whisper")
    ap.add_argument("--device")
    args = ap.parse_args(argv)
    rec = Recognizer(args.checkpoints, args.device, args.whisper)  # logs each family that is not running, once
    failed = 0
    for path in args.files:
        try:
            answer = classify(path, rec).to_json()
        except AudioError as e:
            failed += 1
            print(json.dumps({"file": path, "error": str(e)}) if args.json else f"{path}\terror: {e}", flush=True)
            continue
        if args.json:
            print(json.dumps({"file": path, **answer}), flush=True)
        else:
            models = answer["models"]
            cells = [f"{n}={m['label']}:{max(m['probabilities'].values()):.2f}" for n, m in models.items()]
            lead = models[answer["lead"]]
            print(f"{path}\t{lead['label']}\t" + " ".join(cells), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
