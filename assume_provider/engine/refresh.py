"""The identity cache: a single-flight cache that executes the refresh policy for one source.

Pure Python (no botocore) so it can be tested with an injected clock, lock and randomness.
It implements AWS's 2026 cross-SDK refresh behaviour; the parts live where they can be
read on their own:

- ``schedule.py``: when cached credentials fall due (the windows, the jittered start);
- ``policy.py``: what a call does about it, as the ordered rules, and how long to back off;
- this module: the cache itself, the hot path, the single flight that carries out the
  decision, and the record of failures the policy reads;
- ``prefetch.py``: the optional background refresh, run as the flight of ``offthread.py``
  (which also runs ``get()`` for callers that must not block: async views, the server);
- ``forksafe.py``: the after-fork hook that gives a forked child fresh locks.

The hot path (valid credentials) is one clock read and one tuple comparison, with no lock:
the time the cache next falls due is precomputed and published with the credentials.

Two injected clocks: ``clock`` (wall, POSIX seconds) is compared with ``Expiration`` and the
windows derived from it, which are instants; ``monotonic`` measures every deadline that
starts now (the backoff, the error memory, the prefetch's waits), so an NTP step of the
wall clock by an hour neither holds the source off for an hour nor ends a backoff early.
Listeners of refresh events run after the locks are released (see ``events.py``).
"""

from __future__ import annotations

import logging
import random as _random
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Optional

from .events import FAILED, REFRESHED, SERVED_STALE, RefreshEvent, deferred, emit, error_code_of
from .forksafe import renew_in_child
from .model import (
    NO_CREDENTIALS,
    RefreshStats,
    StaleCredentialsError,
    TemporaryCredentials,
    default_is_recoverable,
    utc_text,
)
from .policy import (
    NO_SETBACK,
    Decision,
    Setback,
    after_failure,
    backoff_after_failure,
    decide,
    failure_text,
)
from .schedule import Entry, advisory_window_for, schedule

if TYPE_CHECKING:
    from collections.abc import Callable

    from .model import Lock
    from .prefetch import Prefetcher

__all__ = [
    "RefreshStats",
    "RefreshingCredentials",
    "StaleCredentialsError",
    "TemporaryCredentials",
    "advisory_window_for",
    "default_is_recoverable",
]

logger = logging.getLogger("assume_provider.engine.refresh")

_NEG_INF = float("-inf")


class RefreshingCredentials:
    """The identity cache for one source: when to fetch again (the fetch itself is injected)."""

    __slots__ = (
        "__weakref__",
        "_attempts",
        "_backoff",
        "_clock",
        "_entry",
        "_error_memory",
        "_failures",
        "_fetch",
        "_fetches",
        "_forced",
        "_hot",
        "_is_recoverable",
        "_last_error",
        "_lock_factory",
        "_monotonic",
        "_name",
        "_prefetch",
        "_prefetcher",
        "_random",
        "_rate_limited",
        "_refresh_lock",
        "_role_arns",
        "_schedule",
        "_setback",
        "_state_lock",
    )

    def __init__(
        self,
        fetch: Callable[[], TemporaryCredentials],
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        lock_factory: Callable[[], Lock] = threading.Lock,
        random: Callable[[], float] = _random.random,
        advisory_window: Optional[float] = None,
        mandatory_window: float = 60.0,
        backoff: tuple[float, float] = (300.0, 600.0),
        error_memory: float = 5.0,
        is_recoverable: Callable[[BaseException], bool] = default_is_recoverable,
        prefetch: bool = False,
        initial: Optional[TemporaryCredentials] = None,
        name: str = "credentials",
        role_arns: tuple[str, ...] = (),
    ) -> None:
        if advisory_window is not None and advisory_window < 0:
            raise ValueError(f"advisory_window must be >= 0 seconds, got {advisory_window}")
        if mandatory_window < 0:
            raise ValueError(f"mandatory_window must be >= 0 seconds, got {mandatory_window}")
        if not 0 <= backoff[0] <= backoff[1]:
            raise ValueError(f"backoff must be (low, high) with 0 <= low <= high, got {backoff}")
        if error_memory < 0:
            raise ValueError(f"error_memory must be >= 0 seconds, got {error_memory}")
        self._fetch = fetch
        self._clock = clock
        self._monotonic = monotonic
        self._lock_factory = lock_factory
        self._random = random
        self._backoff = backoff
        self._error_memory = error_memory
        self._is_recoverable = is_recoverable
        self._prefetch = prefetch
        self._name = name
        self._role_arns = tuple(role_arns)  # for refresh events only
        # When credentials fetched (or handed in) at a given time fall due, for this engine.
        self._schedule = partial(
            schedule,
            advisory_window=advisory_window,
            mandatory_window=mandatory_window,
            prefetch=prefetch,
            random=random,
        )
        self._refresh_lock = lock_factory()  # held only while the source is being asked
        self._state_lock = lock_factory()  # held only for a few assignments
        self._entry: Optional[Entry] = None
        # What get() compares and returns: (when the cache falls due for callers, what it
        # holds). One tuple, so one read sees a consistent pair without a lock.
        self._hot: tuple[float, TemporaryCredentials] = (_NEG_INF, NO_CREDENTIALS)
        self._forced = False  # invalidated, and no refresh has answered it yet
        self._setback: Setback = NO_SETBACK  # error memory and backoff, read by the policy
        self._last_error: Optional[BaseException] = None  # of the last refresh, for waiters
        self._attempts = 0  # refreshes completed, so a waiter can tell one ended meanwhile
        self._fetches = 0
        self._failures = 0
        self._rate_limited = 0
        # Only an engine that prefetches has the thread's machinery (and loads its code).
        self._prefetcher: Optional[Prefetcher] = None
        if initial is not None:
            self._install(self._schedule(initial, self._clock(), lifetime_known=False))
        renew_in_child(self)
        if prefetch:
            self._prefetcher = _new_prefetcher(name, lock_factory)
            self._prefetcher.ensure_running(self)

    def __repr__(self) -> str:
        """Name the source and the cached key id only: secrets never appear in reprs."""
        entry = self._entry
        cached = entry.credentials if entry is not None else None
        return f"RefreshingCredentials(name={self._name!r}, current={cached!r})"

    # -- public API ------------------------------------------------------------------

    def get(self) -> TemporaryCredentials:
        """Return usable credentials; valid ones cost one clock call and one comparison, no lock."""
        now = self._clock()
        refresh_at, credentials = self._hot
        if now < refresh_at:
            return credentials
        return self._get_slow(now)

    def poll(self) -> tuple[Optional[TemporaryCredentials], bool]:
        """What get() would do, without ever waiting: (credentials to serve now, refresh due).

        For callers that must not block, such as an event loop: serve the credentials, and
        when a refresh is due run get() elsewhere (a worker thread), awaiting it only when
        there is nothing to serve (None). Valid credentials cost what get() costs them.
        """
        now = self._clock()
        refresh_at, credentials = self._hot
        if now < refresh_at:
            return credentials, False
        decision, entry = self._settle(now)
        if decision is Decision.REFRESH_AND_WAIT:
            return None, True
        assert entry is not None
        return entry.credentials, decision is Decision.REFRESH_WITHOUT_WAITING

    def invalidate(self, access_key_id: Optional[str] = None) -> None:
        """Force the next get() through a refresh, unless the rejected key was already replaced."""
        with self._state_lock:
            entry = self._entry
            if entry is None:
                return
            if access_key_id is not None and access_key_id != entry.credentials.access_key_id:
                logger.debug(
                    "%s: ignoring invalidation of %s, already replaced by %s",
                    self._name,
                    access_key_id,
                    entry.credentials.access_key_id,
                )
                return
            self._forced = True
            self._hot = (_NEG_INF, entry.credentials)
        logger.debug("%s: credentials %s invalidated", self._name, entry.credentials.access_key_id)

    @property
    def current(self) -> Optional[TemporaryCredentials]:
        """The cached credentials, without ever contacting the source."""
        entry = self._entry
        return entry.credentials if entry is not None else None

    @property
    def advisory_window(self) -> Optional[float]:
        """The early-refresh window in force for the cached credentials (None: never expire)."""
        entry = self._entry
        return entry.advisory_window if entry is not None else None

    @property
    def refresh_at(self) -> Optional[float]:
        """When the (jittered) early refresh of the cached credentials starts."""
        entry = self._entry
        return entry.refresh_at if entry is not None else None

    @property
    def last_error(self) -> Optional[BaseException]:
        """The error of the latest refresh attempt; None once one succeeds (or before any).
        Set before the attempt's waiters are released, so it is never behind what they got."""
        return self._last_error

    @property
    def stats(self) -> RefreshStats:
        """How often the source was asked, failed, and was spared by the backoff."""
        with self._state_lock:
            return RefreshStats(self._fetches, self._failures, self._rate_limited)

    def close(self, wait: bool = True) -> None:
        """Stop the prefetch thread, if any (``wait``: up to 5 s for a refresh in progress);
        get() keeps working on demand."""
        if self._prefetcher is not None:
            self._prefetcher.close(wait)

    def resume_prefetch(self) -> None:
        """Start the prefetch thread again after ``close()``, if this engine prefetches: the
        server stops it for a route nobody asks for, and starts it at the route's next
        request."""
        if self._prefetcher is not None:
            self._prefetcher.reopen()
            self._prefetcher.ensure_running(self)

    # -- slow path: carry out the policy's decision ------------------------------------

    def _settle(self, now: float) -> tuple[Decision, Optional[Entry]]:
        """Ask the policy and carry out every decision that needs no fetch (serve, re-arm,
        raise the remembered error); return the decision and the entry it was about."""
        if self._prefetcher is not None:
            self._prefetcher.ensure_running(self)  # lazily, e.g. in a forked child
        entry = self._entry  # one snapshot of each: other threads publish new ones
        setback = self._setback
        ticks = self._monotonic()
        decision = decide(now, ticks, entry, forced=self._forced, setback=setback)
        if decision is Decision.SERVE:
            assert entry is not None
            with self._state_lock:  # re-arm the hot path, unless invalidated meanwhile
                if self._entry is entry and not self._forced:
                    self._hot = (entry.callers_at, entry.credentials)
        elif decision is Decision.RAISE_REMEMBERED:
            assert setback.error is not None
            raise setback.error.with_traceback(setback.traceback)
        elif decision is Decision.SERVE_RATE_LIMITED:
            with self._state_lock:
                self._rate_limited += 1
        return decision, entry

    def _get_slow(self, now: float) -> TemporaryCredentials:
        """Credentials that are due (or missing): ask the policy, then do what it says."""
        attempts_seen = self._attempts
        decision, entry = self._settle(now)
        if decision is Decision.SERVE or decision is Decision.SERVE_RATE_LIMITED:
            assert entry is not None
            return entry.credentials
        with deferred():  # this attempt's event reaches listeners after the lock is released
            if decision is Decision.REFRESH_WITHOUT_WAITING:
                assert entry is not None
                if not self._refresh_lock.acquire(blocking=False):
                    return entry.credentials  # someone is refreshing; the cache is valid
            else:  # Decision.REFRESH_AND_WAIT
                self._refresh_lock.acquire()
            try:
                if self._attempts != attempts_seen:
                    return self._outcome()  # a refresh ended while we waited: share it
                return self._refresh_locked()
            finally:
                self._refresh_lock.release()

    def _outcome(self) -> TemporaryCredentials:
        """What a caller gets from a refresh another thread completed while it waited."""
        error = self._last_error
        entry = self._entry
        if entry is None or (error is not None and error is self._setback.error):
            # Nothing cached, or an error retrying cannot fix: every waiter sees the error.
            raise error if error is not None else RuntimeError("no credentials were fetched")
        return entry.credentials  # fresh, or the cache served after a recoverable failure

    def _refresh_locked(self) -> TemporaryCredentials:
        """Ask the source once (the refresh lock is held) and record the outcome for waiters."""
        entry = self._entry
        with self._state_lock:
            self._fetches += 1
        started = time.perf_counter()  # elapsed time for the event: real time, not the clock's
        try:
            try:
                credentials = self._fetch()
            except Exception as exc:  # noqa: BLE001 - any fetch error is a failed refresh
                return self._failed(exc, self._clock(), entry, started)
            now = self._clock()
            if credentials.expiration is not None and credentials.expiration <= now:
                return self._failed(StaleCredentialsError(credentials, now), now, entry, started)
            self._install(self._schedule(credentials, now, lifetime_known=True))
            self._event(REFRESHED, credentials, started, None)
            logger.debug(
                "%s: refreshed, now %s until %s",
                self._name,
                credentials.access_key_id,
                utc_text(credentials.expiration),
            )
            return credentials
        finally:
            if self._prefetcher is not None:
                self._prefetcher.wake()

    def _event(
        self,
        kind: str,
        credentials: Optional[TemporaryCredentials],
        started: float,
        error: Optional[BaseException],
    ) -> None:
        """One refresh event (never a secret: only the key ID and expiry are copied)."""
        emit(
            RefreshEvent(
                kind=kind,
                role_arns=self._role_arns,
                access_key_id=credentials.access_key_id if credentials is not None else None,
                expiration=credentials.expiration if credentials is not None else None,
                elapsed_seconds=time.perf_counter() - started,
                error_code=error_code_of(error) if error is not None else None,
                error_message=" ".join(str(error).split()) if error is not None else None,
                name=self._name,
                credentials_id=id(self),
            )
        )

    def _failed(
        self, exc: Exception, now: float, entry: Optional[Entry], started: float
    ) -> TemporaryCredentials:
        """Serve the cache and back off, or raise when there is nothing to serve or no hope."""
        recoverable = self._is_recoverable(exc)
        ticks = self._monotonic()
        with self._state_lock:
            self._failures += 1
            self._last_error = exc
            self._attempts += 1
            self._setback = setback = after_failure(
                self._setback,
                exc,
                recoverable=recoverable,
                entry=entry,
                now=now,
                ticks=ticks,
                error_memory=self._error_memory,
                backoff=self._backoff,
                random=self._random,
            )
        text = failure_text(exc, recoverable, entry, setback, now, ticks)
        logger.warning("%s: %s", self._name, text)
        if not recoverable or entry is None:
            self._event(FAILED, None, started, exc)
            raise exc
        self._event(SERVED_STALE, entry.credentials, started, exc)
        return entry.credentials

    def _install(self, entry: Entry) -> None:
        """Publish fresh credentials: one assignment each, so readers never see a torn state."""
        with self._state_lock:
            self._entry = entry
            self._forced = False
            self._setback = NO_SETBACK
            self._last_error = None
            self._attempts += 1
            self._hot = (entry.callers_at, entry.credentials)

    # -- prefetch and fork -------------------------------------------------------------

    def _prefetch_step(self) -> float:
        """One pass of the prefetch thread: refresh if due; return how long to sleep.

        The refresh runs as the engine's off-thread flight (``offthread.py``), shared with
        any async caller or server request that wants one at the same moment; this thread
        only waits for it.
        """
        from .offthread import refresh_off_thread  # loaded by the prefetch thread only

        delay = self._prefetch_delay(self._clock())
        if delay is not None:
            return delay
        if refresh_off_thread(self).exception() is not None:  # already logged and reported
            # Not again every error_memory seconds, nor past the cached credentials' expiry.
            entry, now = self._entry, self._clock()
            return backoff_after_failure(self._backoff, self._random(), entry, now)
        return self._prefetch_delay(self._clock()) or 0.0

    def _refresh_due(self) -> TemporaryCredentials:
        """The prefetch thread's refresh, on a flight's worker: ask the source now, unless a
        caller's refresh ended meanwhile (then there is nothing left to do)."""
        with deferred():  # as in get(): listeners run after the lock is released
            with self._refresh_lock:
                entry = self._entry
                if entry is not None and self._prefetch_delay(self._clock()) is not None:
                    return entry.credentials  # no longer due: someone refreshed (or failed)
                return self._refresh_locked()

    def _prefetch_delay(self, now: float) -> Optional[float]:
        """How long the prefetch thread may sleep, or None if a refresh is due now."""
        from .prefetch import sleep_before_refresh  # loaded with the prefetch thread

        blocked_until = self._setback.blocked_until(now)
        ticks = self._monotonic()
        return sleep_before_refresh(self._entry, self._forced, blocked_until, now, ticks)

    def _after_fork_in_child(self) -> None:
        """Give the child fresh locks and no in-flight refresh; keep the cached credentials."""
        self._refresh_lock = self._lock_factory()
        self._state_lock = self._lock_factory()
        if self._prefetcher is not None:  # the parent's thread does not exist here
            self._prefetcher.after_fork_in_child()
        entry = self._entry
        self._hot = (_NEG_INF, entry.credentials if entry is not None else NO_CREDENTIALS)


def _new_prefetcher(name: str, lock_factory: Callable[[], Lock]) -> Prefetcher:
    # Imported here: an engine without prefetch (the default) never loads the thread's code.
    from .prefetch import Prefetcher

    return Prefetcher(name, lock_factory)
