"""The app's own temporary directory and the bookkeeping of the recordings uploaded into it.

Guarantee: no user audio outlives its use. A recording is kept while a request or a page session uses it
(so the page can replay, re-analyse and explain it), deleted when its last user lets go, and whatever
escapes that (an upload refused by a full queue, a client that uploads and disconnects, a request cut off)
is swept once nothing has touched it for one sweep interval. The directory is cleared at start-up (what a
`kill -9` left behind) and on exit.

Gradio stores an upload at <temp>/<hash of its content>/<name>: identical uploads share one file, so a file
is only deleted when no request or session holds it and no upload of it is pending or in flight. Only
files that came through the upload route are ever deleted: an example's cached copy, or any file placed
in the directory by other means, is never touched by a request.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

TEMP_ENV = "EMOTION_TEMP_DIR"  # the directory the app owns (emotion_core.settings)
SWEEP_S = 60.0  # default seconds an unused upload may stay on disk (EMOTION_SWEEP_S)
MARKER = ".emotion-app"  # written into a directory the app created: only such a directory is ever cleared
LOCK = ".lock"  # held (flock) while an app runs: two apps never clear each other's files
UPLOAD_ROUTES = ("/gradio_api/upload", "/upload")  # Gradio's file upload endpoint
MULTIPART_SLACK = 64 * 1024  # bytes of multipart headers allowed on top of the file size cap

log = logging.getLogger("emotion_core.uploads")


def parse_size(text: str) -> int:
    """"25mb" / "25 MB" / "1gb" / "4096" -> bytes (the syntax of Gradio's max_file_size)."""
    text = str(text).strip().lower().replace(" ", "")
    for suffix, scale in (("gb", 2**30), ("mb", 2**20), ("kb", 2**10), ("b", 1)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * scale)
    return int(text)


class TempDirInUse(RuntimeError):
    pass


def own_temp_dir(base: str | os.PathLike | None = None) -> tuple[Path, object]:
    """Create (or take back) the app's directory, lock it, clear it, and point GRADIO_TEMP_DIR into it.

    Returns (Gradio's temporary directory inside it, the lock file object to keep open). Refuses a
    non-empty directory the app did not create (EMOTION_TEMP_DIR=/tmp must never clear /tmp)."""
    from . import settings

    base = Path(base or settings.get(TEMP_ENV) or Path(tempfile.gettempdir()) / "emotion-app").resolve()
    base.mkdir(parents=True, exist_ok=True)
    if not (base / MARKER).exists() and any(base.iterdir()):
        raise TempDirInUse(f"{base} holds files the app did not create; set {TEMP_ENV} to a new directory")
    (base / MARKER).write_text("temporary files of the speech emotion app; deleted at start-up and exit\n")
    lock = open(base / LOCK, "w")  # noqa: SIM115 (held open for the life of the app)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise TempDirInUse(f"another running app owns {base}; set {TEMP_ENV} to a directory of its own") from None
    gradio_dir = base / "gradio"
    left = clear(gradio_dir)
    if left:
        log.info("start-up: removed %d file(s) left by an earlier run", left)
    gradio_dir.mkdir()
    os.environ["GRADIO_TEMP_DIR"] = str(gradio_dir)
    return gradio_dir, lock


def clear(directory: Path) -> int:
    """Delete a directory and everything in it; returns how many files it held."""
    if not directory.exists():
        return 0
    n = sum(1 for p in directory.rglob("*") if p.is_file())
    shutil.rmtree(directory, ignore_errors=True)
    return n


class Uploads:
    """Who holds which uploaded file, and the deletion of each once nobody does.

    holder: a page session (its session hash: the clip on its page) or a request (an API call)."""

    def __init__(self, root: Path, sweep_s: float = SWEEP_S):
        self.root, self.sweep_s = Path(root).resolve(), float(sweep_s)
        self._lock = threading.Lock()
        self._last_touch: dict[Path, float] = {}  # every uploaded file not yet deleted -> last use (monotonic)
        self._pending: Counter = Counter()  # uploads of a path that no request has claimed yet
        self._holders: dict[Path, set[str]] = {}
        self._held: dict[str, Path] = {}
        self._in_flight = 0  # uploads being received or moved into place

    # -- the upload route (called by UploadMiddleware) --
    def upload_started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def upload_finished(self, paths: list[str]) -> None:
        with self._lock:
            self._in_flight -= 1
            now = time.monotonic()
            for p in paths:
                p = Path(p).resolve()
                if self.root in p.parents:
                    self._last_touch[p] = now
                    self._pending[p] += 1

    def is_upload(self, path) -> bool:
        with self._lock:
            return Path(path).resolve() in self._last_touch

    # -- requests and sessions --
    def hold(self, holder: str, path) -> bool:
        """`holder` uses `path` (replacing what it held before). False if the path is not an upload (an
        example, a file placed by other means): such a file is never deleted."""
        p = Path(path).resolve() if path else None
        with self._lock:
            previous = self._held.get(holder)
            if previous is not None and previous != p:
                self._let_go(holder, previous)
            if p is None or p not in self._last_touch:
                return False
            self._held[holder] = p
            self._holders.setdefault(p, set()).add(holder)
            if self._pending[p]:  # this request's own upload (or a re-upload of the same clip)
                self._pending[p] -= 1
            self._last_touch[p] = time.monotonic()
            return True

    def release(self, holder: str) -> None:
        """`holder` is done (request finished, session ended, clip cleared): delete its file if nobody
        else holds it and no identical upload is pending or arriving."""
        with self._lock:
            p = self._held.get(holder)
            if p is not None:
                self._let_go(holder, p)

    def _let_go(self, holder: str, p: Path) -> None:  # caller holds the lock
        del self._held[holder]
        holders = self._holders.get(p, set())
        holders.discard(holder)
        self._last_touch[p] = time.monotonic()
        if not holders:
            self._holders.pop(p, None)
            if not self._pending[p] and not self._in_flight:
                self._delete(p)

    def _delete(self, p: Path) -> None:  # caller holds the lock; folders are left to sweep()
        p.unlink(missing_ok=True)
        self._last_touch.pop(p, None)
        self._pending.pop(p, None)

    def held_paths(self) -> set[Path]:
        with self._lock:
            return set(self._holders)

    # -- the sweep --
    def sweep(self, now: float | None = None) -> int:
        """Delete every upload nobody holds that is older than one sweep interval, and whatever else an
        upload left in the directory (a cut-off upload's tmpXXXX, an empty folder). Returns files deleted."""
        now = time.monotonic() if now is None else now
        wall = time.time()
        deleted = 0
        with self._lock:
            if self._in_flight:  # a file being moved into place looks like a leftover: wait for the next sweep
                return 0
            for p, touched in list(self._last_touch.items()):
                if p not in self._holders and now - touched >= self.sweep_s:
                    deleted += p.exists()
                    self._delete(p)
            for p in list(self.root.glob("tmp*")):  # Gradio receives an upload at the top level first
                if p.is_file() and self._age(p, wall) >= self.sweep_s:
                    p.unlink(missing_ok=True)
                    deleted += 1
            for d in list(self.root.iterdir()) if self.root.exists() else []:
                if d.is_dir() and not any(d.iterdir()) and self._age(d, wall) >= self.sweep_s:
                    try:
                        d.rmdir()
                    except OSError:
                        pass
        if deleted:
            log.info("sweep: deleted %d unused upload(s)", deleted)
        return deleted

    @staticmethod
    def _age(p: Path, wall: float) -> float:
        """Seconds since the file was last written (a folder: since an entry was added or removed)."""
        try:
            return wall - p.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def start_sweeping(self) -> threading.Thread:
        """A daemon thread that sweeps four times per interval: an unused upload is gone within
        1.25 intervals of its last use."""
        def loop():
            while True:
                time.sleep(self.sweep_s / 4)
                try:
                    self.sweep()
                except Exception as e:  # noqa: BLE001 (the sweep must outlive an odd file)
                    log.warning("sweep failed: %s", e)

        t = threading.Thread(target=loop, name="upload-sweep", daemon=True)
        t.start()
        return t


def track_url_fetches(component, registry: Uploads, refuse) -> None:
    """An audio input given as a web address ({"path": "https://..."}, or gradio_client's handle_file(url)) is
    fetched by Gradio itself into its cache, not through the upload route: count each fetched file as an
    upload, so the request that reads it deletes it (and the sweep, if nothing claims it). Gradio fetches
    public addresses only (its SSRF guard refuses loopback and private hosts); a refused or failed fetch
    raises refuse(ValueError(plain message)) and leaves at most an empty folder, which the sweep removes."""
    from gradio_client.utils import is_http_url_like

    fetch = component.async_move_resource_to_block_cache

    async def fetch_as_upload(url_or_path):
        if not (isinstance(url_or_path, str) and is_http_url_like(url_or_path)):
            return await fetch(url_or_path)
        registry.upload_started()
        path = None
        try:
            path = await fetch(url_or_path)
        except Exception as e:  # noqa: BLE001 (safehttpx's refusal, an HTTP error status, a network failure)
            raise refuse(ValueError(f"The audio at {url_or_path} could not be fetched ({e}). Only public web "
                                    "addresses are fetched: upload the file instead.")) from None
        finally:
            registry.upload_finished([path] if path else [])
        return path

    component.async_move_resource_to_block_cache = fetch_as_upload


class UploadMiddleware:
    """ASGI middleware on Gradio's upload route: refuses a request whose body exceeds `max_bytes` in total
    (Gradio's own cap is per file), and tells `uploads` which files each upload stored."""

    def __init__(self, app, uploads: Uploads, max_bytes: int):
        self.app, self.uploads, self.max_bytes = app, uploads, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].endswith(UPLOAD_ROUTES):
            return await self.app(scope, receive, send)
        limit = self.max_bytes + MULTIPART_SLACK
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await self._too_large(send)
        received, over, body, status = 0, False, [], [0]

        async def counted_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def recording_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and status[0] == 200:
                body.append(message.get("body", b""))
            await send(message)

        self.uploads.upload_started()
        paths: list[str] = []
        try:
            if over:
                return await self._too_large(send)
            await self.app(scope, counted_receive, recording_send)
            if status[0] == 200:
                import json

                try:
                    paths = [p for p in json.loads(b"".join(body)) if isinstance(p, str)]
                except ValueError:
                    paths = []
        finally:
            self.uploads.upload_finished(paths)  # after Gradio's background move into place
        if over:
            log.info("refused an upload over %d bytes in one request", self.max_bytes)

    async def _too_large(self, send):
        log.info("refused an upload over %d bytes in one request", self.max_bytes)
        message = f"The upload is too large: at most {self.max_bytes // 2**20} MB in one request.".encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(message)).encode())]})
        await send({"type": "http.response.body", "body": message})


def too_big_note_js(note_id: str) -> str:
    """Browser code for the page: Gradio refuses a file over the size cap in the browser, before any upload,
    and says so in a toast that fades. This copies that message into the element `note_id`, where it stays
    until the next upload."""
    return f"""() => {{
  const seen = new WeakSet();
  new MutationObserver(() => {{
    const note = document.querySelector('#{note_id}');
    if (!note) return;
    for (const toast of document.querySelectorAll('.toast-body')) {{
      const text = (toast.textContent || '').trim();
      if (seen.has(toast) || !/exceed the maximum allowed size/i.test(text)) continue;
      seen.add(toast);
      note.textContent = '⚠️ ' + text.replace(/^\\s*error\\s*/i, '') + '. Send a shorter clip (up to 10 minutes).';
    }}
  }}).observe(document.body, {{childList: true, subtree: true}});
}}"""


def clear_note_js(note_id: str) -> str:
    return f"() => {{ const n = document.querySelector('#{note_id}'); if (n) n.textContent = ''; }}"
