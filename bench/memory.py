"""Memory of the app for a long clip (issue 28 item 8), measured on the real server on loopback.

One server answers a short clip first (so that what every first request allocates is in the baseline), then
for each scenario its peak resident memory is reset (/proc/<pid>/clear_refs) and read back (VmHWM) after:
one /classify of the clip, one /analyse, and two /classify at once. "after" is the resident memory once the
answers are in and the server is idle again.

    python -m bench.memory                      # a 10-minute clip; JSON on stdout and in bench/memory.json
    python -m bench.memory --seconds 120 --out /tmp/memory.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from .app_server import REPO, AppServer, memory_mb

RATE = 16_000


def speech(seconds: float) -> np.ndarray:
    """Real speech for `seconds`: the shipped example clips (actors of RAVDESS and CREMA-D) one after another
    with short pauses, round after round, as a long recording of a class would be."""
    from emotion_core import load_audio

    clips = [load_audio(p) for p in sorted((REPO / "examples").glob("*.opus"))]
    pause = np.zeros(int(0.4 * RATE), np.float32)
    parts, n = [], 0
    while n < seconds * RATE:
        for c in clips:
            parts += [c, pause]
            n += len(c) + len(pause)
    return np.concatenate(parts)[: int(seconds * RATE)]


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0+)


def settle(pid: int, seconds: float = 3.0) -> float:
    time.sleep(seconds)
    return memory_mb(pid)


def ask_models(url, path) -> list[str]:
    """The warm-up: a short clip through /analyse and /classify (what every first request loads is then in
    the baseline). Returns the families that answered."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    try:
        client.predict(handle_file(str(path)), api_name="/analyse")
        return list(client.predict(handle_file(str(path)), api_name="/classify")["models"])
    finally:
        client.close()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="length of the long clip (s)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("memory.json"))
    args = ap.parse_args(argv)
    from gradio_client import Client, handle_file

    work = Path(tempfile.mkdtemp(prefix="emotion-memory-"))
    long_clip, short_clip = work / "long.wav", work / "short.wav"
    sf.write(long_clip, speech(args.seconds), RATE, subtype="PCM_16")
    sf.write(short_clip, speech(4.0), RATE, subtype="PCM_16")
    result = {"clip_s": args.seconds, "scenarios": {}}
    from emotion_core.settings import current

    whisper = (
        current().whisper
        if "whisper" in current().given
        else str(REPO.parent / "shared" / "weights" / "whisper-base-encoder-hf")
    )
    server = AppServer(work / "app-tmp", {"EMOTION_SWEEP_S": "600", "EMOTION_WHISPER": whisper})
    with server as url:
        pid = server.proc.pid
        result["families"] = sorted(ask_models(url, short_clip))
        result["app_warm_up"] = server.wait_for_warm_up()  # the ONNX Runtime sessions are in the baseline too

        def ask(api_name, path):
            client = Client(url, verbose=False)
            try:
                return client.predict(handle_file(str(path)), api_name=api_name)
            finally:
                client.close()

        for name, api_name, at_once in (
            ("classify", "/classify", 1),
            ("analyse", "/analyse", 1),
            ("classify, two at once", "/classify", 2),
        ):
            before = settle(pid)
            reset_peak(pid)
            t = time.perf_counter()
            with ThreadPoolExecutor(at_once) as pool:
                answers = list(pool.map(lambda _, api=api_name: ask(api, long_clip), range(at_once)))
            seconds = time.perf_counter() - t
            peak = memory_mb(pid, "VmHWM")
            after = settle(pid)
            ok = all(a is not None for a in answers)
            result["scenarios"][name] = {
                "rss_before_mb": before,
                "peak_mb": peak,
                "added_at_peak_mb": peak - before,
                "rss_after_mb": after,
                "left_after_mb": after - before,
                "wall_s": round(seconds, 1),
                "answered": ok,
            }
            print(name, result["scenarios"][name], flush=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
