"""The optional background thread that refreshes early, so request threads never pay.

It wakes at the (jittered) start of the early window and starts the refresh as the engine's
off-thread flight (``offthread.refresh_off_thread``, the flight async callers and the
server share), waiting for it; otherwise it obeys the same backoff and error memory as
callers. Its sleeps are real time, capped at a minute so a step of the wall clock (which
moves the window starts) is noticed soon. It holds
only a weak reference to the engine, so an engine nobody uses any more is collected and its
thread ends. A forked child has no thread (only the forking thread survives a fork); the
engine starts a new one there on first use.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Optional, Protocol

from .schedule import Entry

if TYPE_CHECKING:
    from .model import Lock

__all__ = ["PREFETCH_MAX_SLEEP", "Prefetcher", "sleep_before_refresh"]

logger = logging.getLogger("assume_provider.engine.refresh")

#: The prefetch thread re-reads the clock at least this often (clock jumps, suspend).
PREFETCH_MAX_SLEEP = 60.0


def sleep_before_refresh(
    entry: Optional[Entry], forced: bool, blocked_until: float, now: float, ticks: float
) -> Optional[float]:
    """How long the prefetch thread may sleep, or None if it should refresh now.

    ``now`` is the wall clock (the window starts are instants of it); ``blocked_until``,
    the later of the backoff's and the error memory's ends, is on the monotonic clock, read
    as ``ticks``: the thread leaves the source alone as long as a caller would. Sleeps are
    capped, so a step of the wall clock is noticed within PREFETCH_MAX_SLEEP.
    """
    if entry is None:
        return PREFETCH_MAX_SLEEP  # the first fetch is a caller's; publishing wakes us
    if not forced and now < entry.refresh_at:
        return min(entry.refresh_at - now, PREFETCH_MAX_SLEEP)
    if ticks < blocked_until:
        return min(blocked_until - ticks, PREFETCH_MAX_SLEEP)
    return None


class Prefetched(Protocol):
    """The engine, as the thread sees it."""

    def _prefetch_step(self) -> float:
        """Refresh if due; return how long to sleep."""


class Prefetcher:
    """Owns the thread and its events; the engine owns the credentials and the refreshing."""

    __slots__ = ("_closed", "_lock", "_lock_factory", "_name", "_stop", "_thread", "_wake")

    def __init__(self, name: str, lock_factory: Callable[[], Lock]) -> None:
        self._name = name
        self._lock_factory = lock_factory
        self._lock = lock_factory()  # held only to start one thread, not two
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    @property
    def thread(self) -> Optional[threading.Thread]:
        """The running thread, if any (None before the first start, after close or fork)."""
        return self._thread

    def ensure_running(self, engine: Prefetched) -> None:
        """Start the thread unless it runs or was closed (lazily, e.g. in a forked child)."""
        if self._thread is not None or self._closed:
            return
        with self._lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(
                target=_loop,
                args=(weakref.ref(engine), self._stop, self._wake, self._name),
                name=f"assume-provider-prefetch-{self._name}",
                daemon=True,
            )
            self._thread = thread
        thread.start()

    def wake(self) -> None:
        """A refresh ended (or new credentials arrived): recompute the sleep now."""
        self._wake.set()

    def close(self, wait: bool = True) -> None:
        """Stop the thread until ``reopen()``; the engine keeps refreshing on demand. With
        ``wait``, give it up to 5 s to finish a refresh in progress (a process about to exit
        need not: the thread is a daemon)."""
        with self._lock:
            self._closed = True
            self._stop.set()
            self._wake.set()
            thread, self._thread = self._thread, None
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def reopen(self) -> None:
        """Let ``ensure_running()`` start a thread again after ``close()`` (a server route that
        was idle). Fresh events: a thread closed without waiting may still be finishing its
        last step, and must go on seeing its own stop."""
        with self._lock:
            if not self._closed:
                return
            self._stop = threading.Event()
            self._wake = threading.Event()
            self._closed = False

    def after_fork_in_child(self) -> None:
        """The parent's thread does not exist in the child: forget it, with fresh events."""
        self._lock = self._lock_factory()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = None


def _loop(
    ref: weakref.ref[Prefetched], stop: threading.Event, wake: threading.Event, name: str
) -> None:
    """Step, sleep, repeat, until closed or the engine is gone."""
    while not stop.is_set():
        engine = ref()
        if engine is None:
            return
        wake.clear()
        try:
            delay = engine._prefetch_step()
        except Exception:  # a background thread must not die silently
            logger.exception("prefetch of %s failed", name)
            delay = PREFETCH_MAX_SLEEP
        del engine
        wake.wait(delay)
