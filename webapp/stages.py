"""Answers in two stages: the quick families answer first, the Whisper family's answer follows.

The page's first event (stage 1) analyses a clip with the families that need no encoder and keeps that
analysis here, under the page's session; its second event (stage 2, a separate queue event with its own
concurrency) takes it, adds the slow families on the same windows of the same clip, and gives its result
only if that clip is still the page's latest. A new clip, Clear or a closed page makes the old stage 2's
result void; whatever waits here is held for at most PENDING_S (the windows hold the pupil's speech).

First stages go first (FirstStagesFirst): on a CPU, a second stage starts only when no first stage is running,
so the Whisper work of a class that pressed together does not take the cores from anyone's first answer; and a
second stage that has started runs on a thread of background priority (BackgroundThreads), so a first stage that
arrives meanwhile still gets the cores at once.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

PENDING_S = 120.0  # s: the longest a first stage waits here for its second (a page's stage 2 takes it in seconds)
YIELD_AT_MOST_S = 30.0  # s: the longest a second stage gives way to first stages before it runs anyway
SETTLE_S = 0.05  # s: how long no first stage must run before a second starts (the queue's next one starts in less)
BACKGROUND_NICE = 10  # the niceness of a second stage's thread: Linux gives a thread of nice 0 about nine times its
# share of a contended core (scheduler weights 1024 against 110), and it still gets every idle cycle

log = logging.getLogger(__name__)


class PendingAnswers:
    """One waiting first-stage analysis per page (session hash), and the token of each page's latest clip."""

    def __init__(self, hold_s: float = PENDING_S):
        self.hold_s = float(hold_s)
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[int, object, float]] = {}  # page -> (token, analysis, deadline)
        self._latest: dict[str, tuple[int, float]] = {}  # page -> (token of its latest clip, deadline)
        self._tokens = itertools.count(1)

    def new_clip(self, page: str | None) -> int:
        """A page starts a new clip: whatever it was waiting for is dropped and void. Returns the clip's token."""
        token = next(self._tokens)
        with self._lock:
            self._purge()
            if page:
                self._waiting.pop(page, None)
                self._latest[page] = (token, time.monotonic() + self.hold_s)
        return token

    def put(self, page: str | None, token: int, analysis) -> bool:
        """Keep a first stage for the page's second, if `token` is still its latest clip (False: not kept)."""
        if not page:
            return False
        with self._lock:
            if self._latest.get(page, (None,))[0] != token:
                return False
            deadline = time.monotonic() + self.hold_s
            self._waiting[page] = (token, analysis, deadline)
            self._latest[page] = (token, deadline)
            return True

    def take(self, page: str | None) -> tuple[int, object] | None:
        """The page's waiting first stage (removed from here), or None."""
        with self._lock:
            self._purge()
            item = self._waiting.pop(page, None) if page else None
        return None if item is None else (item[0], item[1])

    def is_latest(self, page: str | None, token: int) -> bool:
        """Whether the clip of `token` is still the page's latest (its second stage may show its result)."""
        with self._lock:
            return bool(page) and self._latest.get(page, (None,))[0] == token

    def forget(self, page: str | None) -> None:
        """The page cleared its clip or closed: nothing of it waits, and no stage 2 of it shows a result."""
        with self._lock:
            self._waiting.pop(page, None)
            self._latest.pop(page, None)

    def purge(self) -> int:
        """Drop whatever has waited past its deadline; returns how many analyses were dropped."""
        with self._lock:
            return self._purge()

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)

    def _purge(self) -> int:  # caller holds the lock
        now = time.monotonic()
        late = [p for p, (_t, _a, deadline) in self._waiting.items() if deadline <= now]
        for p in late:
            del self._waiting[p]
        for p in [p for p, (_t, deadline) in self._latest.items() if deadline <= now and p not in self._waiting]:
            del self._latest[p]
        return len(late)


class FirstStagesFirst:
    """The cores go to first stages: `second_stage_may_start()` blocks while a first stage runs (each runs inside
    `first_stage()`), and returns once none has run for SETTLE_S, or after `at_most_s` whatever runs (no second
    stage starves). Gradio's queue starts each stage's events with their own concurrency; this only orders them.
    Work no pupil waits for (the app's ONNX export after a fresh install) waits in `wait_until_idle()` until no
    stage of either kind (second stages run inside `second_stage()`) has run for SETTLE_S."""

    def __init__(self, at_most_s: float = YIELD_AT_MOST_S, settle_s: float = SETTLE_S):
        self.at_most_s, self.settle_s = float(at_most_s), float(settle_s)
        self._changed = threading.Condition()
        self._running = {"first": 0, "second": 0}  # stages running now, by kind
        self._last_end = {"first": float("-inf"), "second": float("-inf")}  # time.monotonic() the last one ended

    @contextmanager
    def _stage(self, kind: str):
        with self._changed:
            self._running[kind] += 1
        try:
            yield
        finally:
            with self._changed:
                self._running[kind] -= 1
                self._last_end[kind] = time.monotonic()
                self._changed.notify_all()

    def first_stage(self):
        return self._stage("first")

    def second_stage(self):
        return self._stage("second")

    def _wait_for_quiet(self, kinds: tuple[str, ...], at_most_s: float) -> float:
        """Block until no stage of `kinds` has run for settle_s (at most at_most_s); returns the seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + at_most_s
        with self._changed:
            while (left := deadline - time.monotonic()) > 0:
                running = sum(self._running[k] for k in kinds)
                quiet = time.monotonic() - max(self._last_end[k] for k in kinds)
                if not running and quiet >= self.settle_s:
                    break
                self._changed.wait(left if running else min(left, self.settle_s - quiet))
        return time.monotonic() - t0

    def second_stage_may_start(self) -> float:
        """Block until no first stage has run for settle_s (at most at_most_s); returns the seconds waited."""
        return self._wait_for_quiet(("first",), self.at_most_s)

    def wait_until_idle(self, at_most_s: float | None = None) -> float:
        """Block until no stage of either kind has run for settle_s (at most at_most_s, default the instance's);
        returns the seconds waited."""
        return self._wait_for_quiet(("first", "second"), self.at_most_s if at_most_s is None else at_most_s)


class BackgroundThreads:
    """`run(fn, *args)` runs fn on one of `workers` threads the OS schedules after every ordinary thread
    (BACKGROUND_NICE more niceness than the thread that made them; Linux applies a niceness per thread), and
    returns its result or raises its exception. The work is the same and uses every idle cycle; it only yields the
    cores to first stages and to the server's own work while they run. Where the niceness cannot be set (not
    Linux), the threads run at ordinary priority."""

    def __init__(self, workers: int, nice: int = BACKGROUND_NICE):
        self.nice = nice
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="second-stage", initializer=self._lower)

    def _lower(self):
        try:
            thread = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + self.nice))
        except (AttributeError, OSError) as e:  # no per-thread niceness here: ordinary priority
            log.info("second stages run at ordinary priority: %s", e)

    def run(self, fn, *args):
        return self.pool.submit(fn, *args).result()
