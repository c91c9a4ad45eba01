"""The app's own temporary directory and the bookkeeping of the recordings uploaded into it.

Guarantee: no clip outlives its answer, except the clip a live page shows. Every upload is stored under a
random name (upload_route.py). A request holds its clip while it runs; when it answers, the clip goes to
the page that sent it if that page is open (its Gradio heartbeat stream is connected), so the page can
replay, re-analyse and explain it, and is deleted otherwise. A page's clip is deleted when the page shows
another clip, clears it or closes. Every hold has an owner that is alive and an expiry: a request's hold
ends with the request (or after REQUEST_S at most), a page's with the page. Whatever escapes that (an
upload no request claims, a request cut off, an upload cut off half-way) is swept once nothing has touched
it for one sweep interval. The directory is cleared at start-up (what a `kill -9` left behind) and on exit.

Only files that came through the upload route are ever deleted: an example clip, or any file placed in the
directory by other means, is never touched by a request.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SWEEP_S = 60.0  # default seconds an unused upload may stay on disk (EMOTION_SWEEP_S)
REQUEST_S = 15 * 60.0  # s: a request's hold ends after this even if the request never ends (10 min of audio takes ~1)
MARKER = ".emotion-app"  # written into a directory the app created: only such a directory is ever cleared
LOCK = ".lock"  # held (flock) while an app runs: two apps never clear each other's files

log = logging.getLogger("webapp.uploads")


def parse_size(text: str) -> int:
    """ "25mb" / "25 MB" / "1gb" / "4096" -> bytes (the syntax of Gradio's max_file_size)."""
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
    from emotion_core.settings import current, variable

    temp_env = variable("temp_dir")
    base = Path(base or current().temp_dir or Path(tempfile.gettempdir()) / "emotion-app").resolve()
    base.mkdir(parents=True, exist_ok=True)
    if not (base / MARKER).exists() and any(base.iterdir()):
        raise TempDirInUse(f"{base} holds files the app did not create; set {temp_env} to a new directory")
    (base / MARKER).write_text("temporary files of the speech emotion app; deleted at start-up and exit\n")
    lock = open(base / LOCK, "w")  # noqa: SIM115 (held open for the life of the app)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise TempDirInUse(f"another running app owns {base}; set {temp_env} to a directory of its own") from None
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


@dataclass
class Hold:
    path: Path
    page: str | None  # the session hash of the page that shows the clip; None: a request's hold
    expires: float  # monotonic time after which a request's hold ends even if the request never said so


class Uploads:
    """Which uploaded file each request and each open page uses, and the deletion of each once none does.

    Uploads arrive through the upload route (upload_started / upload_finished, one token per upload), pages
    open and close (page_opened / page_closed, from Gradio's heartbeat stream), requests use a clip
    (`with uploads.in_use(path, page=session_hash):`)."""

    def __init__(
        self,
        root: Path,
        sweep_s: float = SWEEP_S,
        request_s: float = REQUEST_S,
        queued: Callable[[], set[Path]] = set,
        page_gone: Callable[[str], None] = lambda page: None,
    ):
        """queued(): the paths named by requests waiting in the app's queue (web_guards.queued_paths): the
        sweep leaves them, however long the queue. It may raise RuntimeError: the sweep then deletes no
        upload this round. page_gone(page): called when a page closes (what else it held goes too)."""
        self.root, self.sweep_s, self.request_s = Path(root).resolve(), float(sweep_s), float(request_s)
        self.queued, self.page_gone = queued, page_gone
        self._lock = threading.Lock()
        self._last_touch: dict[Path, float] = {}  # every uploaded file not yet deleted -> last use (monotonic)
        self._holds: dict[str, Hold] = {}  # holder -> what it holds
        self._open_pages: Counter = Counter()  # session hash -> heartbeat streams connected now
        self._in_flight: dict[int, float] = {}  # upload token -> when that upload began (wall clock)
        self._audio: set[Path] = set()  # uploads that decoded as sound
        self._tokens = itertools.count()

    # -- the upload route (called by upload_route.UploadRoute, once per upload request) --
    def upload_started(self) -> int:
        with self._lock:
            token = next(self._tokens)
            self._in_flight[token] = time.time()
            return token

    def upload_finished(self, token: int, paths: list[str], audio: list[str] = ()) -> None:
        """The upload `token` stored `paths`, of which `audio` decoded as sound (the only ones served back)."""
        with self._lock:
            self._in_flight.pop(token, None)
            now = time.monotonic()
            for p in paths:
                p = Path(p).resolve()
                if self.root in p.parents:
                    self._last_touch[p] = now
            self._audio |= {Path(p).resolve() for p in audio}

    def may_serve(self, path) -> bool:
        """False for an upload that did not decode as sound: the app never serves it back (a page or a
        picture renamed .wav). Anything else is left to Gradio's own rules."""
        p = Path(path).resolve()
        with self._lock:
            return p not in self._last_touch or p in self._audio

    def is_upload(self, path) -> bool:
        with self._lock:
            return Path(path).resolve() in self._last_touch

    # -- pages (called by web_guards.PageHeartbeats) --
    def page_opened(self, page: str) -> None:
        with self._lock:
            self._open_pages[page] += 1

    def page_closed(self, page: str) -> None:
        """A heartbeat stream ended; when it was the page's last, the page is gone and so is its clip."""
        with self._lock:
            self._open_pages[page] -= 1
            if self._open_pages[page] <= 0:
                del self._open_pages[page]
                self._end(page_holder(page))
            else:
                return
        self.page_gone(page)

    def page_is_open(self, page: str | None) -> bool:
        with self._lock:
            return bool(page) and self._open_pages[page] > 0

    # -- requests --
    @contextmanager
    def in_use(self, path, page: str | None = None):
        """A request uses `path` while the block runs. Afterwards the clip becomes the clip of `page` (the
        session hash of the page that sent it) if that page is open, replacing the page's previous clip, and
        is deleted otherwise. A path that is not an upload (an example clip) is never held or deleted."""
        holder = f"request-{uuid.uuid4()}"
        p = Path(path).resolve() if path else None
        with self._lock:
            held = p is not None and p in self._last_touch
            if held:
                self._holds[holder] = Hold(p, None, time.monotonic() + self.request_s)
                self._last_touch[p] = time.monotonic()
        try:
            yield held
        finally:
            with self._lock:
                shown = self._holds.get(page_holder(page)) if page else None
                if page and self._open_pages[page] > 0 and (shown is None or shown.path != p):
                    self._end(page_holder(page))  # the page shows this clip now (an upload or an example)
                    if held and p in self._last_touch:
                        self._holds[page_holder(page)] = Hold(p, page, math.inf)
                self._end(holder)

    def release_page(self, page: str | None) -> None:
        """The page cleared its clip (the player's Clear, a new recording starting)."""
        if page:
            with self._lock:
                self._end(page_holder(page))

    def _end(self, holder: str) -> None:  # caller holds the lock
        hold = self._holds.pop(holder, None)
        if hold is None:
            return
        self._last_touch[hold.path] = time.monotonic()
        if not any(h.path == hold.path for h in self._holds.values()):
            self._delete(hold.path)

    def _delete(self, p: Path) -> None:  # caller holds the lock; folders are left to sweep()
        p.unlink(missing_ok=True)
        self._last_touch.pop(p, None)
        self._audio.discard(p)

    def held_paths(self) -> set[Path]:
        with self._lock:
            return {h.path for h in self._holds.values()}

    # -- the sweep --
    def sweep(self, now: float | None = None) -> int:
        """End every hold whose owner is gone (a closed page, a request past its expiry); delete every upload
        nobody holds that is older than one sweep interval, and whatever else an upload left in the directory
        (a cut-off upload's tmpXXXX that no upload in flight can own, an empty folder). Returns files deleted."""
        now = time.monotonic() if now is None else now
        wall = time.time() + (now - time.monotonic())
        deleted = 0
        try:
            queued = {Path(p).resolve() for p in self.queued()}
        except RuntimeError:  # the queue changed while it was read: leave every upload to the next round
            queued = None
        with self._lock:
            for holder, hold in list(self._holds.items()):
                if (hold.page is not None and self._open_pages[hold.page] <= 0) or now > hold.expires:
                    deleted += hold.path.exists()
                    self._end(holder)
            held = {h.path for h in self._holds.values()} | (queued or set())
            for p, touched in list(self._last_touch.items()) if queued is not None else []:
                if p not in held and now - touched >= self.sweep_s:
                    deleted += p.exists()
                    self._delete(p)
            oldest_in_flight = min(self._in_flight.values(), default=math.inf)
            for p in list(self.root.glob("tmp*")):  # Gradio receives an upload at the top level first
                written = self._written(p)
                # a file written before every upload now in flight began belongs to none of them
                if p.is_file() and wall - written >= self.sweep_s and written < oldest_in_flight:
                    p.unlink(missing_ok=True)
                    deleted += 1
            for d in list(self.root.iterdir()) if self.root.exists() else []:
                if d.is_dir() and not any(d.iterdir()) and wall - self._written(d) >= self.sweep_s:
                    try:
                        d.rmdir()
                    except OSError:
                        pass
        if deleted:
            log.info("sweep: deleted %d unused upload(s)", deleted)
        return deleted

    @staticmethod
    def _written(p: Path) -> float:
        """When the file was last written (a folder: when an entry was added or removed), wall clock."""
        try:
            return p.stat().st_mtime
        except FileNotFoundError:
            return math.inf

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


def page_holder(page: str) -> str:
    return f"page-{page}"


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
