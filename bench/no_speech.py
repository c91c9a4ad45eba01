"""How well the "no speech" gate separates real speech from sounds that are not speech.

    python -m bench.no_speech [--data DIR] [--clips 1000] [--seed 0] [--workers 2] [--out bench/no_speech.json]

Every clip goes through the app's path up to the gate: load_audio -> prepare_speech -> Silero VAD
(emotion_core.vad.speech_activity) -> enough_speech. Two sets:
- the corpus: a fixed seeded sample of --clips clips of every dataset (0 = all 9,424), each must pass;
- synthetic non-speech made here (DC offset, white/pink/brown noise, tones, a square wave, clicks,
  synthesized chords, mains hum, 60 s of noise...), each must be refused.
Writes, per set, the pass rate, the lowest (corpus) or highest (synthetic) gate score and the scores of the
least fitting clips, so the threshold in emotion_core/vad.py can be chosen on these numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from emotion_core.audio import AudioError, load_audio, prepare_speech
from emotion_core.paths import data_dir
from emotion_core.vad import (
    LEAD_IN_S,
    MIN_SPEECH_SCORE,
    SCORE_S,
    VAD_RATE,
    VAD_THRESHOLD,
    enough_speech,
    speech_activity,
)

RATE = 48_000  # Hz: synthetic sounds are made at a microphone's rate and go through load_audio


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def _noise(seconds: float, colour: str, seed: int) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise, RMS 0.1."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
    spec *= {"white": 1.0, "pink": f**-0.5, "brown": f**-1.0}[colour]
    x = np.fft.irfft(spec, n)
    return 0.1 * x / x.std()


def _chords(seconds: float, seed: int) -> np.ndarray:
    """Music-like: major/minor triads of harmonic tones with a plucked envelope, a new chord every 0.5 s."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    step = int(0.5 * RATE)
    t = np.arange(step) / RATE
    for i in range(0, len(out), step):
        root = 110 * 2 ** (rng.integers(0, 24) / 12)
        third = 3 + rng.integers(0, 2)
        chord = sum(
            np.sin(2 * np.pi * k * root * 2 ** (s / 12) * t) / k**1.5 for s in (0, third, 7) for k in range(1, 8)
        )
        out[i : i + step] = (chord * np.exp(-3 * t))[: len(out) - i]
    return 0.2 * out / np.abs(out).max()


def non_speech() -> dict[str, tuple[int, np.ndarray]]:
    """name -> (rate, samples) of sounds that are not speech; stereo ones are (samples, 2)."""
    t3 = _t(3.0)
    square = 0.3 * np.sign(np.sin(2 * np.pi * 220 * t3))
    clicks = np.zeros_like(t3)
    clicks[:: RATE // 4] = 0.8  # 4 clicks per second
    sounds = {
        "DC offset 0.3": np.full_like(t3, 0.3),
        "DC offset with a little noise": 0.3 + 0.001 * _noise(3.0, "white", 1),
        "white noise": _noise(3.0, "white", 2),
        "pink noise": _noise(3.0, "pink", 3),
        "brown noise": _noise(3.0, "brown", 4),
        "tone 440 Hz": 0.3 * np.sin(2 * np.pi * 440 * t3),
        "tone 150 Hz": 0.3 * np.sin(2 * np.pi * 150 * t3),
        "tone 1 kHz": 0.3 * np.sin(2 * np.pi * 1000 * t3),
        "tone sweep 100 Hz-4 kHz": 0.3 * np.sin(2 * np.pi * (100 * t3 + 3900 * t3**2 / 6)),
        "square wave 220 Hz": square,
        "clicks": clicks,
        "mains hum 50 Hz + harmonics": sum(0.1 / k * np.sin(2 * np.pi * 50 * k * t3) for k in range(1, 8)),
        "chords (music)": _chords(6.0, 5),
        "chords (music), 20 s": _chords(20.0, 6),
        "white noise, 60 s": _noise(60.0, "white", 7),
        "pink noise, 60 s": _noise(60.0, "pink", 8),
        "stereo noise, one channel inverted": np.stack([_noise(3.0, "white", 9), -_noise(3.0, "white", 9)], axis=1),
        "tone 440 Hz, 1 s": 0.3 * np.sin(2 * np.pi * 440 * _t(1.0)),
        "white noise, 1 s": _noise(1.0, "white", 10),
    }
    return {name: (RATE, x.astype(np.float32)) for name, x in sounds.items()}


def measure(source) -> dict:
    """The gate's inputs and verdict for one source load_audio takes."""
    audio = load_audio(source)
    speech = prepare_speech(audio)
    activity = speech_activity(speech)
    speech_s = sum(b - a for a, b in activity.regions)
    return {"score": round(activity.score, 4), "speech_s": round(speech_s, 3), "passes": enough_speech(activity)}


def measure_or_error(path: Path) -> dict:
    try:
        return measure(path)
    except AudioError as e:
        return {"error": str(e)}


def _one_thread():
    import torch

    torch.set_num_threads(1)


def corpus_sample(root: Path, n: int, seed: int) -> list[Path]:
    with open(root.parent / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    if 0 < n < len(rows):
        rows = [rows[i] for i in sorted(np.random.default_rng(seed).choice(len(rows), n, replace=False))]
    return [root / r["path"] for r in rows]


def summary(results: dict[str, dict], want_pass: bool) -> dict:
    ok = [r for r in results.values() if "error" not in r]
    right = [r for r in ok if r["passes"] == want_pass]
    key = (lambda kv: kv[1]["score"]) if want_pass else (lambda kv: -kv[1]["score"])
    hardest = sorted(((k, v) for k, v in results.items() if "error" not in v), key=key)[:10]
    wrong = {k: v for k, v in results.items() if "error" not in v and v["passes"] != want_pass}
    scores = [r["score"] for r in ok]
    return {
        "clips": len(results),
        "decoded": len(ok),
        ("passed" if want_pass else "refused"): len(right),
        "rate": round(len(right) / max(len(ok), 1), 4),
        ("min_score" if want_pass else "max_score"): (min(scores) if want_pass else max(scores)) if scores else None,
        "hardest": dict(hardest),
        "wrong": wrong,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--clips", type=int, default=1000, help="seeded sample of the corpus; 0 = every clip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="processes measuring corpus clips")
    ap.add_argument("--out", default="bench/no_speech.json")
    args = ap.parse_args(argv)
    t = time.time()
    synthetic = {name: measure(src) for name, src in non_speech().items()}
    result = {
        "thresholds": {
            "min_speech_score": MIN_SPEECH_SCORE,
            "score_s": SCORE_S,
            "vad_rate_hz": VAD_RATE,
            "lead_in_s": LEAD_IN_S,
            "region_threshold": VAD_THRESHOLD,
        },
        "synthetic": summary(synthetic, want_pass=False) | {"each": synthetic},
    }
    root = data_dir(args.data)
    if (root.parent / "manifest.csv").is_file():
        paths = corpus_sample(root, args.clips, args.seed)
        from multiprocessing import get_context

        with get_context("spawn").Pool(args.workers, _one_thread) as pool:
            corpus = {}
            for i, (path, r) in enumerate(zip(paths, pool.imap(measure_or_error, paths, chunksize=16), strict=False)):
                corpus[str(path.relative_to(root))] = r
                if i % 500 == 0:
                    print(f"{i} clips, {time.time() - t:.0f} s", flush=True)
        result["corpus"] = summary(corpus, want_pass=True) | {"seed": args.seed}
    result["seconds"] = round(time.time() - t, 1)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(
        json.dumps(
            {
                k: {kk: vv for kk, vv in v.items() if kk not in ("each", "hardest", "wrong")}
                if isinstance(v, dict)
                else v
                for k, v in result.items()
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
