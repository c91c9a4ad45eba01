"""A classroom's load on the app: N concurrent clients x M requests of real 5 s clips through gradio_client.
A load script, not a timed test.

    python -m bench.load [--clients 30] [--requests 10] [--out bench/load.json]
    python -m bench.load --burst [--clients 30]            # bench/load_burst.json

--burst: a class pressing the button together: every client sends one distinct clip at the same moment
(the clients wait at a barrier, already connected, then all send), through the page's own two events:
/analyse (the first answer: spectrogram, the quick families, summary) and then, as the page does when it
arrives, /analyse_more (Whisper's answer). First-answer and full-answer latencies are reported apart.
Without --burst each request is one /classify (the complete JSON answer).
--repo DIR measures the app of another checkout (e.g. `git worktree add ../base <commit>`), with these clients:
an app that answers /analyse in one stage gives its first answer and its full answer at once.

Each request sends its own recording (a faint dither makes every file distinct), so no answer is shared.
Every request must end in a result or an explicit rejection (queue full); a request that neither
answers nor fails within --timeout counts as hung. Reports median and 95th-percentile latency,
throughput, the server's peak memory, and its memory before and after.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import numpy as np
import soundfile as sf

from emotion_core import settings
from emotion_core.audio import SAMPLE_RATE
from emotion_core.paths import data_dir

from .app_server import AppServer, cpu_s, memory_mb
from .app_speed import speech_clip


def client_run(
    url, speech, n, results, lock, folder: Path, seed: int, start: threading.Barrier | None = None, page: bool = False
):
    """One pupil: n requests, each a different recording (the clip with its own faint dither), so that no
    answer is shared between requests. start: wait there (connected, files written) before the first request.
    page: each request is the page's two events (results get (outcome, first-answer s, full-answer s));
    else one /classify (results get (outcome, s, s))."""
    from gradio_client import Client, handle_file

    rng = np.random.default_rng(seed)
    paths = [folder / f"client{seed}-{i}.wav" for i in range(n)]
    for path in paths:
        sf.write(path, speech + rng.normal(0, 1e-4, speech.shape).astype(np.float32), SAMPLE_RATE)
    try:
        client = Client(url, verbose=False)
    except Exception as e:  # a client that cannot connect still meets the others at the start, then reports
        client, refused = None, f"error: could not connect: {e}"[:200]
    if start is not None:
        start.wait()
    if client is None:
        with lock:
            results.extend((refused, float("nan"), float("nan")) for _ in paths)
        return
    for path in paths:
        t = time.perf_counter()
        first = None
        try:
            if page:
                shown = client.predict(handle_file(str(path)), api_name="/analyse")
                first = time.perf_counter() - t
                answer = shown[4]
                if answer.get("pending"):
                    answer = client.predict(api_name="/analyse_more")[3]
            else:
                answer = client.predict(handle_file(str(path)), api_name="/classify")
            complete = answer.get("lead") in answer.get("models", {}) and not answer.get("pending")
            outcome = "result" if complete else "malformed"  # the answering model, every family answered
        except Exception as e:  # gradio_client raises on queue-full and on server errors
            outcome = "queue full" if "queue" in str(e).lower() and "full" in str(e).lower() else f"error: {e}"[:200]
        full = time.perf_counter() - t
        with lock:
            results.append((outcome, full if first is None else first, full))
    client.close()


def process_cpu_s() -> float:
    """This process's CPU time so far (user + system, every thread) in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"median_s": None, "p95_s": None, "max_s": None}
    return {
        "median_s": round(statistics.median(values), 2),
        "p95_s": round(float(np.percentile(values, 95)), 2),
        "max_s": round(max(values), 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--data")
    ap.add_argument("--burst", action="store_true", help="one request per client, all sent at the same moment")
    ap.add_argument("--out")
    ap.add_argument("--repo", help="the checkout whose app runs (default this one)")
    args = ap.parse_args(argv)
    if args.burst:
        args.requests = 1
    args.out = args.out or ("bench/load_burst.json" if args.burst else "bench/load.json")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        speech = speech_clip(5, data_dir(args.data))
        clip = tmp / "clip5.wav"
        sf.write(clip, speech, SAMPLE_RATE)
        (tmp / "gradio").mkdir()
        server = AppServer(tmp / "gradio", repo=args.repo)
        with server as url:
            from gradio_client import Client, handle_file

            warm_up = server.wait_for_warm_up()  # the app's own (the Whisper encoder's ONNX export among it)
            Client(url, verbose=False).predict(handle_file(str(clip)), api_name="/classify")  # this client's
            rss_before = memory_mb(server.proc.pid)
            results, lock = [], threading.Lock()
            start = threading.Barrier(args.clients + 1) if args.burst else None
            with ThreadPoolExecutor(args.clients) as pool:
                futures = [
                    pool.submit(client_run, url, speech, args.requests, results, lock, tmp, k, start, args.burst)
                    for k in range(args.clients)
                ]
                if start is not None:
                    start.wait(timeout=args.timeout)
                t0 = time.perf_counter()
                server_cpu, own_cpu = cpu_s(server.proc.pid), process_cpu_s()
                hung_clients = 0
                for f in futures:
                    try:
                        f.result(timeout=max(1.0, args.timeout - (time.perf_counter() - t0)))
                    except FutureTimeout:
                        hung_clients += 1
            wall = time.perf_counter() - t0
            server_cpu, own_cpu = cpu_s(server.proc.pid) - server_cpu, process_cpu_s() - own_cpu
            time.sleep(2)
            alive = server.proc.poll() is None
            rss_after = memory_mb(server.proc.pid) if alive else float("nan")
            peak = memory_mb(server.proc.pid, "VmHWM") if alive else float("nan")
            log_tail = server.log.read_text()[-2000:]
    total = args.clients * args.requests
    ok = [(first, full) for o, first, full in results if o == "result"]
    outcomes = {}
    for o, _, _ in results:
        outcomes[o] = outcomes.get(o, 0) + 1
    report = {
        "scenario": (
            "burst: every client sends one clip at the same moment, through the page's two events"
            if args.burst
            else "each client sends its /classify requests one after another"
        ),
        "clients": args.clients,
        "requests_each": args.requests,
        "sent": total,
        "finished": len(results),
        "hung_or_lost": total - len(results),
        "outcomes": outcomes,
        **({"first_answer": percentiles([f for f, _ in ok])} if args.burst else {}),
        "full_answer": percentiles([full for _, full in ok]),
        "throughput_per_s": round(len(ok) / wall, 2),
        "wall_s": round(wall, 1),
        # where the two cores went: the server's CPU time and the load generator's (its clients, on the same cores)
        "cpu_s_per_request": {
            "server": round(server_cpu / total, 3),
            "load_generator": round(own_cpu / total, 3),
        },
        "server_rss_mb_before": rss_before,
        "server_rss_mb_after": rss_after,
        "server_peak_rss_mb": peak,
        "server_alive_after": alive,
        "app_commit": subprocess.run(
            ["git", "-C", str(args.repo or "."), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "app_warm_up": warm_up,
        "app_queue": {"concurrency": settings.current().concurrency, "max_size": settings.current().queue_size},
    }
    print(json.dumps(report, indent=1))
    if not alive or len(outcomes) > 2:
        print("server log tail:\n" + log_tail)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report["hung_or_lost"] == 0 and set(outcomes) <= {"result", "queue full"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
