"""Start the real app in a subprocess on loopback, for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the project


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's memory from /proc/<pid>/status in MB: VmRSS now, or VmHWM (its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 0)
    return float("nan")


def cpu_s(pid: int) -> float:
    """A process's CPU time so far (user + system, all its threads) in seconds, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`with AppServer(tmp_dir) as url:` runs `python app.py` with its temporary directory (EMOTION_TEMP_DIR,
    where Gradio's uploads go) at tmp_dir. `kill()` ends it like a crash; entering again restarts it."""

    def __init__(self, temp_dir: Path, env: dict | None = None, timeout_s: float = 300, repo: Path | None = None):
        """repo: the checkout whose app.py runs (default this one; another, e.g. an earlier commit, to compare)."""
        self.temp_dir, self.extra_env, self.timeout_s = Path(temp_dir), env or {}, timeout_s
        self.repo = Path(repo).resolve() if repo else REPO
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = self.temp_dir.parent / f"app-{self.port}.log"

    def __enter__(self) -> str:
        env = {
            **os.environ,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            "EMOTION_TEMP_DIR": str(self.temp_dir),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            **self.extra_env,
        }
        self.started = time.perf_counter()
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0  # this start's lines follow
        self.proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=self.repo, env=env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT
        )
        deadline = time.time() + self.timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited: {self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url + "gradio_api/info", timeout=2)
                self.ready_s = time.perf_counter() - self.started
                return self.url
            except OSError:
                time.sleep(0.5)
        self.proc.kill()
        raise RuntimeError(f"app did not start in {self.timeout_s} s: {self.log.read_text()[-3000:]}")

    def wait_for_warm_up(self, timeout_s: float = 300) -> str:
        """Block until this start's background warm-up (webapp.events.PageEvents.warm_up: an analysis on each
        path, then the ONNX export of the Whisper encoder) has logged its end; returns that message (the line
        after app.py's "time logger: " prefix). Benchmarks of a class in steady state wait for it; those of the
        first analysis after a start do not."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            with open(self.log, errors="replace") as f:
                f.seek(self.log_offset)
                for line in f:
                    if "warm-up done" in line or "warm-up failed" in line:
                        return line.strip().split(": ", 1)[-1]
            time.sleep(0.5)
        raise RuntimeError(f"the app's warm-up did not end in {timeout_s} s: {self.log.read_text()[-3000:]}")

    def kill(self):
        """kill -9: no exit handler runs (what a crash or an out-of-memory kill leaves behind)."""
        self.proc.kill()
        self.proc.wait(20)

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
