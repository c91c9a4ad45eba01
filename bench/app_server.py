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
