"""The app's speed and memory as a user meets them: the real app on loopback, requests through gradio_client.

    python -m bench.app_speed [--repeats 10] [--out bench/app_speed.json]

- start to ready: `python app.py` until its API answers;
- the first analysis after a start (5 s clip, the page's two events: first answer, then Whisper's), on a warm
  start (the exported Whisper encoder left in the cache directory by the start before) and on a cold one (the
  repository's compiled-bytecode caches removed first and an empty cache directory, as on a fresh install);
- once the app's background warm-up has ended (the encoder's ONNX export among it), a 5 s clip through the
  page's first event (`/analyse`: spectrogram, the quick families, summary) and both
  events (`/analyse` then `/analyse_more`: the full page), and through the `/classify` JSON API; median and p95
  after warm-up;
- a 60 s clip with its timeline (full page result);
- peak resident memory of the server process (VmHWM).
Clips are real speech from the corpus (EMOTION_DATA_DIR) joined end to end, else synthetic.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from emotion_core.audio import SAMPLE_RATE
from emotion_core.paths import data_dir

from .app_server import AppServer, memory_mb


def speech_clip(seconds: float, root: Path) -> np.ndarray:
    from bench.speed import speech_of_length

    clips = []
    if root.is_dir():
        from corpus import select_clips

        clips = select_clips(root, "test")
    return speech_of_length(seconds, clips)


def timed(fn, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return {
        "median_s": round(statistics.median(out), 3),
        "p95_s": round(float(np.percentile(out, 95)), 3),
        "n": repeats,
    }


def page_analysis(client, path) -> tuple[float, float]:
    """The page's two events on one clip, as the page runs them: (s to the first answer, s to the full one)."""
    from gradio_client import handle_file

    t = time.perf_counter()
    shown = client.predict(handle_file(str(path)), api_name="/analyse")
    first = time.perf_counter() - t
    if shown[4].get("pending"):
        client.predict(api_name="/analyse_more")
    return first, time.perf_counter() - t


def remove_bytecode_caches() -> int:
    """The repository's __pycache__ folders (what a fresh clone lacks); returns how many went."""
    import shutil

    repo = Path(__file__).resolve().parent.parent
    found = [d for d in repo.rglob("__pycache__") if ".venv" not in d.parts and "venv" not in d.parts]
    for d in found:
        shutil.rmtree(d, ignore_errors=True)
    return len(found)


def first_after_start(folder: Path, clip: Path, cold: bool, cache: Path) -> dict:
    """The page's first analysis after a start, with the app's cache directory (XDG_CACHE_HOME) at `cache`: cold
    (the repository's bytecode caches removed, and `cache` empty, as after a fresh install: no exported encoder)
    or warm (what an earlier start left there). The server finishes its warm-up before it stops, so a cold start
    leaves the exported encoder for the warm one, as a Space's restart finds it."""
    from gradio_client import Client

    removed = remove_bytecode_caches() if cold else 0
    exported_before = sorted(p.name for p in cache.glob("emotion-recognition/*.onnx"))
    if cold and exported_before:
        raise RuntimeError(f"a cold start needs an empty cache directory: {cache} holds {exported_before}")
    server = AppServer(folder, env={"XDG_CACHE_HOME": str(cache)})
    with server as url:
        client = Client(url, verbose=False)
        first, full = page_analysis(client, clip)
        client.close()
        warm_up = server.wait_for_warm_up()
    return {
        "start_to_ready_s": round(server.ready_s, 2),
        "first_answer_s": round(first, 2),
        "full_answer_s": round(full, 2),
        "bytecode_caches_removed": removed,
        "exported_encoder_in_cache": bool(exported_before),
        "warm_up": warm_up,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--data")
    ap.add_argument("--out", default="bench/app_speed.json")
    args = ap.parse_args(argv)
    from gradio_client import Client, handle_file

    root = data_dir(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = {}
        for seconds in (5, 60):
            paths[seconds] = tmp / f"clip{seconds}.wav"
            sf.write(paths[seconds], speech_clip(seconds, root), SAMPLE_RATE)
        (tmp / "gradio").mkdir()
        result = {
            "first_analysis_after_a_start": {
                "cold": first_after_start(tmp / "gradio", paths[5], cold=True, cache=tmp / "cache"),
                "warm": first_after_start(tmp / "gradio", paths[5], cold=False, cache=tmp / "cache"),
            }
        }
        server = AppServer(tmp / "gradio", env={"XDG_CACHE_HOME": str(tmp / "cache")})
        with server as url:
            client = Client(url, verbose=False)
            result["start_to_ready_s"] = round(server.ready_s, 2)
            result["warm_up"] = server.wait_for_warm_up()  # the steady state is measured
            result["5s_first_answer"] = timed(
                lambda: client.predict(handle_file(str(paths[5])), api_name="/analyse"), args.repeats
            )
            result["5s_full_page"] = timed(lambda: page_analysis(client, paths[5]), args.repeats)
            result["5s_classify_api"] = timed(
                lambda: client.predict(handle_file(str(paths[5])), api_name="/classify"), args.repeats
            )
            result["60s_full_page_with_timeline"] = timed(
                lambda: page_analysis(client, paths[60]), max(3, args.repeats // 3)
            )
            answer = client.predict(handle_file(str(paths[60])), api_name="/classify")
            result["60s_timeline_windows"] = len(answer["timeline"])
            result["server_peak_rss_mb"] = memory_mb(server.proc.pid, "VmHWM")
            client.close()
    print(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
