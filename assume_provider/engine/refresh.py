"""The identity cache: decides when to fetch credentials again, so the source is asked rarely.

Pure Python (no botocore) so it can be tested with an injected clock, lock and randomness.
It implements AWS's 2026 cross-SDK refresh behaviour: an early (advisory) refresh window
chosen from the credential lifetime, a blocking (mandatory) window one minute before
expiry, single-flight refreshes, a jittered backoff after failures while the cached
credentials keep being served, and a short memory of errors that retrying cannot fix.
"""

from __future__ import annotations

import logging
import os
import random as _random
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Callable, Optional, Protocol

__all__ = [
    "RefreshStats",
    "RefreshingCredentials",
    "StaleCredentialsError",
    "TemporaryCredentials",
    "advisory_window_for",
    "default_is_recoverable",
]

logger = logging.getLogger("assume_provider.engine.refresh")

_INF = float("inf")
_NEG_INF = float("-inf")

#: Early refresh starts somewhere in this first fraction of the advisory window (up to the
#: mandatory window), so a fleet started together does not refresh together.
JITTER_FRACTION = 0.5
#: Never schedule a refresh of freshly fetched credentials before this fraction of their
#: lifetime has passed: short-lived credentials must not be refreshed on every call.
MIN_LIFETIME_FRACTION = 0.25
#: With prefetch on, callers leave the prefetch thread this long to refresh before they
#: refresh themselves (it wakes at the window start; they only act if it is late or dead).
PREFETCH_GRACE = 30.0
#: The prefetch thread re-reads the clock at least this often (clock jumps, suspend).
PREFETCH_MAX_SLEEP = 60.0


@dataclass(frozen=True, repr=False)
class TemporaryCredentials:
    """One set of credentials with its expiry; the repr hides secrets so logs never leak them."""

    access_key_id: str
    secret_access_key: str
    session_token: Optional[str]
    expiration: Optional[float]  # POSIX seconds (UTC); None = never expires

    def __repr__(self) -> str:
        """Show only what is safe to log: the access key id and the expiry."""
        return (
            f"TemporaryCredentials(access_key_id={self.access_key_id!r}, "
            f"expiration={self.expiration!r})"
        )


@dataclass(frozen=True)
class RefreshStats:
    """Counters a caller can check to see how often the source was really asked."""

    fetches: int  # times the source was contacted
    failures: int  # of those, how many failed (stale credentials included)
    rate_limited: int  # calls that needed a refresh but were served the cache during a backoff


class StaleCredentialsError(RuntimeError):
    """The source returned credentials that had already expired: treated as a failed refresh."""

    recoverable = True

    def __init__(self, credentials: TemporaryCredentials, now: float) -> None:
        super().__init__(
            f"the credential source returned credentials {credentials.access_key_id} that "
            f"expired at {credentials.expiration} (now {now:.0f})"
        )
        self.access_key_id = credentials.access_key_id
        self.expiration = credentials.expiration


class Lock(Protocol):
    """What the engine needs from a lock, so tests can inject one that records its use."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool:
        """Take the lock (non-blocking for the advisory window)."""

    def release(self) -> None:
        """Give the lock back."""

    def __enter__(self) -> bool:
        """Hold the lock for a few assignments."""

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        """Release it even on error."""


def default_is_recoverable(exc: BaseException) -> bool:
    """Errors say whether retrying can fix them through a ``recoverable`` attribute."""
    return bool(getattr(exc, "recoverable", True))


def advisory_window_for(lifetime: float) -> float:
    """Size the early window from the lifetime so short credentials last (botocore#2189)."""
    if lifetime <= 20 * 60:
        return 5 * 60.0
    if lifetime <= 90 * 60:
        return 15 * 60.0
    return 60 * 60.0


_NO_CREDENTIALS = TemporaryCredentials("", "", None, None)


def _utc(timestamp: Optional[float]) -> str:
    """Expiries in logs read as ISO 8601 UTC, as STS and the CLI print them."""
    if timestamp is None:
        return "never"
    try:
        return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return repr(timestamp)


@dataclass(frozen=True)
class _Entry:
    """Cached credentials with their precomputed schedule, published in one assignment."""

    credentials: TemporaryCredentials
    expires_at: float  # +inf when the credentials never expire
    mandatory_at: float  # start of the blocking window
    refresh_at: float  # jittered start of the early refresh
    callers_at: float  # when callers refresh themselves (later with prefetch: it goes first)
    advisory_window: Optional[float]


_ENGINES: weakref.WeakSet[RefreshingCredentials] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child must not inherit a held lock or another process's in-flight refresh."""
    for engine in list(_ENGINES):
        engine._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class RefreshingCredentials:
    """The identity cache for one source: when to fetch again (the fetch itself is injected)."""

    __slots__ = (
        "__weakref__",
        "_advisory_window",
        "_attempts",
        "_backoff",
        "_backoff_until",
        "_clock",
        "_closed",
        "_entry",
        "_error",
        "_error_memory",
        "_error_tb",
        "_error_until",
        "_failures",
        "_fetch",
        "_fetches",
        "_forced",
        "_hot",
        "_is_recoverable",
        "_last_error",
        "_lock_factory",
        "_mandatory_window",
        "_name",
        "_prefetch",
        "_random",
        "_rate_limited",
        "_refresh_lock",
        "_state_lock",
        "_stop",
        "_thread",
        "_wake",
    )

    def __init__(
        self,
        fetch: Callable[[], TemporaryCredentials],
        *,
        clock: Callable[[], float] = time.time,
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
        self._lock_factory = lock_factory
        self._random = random
        self._advisory_window = advisory_window
        self._mandatory_window = mandatory_window
        self._backoff = backoff
        self._error_memory = error_memory
        self._is_recoverable = is_recoverable
        self._prefetch = prefetch
        self._name = name
        self._refresh_lock = lock_factory()  # held only while the source is being asked
        self._state_lock = lock_factory()  # held only for a few assignments
        self._entry: Optional[_Entry] = None
        self._hot: tuple[float, TemporaryCredentials] = (_NEG_INF, _NO_CREDENTIALS)
        self._forced = False
        self._backoff_until = _NEG_INF
        self._error: Optional[BaseException] = None
        self._error_tb: Optional[TracebackType] = None
        self._error_until = _NEG_INF
        self._last_error: Optional[BaseException] = None
        self._attempts = 0
        self._fetches = 0
        self._failures = 0
        self._rate_limited = 0
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        if initial is not None:
            self._install(self._schedule(initial, self._clock(), lifetime_known=False))
        _ENGINES.add(self)
        if prefetch:
            self._start_prefetch()

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
    def stats(self) -> RefreshStats:
        """How often the source was asked, failed, and was spared by the backoff."""
        with self._state_lock:
            return RefreshStats(self._fetches, self._failures, self._rate_limited)

    def close(self) -> None:
        """Stop the prefetch thread, if any; get() keeps working on demand."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        self._thread = None

    # -- slow path ---------------------------------------------------------------------

    def _get_slow(self, now: float) -> TemporaryCredentials:
        """Decide, for credentials that are due (or missing), whether to refresh, wait or serve."""
        if self._prefetch and self._thread is None and not self._closed:
            self._start_prefetch()  # lazily, e.g. in a forked child
        attempts_seen = self._attempts
        entry = self._entry
        if entry is not None and not self._forced and now < entry.callers_at:
            with self._state_lock:  # re-arm the hot path, unless invalidated meanwhile
                if self._entry is entry and not self._forced:
                    self._hot = (entry.callers_at, entry.credentials)
            return entry.credentials
        error = self._error
        if error is not None and now < self._error_until:
            raise error.with_traceback(self._error_tb)
        if entry is not None and now < self._backoff_until:
            with self._state_lock:
                self._rate_limited += 1
            return entry.credentials
        if entry is not None and not self._forced and now < entry.mandatory_at:
            # Advisory window: one caller refreshes, nobody waits for it.
            if not self._refresh_lock.acquire(blocking=False):
                return entry.credentials
            try:
                if self._attempts != attempts_seen:
                    return self._outcome()
                return self._refresh_locked()
            finally:
                self._refresh_lock.release()
        # Mandatory window, expired, invalidated or nothing cached: wait for one refresh.
        self._refresh_lock.acquire()
        try:
            if self._attempts != attempts_seen:
                return self._outcome()
            return self._refresh_locked()
        finally:
            self._refresh_lock.release()

    def _outcome(self) -> TemporaryCredentials:
        """What a caller gets from a refresh another thread completed while it waited."""
        error = self._last_error
        entry = self._entry
        if entry is None or (error is not None and error is self._error):
            # Nothing cached, or an error retrying cannot fix: every waiter sees the error.
            raise error if error is not None else RuntimeError("no credentials were fetched")
        return entry.credentials  # fresh, or the cache served after a recoverable failure

    def _refresh_locked(self) -> TemporaryCredentials:
        """Ask the source once (the refresh lock is held) and record the outcome for waiters."""
        entry = self._entry
        with self._state_lock:
            self._fetches += 1
        try:
            try:
                credentials = self._fetch()
            except Exception as exc:  # noqa: BLE001 - any fetch error is a failed refresh
                return self._failed(exc, self._clock(), entry)
            now = self._clock()
            if credentials.expiration is not None and credentials.expiration <= now:
                return self._failed(StaleCredentialsError(credentials, now), now, entry)
            self._install(self._schedule(credentials, now, lifetime_known=True))
            logger.debug(
                "%s: refreshed, now %s until %s",
                self._name,
                credentials.access_key_id,
                _utc(credentials.expiration),
            )
            return credentials
        finally:
            self._wake.set()

    def _failed(self, exc: Exception, now: float, entry: Optional[_Entry]) -> TemporaryCredentials:
        """Serve the cache and back off, or raise when there is nothing to serve or no hope."""
        recoverable = self._is_recoverable(exc)
        backoff = 0.0
        with self._state_lock:
            self._failures += 1
            self._last_error = exc
            self._attempts += 1
            if not recoverable:
                self._error = exc
                self._error_tb = exc.__traceback__
                self._error_until = now + self._error_memory
            elif entry is not None:
                backoff = self._backoff_for(entry, now)
                self._backoff_until = now + backoff
        if not recoverable:
            logger.warning(
                "%s: refresh failed and retrying cannot fix it: %s; raising it for %.0f s "
                "without contacting the source",
                self._name,
                exc,
                self._error_memory,
            )
            raise exc
        if entry is None:
            logger.warning(
                "%s: fetching credentials failed and none are cached: %s", self._name, exc
            )
            raise exc
        logger.warning(
            "%s: refresh failed: %s; serving cached credentials %s (expiring %s) and not "
            "contacting the source again for %.0f s",
            self._name,
            exc,
            entry.credentials.access_key_id,
            _utc(entry.credentials.expiration),
            backoff,
        )
        return entry.credentials

    def _backoff_for(self, entry: Optional[_Entry], now: float) -> float:
        """A jittered backoff, never longer than the cached credentials have left."""
        low, high = self._backoff
        backoff = low + (high - low) * self._random()
        left = entry.expires_at - now if entry is not None else 0.0
        return min(backoff, left) if left > 0 else backoff

    # -- schedule ------------------------------------------------------------------------

    def _schedule(
        self, credentials: TemporaryCredentials, fetched_at: float, *, lifetime_known: bool
    ) -> _Entry:
        """Precompute when to refresh, so the hot path is a single comparison."""
        expiration = credentials.expiration
        if expiration is None:
            return _Entry(credentials, _INF, _INF, _INF, _INF, None)
        lifetime = expiration - fetched_at  # for `initial`, the time left is all we know
        window = self._advisory_window
        if window is None:
            window = advisory_window_for(lifetime)
        mandatory_at = expiration - self._mandatory_window
        start = expiration - window
        if lifetime_known:
            start = max(start, fetched_at + MIN_LIFETIME_FRACTION * lifetime)
        span = max(0.0, mandatory_at - start) * JITTER_FRACTION
        refresh_at = start + span * self._random()
        callers_at = refresh_at
        if self._prefetch:
            callers_at += min(PREFETCH_GRACE, max(0.0, mandatory_at - refresh_at) / 2)
        return _Entry(credentials, expiration, mandatory_at, refresh_at, callers_at, window)

    def _install(self, entry: _Entry) -> None:
        """Publish fresh credentials: one assignment each, so readers never see a torn state."""
        with self._state_lock:
            self._entry = entry
            self._forced = False
            self._backoff_until = _NEG_INF
            self._error = None
            self._error_tb = None
            self._error_until = _NEG_INF
            self._last_error = None
            self._attempts += 1
            self._hot = (entry.callers_at, entry.credentials)

    # -- prefetch ------------------------------------------------------------------------

    def _start_prefetch(self) -> None:
        """Start the daemon thread that refreshes early so request threads never pay."""
        with self._state_lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(
                target=_prefetch_loop,
                args=(weakref.ref(self), self._stop, self._wake),
                name=f"assume-provider-prefetch-{self._name}",
                daemon=True,
            )
            self._thread = thread
        thread.start()

    def _prefetch_step(self) -> float:
        """One pass of the prefetch thread: refresh if due; return how long to sleep."""
        delay = self._prefetch_delay(self._clock())
        if delay is not None:
            return delay
        if not self._refresh_lock.acquire(blocking=False):
            return PREFETCH_MAX_SLEEP  # a caller is refreshing; its outcome wakes us
        try:
            self._refresh_locked()
        except Exception:  # noqa: BLE001 - already logged; callers see it themselves
            return self._backoff_for(self._entry, self._clock())  # not again every error_memory
        finally:
            self._refresh_lock.release()
        return self._prefetch_delay(self._clock()) or 0.0

    def _prefetch_delay(self, now: float) -> Optional[float]:
        """How long the prefetch thread may sleep, or None if a refresh is due now."""
        entry = self._entry
        if entry is None:
            return PREFETCH_MAX_SLEEP  # the first fetch is a caller's; publishing wakes us
        if not self._forced and now < entry.refresh_at:
            return min(entry.refresh_at - now, PREFETCH_MAX_SLEEP)
        blocked_until = max(self._error_until, self._backoff_until)
        if now < blocked_until:
            return min(blocked_until - now, PREFETCH_MAX_SLEEP)
        return None

    # -- fork --------------------------------------------------------------------------

    def _reset_after_fork(self) -> None:
        """Give the child fresh locks and no in-flight refresh; keep the cached credentials."""
        self._refresh_lock = self._lock_factory()
        self._state_lock = self._lock_factory()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = None  # the parent's thread does not exist here; get() restarts it
        entry = self._entry
        self._hot = (_NEG_INF, entry.credentials if entry is not None else _NO_CREDENTIALS)


def _prefetch_loop(
    ref: weakref.ref[RefreshingCredentials], stop: threading.Event, wake: threading.Event
) -> None:
    """Refresh at the start of the advisory window; holds only a weak reference to the engine."""
    while not stop.is_set():
        engine = ref()
        if engine is None:
            return
        wake.clear()
        try:
            delay = engine._prefetch_step()
        except Exception:  # a background thread must not die silently
            logger.exception("prefetch of %s failed", engine._name)
            delay = PREFETCH_MAX_SLEEP
        del engine
        wake.wait(delay)
