"""Batch command line: one line per file.

    python -m webapp.predict FILES... [--json] [--checkpoints DIR] [--whisper SRC] [--device cpu|cuda]

A file that cannot be used (or holds no speech) prints its reason on its line; the exit status is 1 if any
file failed, 2 if no model could be loaded. In the plain output, control characters in file names (tab,
newline) are written as escapes (\\t, \\n), so every file is one line of tab-separated fields.
"""

from __future__ import annotations

import argparse
import json
import sys

from emotion_core.audio import AudioError
from emotion_core.recognizer import Recognizer

from .service import classify


def plain(name: str) -> str:
    """A file name for the tab-separated output: non-printable characters as Python escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Emotion of each audio file, from every model.")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--json", action="store_true", help="one JSON object per line (the API's answer plus 'file')")
    ap.add_argument("--checkpoints")
    ap.add_argument("--whisper")
    ap.add_argument("--device")
    args = ap.parse_args(argv)
    try:
        rec = Recognizer(args.checkpoints, args.device, args.whisper)  # logs each family that is not running, once
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: the models could not be loaded: {e}", file=sys.stderr)
        return 2
    if not rec.models:
        print(
            f"error: no trained models were found in {rec.dir} "
            f"(expected {', '.join(f + '.pt' for f in rec.unavailable)}); "
            "give the folder that holds them with --checkpoints DIR",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for path in args.files:
        try:
            answer = classify(path, rec).to_json()
        except AudioError as e:
            failed += 1
            print(
                json.dumps({"file": path, "error": str(e)}) if args.json else f"{plain(path)}\terror: {e}", flush=True
            )
            continue
        if args.json:
            print(json.dumps({"file": path, **answer}), flush=True)
        else:
            models = answer["models"]
            cells = [f"{n}={m['label']}:{max(m['probabilities'].values()):.2f}" for n, m in models.items()]
            lead = models[answer["lead"]]
            print(f"{plain(path)}\t{lead['label']}\t" + " ".join(cells), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
