"""Many threads, one refresh: single flight in the blocking window, no waiting in the early one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Optional

import pytest
from refresh_fakes import T0, AccessDenied, FakeClock, SourceDown

from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials

THREADS = 64
TIMEOUT = 60.0  # failure-only: every wait ends as soon as what it waits for happens


class WatchedLock:
    """A real lock that tells how many threads are blocked in acquire() right now, and
    notifies a condition each time that number changes, so a test waits for it without polling."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count_changed = threading.Condition(threading.Lock())
        self.waiting = 0
        self.acquires = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.acquires += 1
        if not blocking:
            return self._lock.acquire(False)
        with self._count_changed:
            self.waiting += 1
            self._count_changed.notify_all()
        try:
            return self._lock.acquire(True, timeout)
        finally:
            with self._count_changed:
                self.waiting -= 1
                self._count_changed.notify_all()

    def release(self) -> None:
        self._lock.release()

    def wait_for_waiting(self, count: int) -> None:
        """Block until at least ``count`` threads are blocked in acquire()."""
        with self._count_changed:
            if not self._count_changed.wait_for(lambda: self.waiting >= count, TIMEOUT):
                raise AssertionError(f"timed out waiting until {count} callers wait")

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.release()


def run_threads(count: int, target: Callable[[], object]) -> list[object]:
    """Run target in `count` threads; each slot gets its result or the exception it raised."""
    results: list[object] = [None] * count

    def work(index: int) -> None:
        try:
            results[index] = target()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a get() call hung"
    return results


class Harness:
    """An engine whose first lock is watched, so a fetch can wait for all callers to queue."""

    def __init__(self, remaining: Optional[float], draw: float = 0.4) -> None:
        self.clock = FakeClock()
        self.locks: list[WatchedLock] = []
        self.calls = 0
        self.answer: Callable[[], TemporaryCredentials] = self.fresh
        self.cached = None
        if remaining is not None:
            self.cached = TemporaryCredentials("AKID-OLD", "OLD-S", "OLD-T", T0 + remaining)
        self.engine = RefreshingCredentials(
            self.fetch,
            clock=self.clock,
            monotonic=self.clock.monotonic,
            lock_factory=self.new_lock,
            random=lambda: draw,  # backoff 300 + 0.4 * 300 = 420 s
            initial=self.cached,
        )
        self.refresh_lock = self.locks[0]
        self.new = TemporaryCredentials("AKID-NEW", "NEW-S", "NEW-T", T0 + 3600)

    def new_lock(self) -> WatchedLock:
        lock = WatchedLock()
        self.locks.append(lock)
        return lock

    def fetch(self) -> TemporaryCredentials:
        self.calls += 1
        return self.answer()

    def fresh(self) -> TemporaryCredentials:
        return self.new

    def after_others_queue(self, then: Callable[[], TemporaryCredentials]) -> None:
        """The next fetch blocks until the other THREADS - 1 callers wait on the refresh."""

        def answer() -> TemporaryCredentials:
            self.refresh_lock.wait_for_waiting(THREADS - 1)
            return then()

        self.answer = answer


def test_mandatory_window_single_flight_success() -> None:
    h = Harness(remaining=30)
    h.after_others_queue(h.fresh)
    results = run_threads(THREADS, h.engine.get)
    assert h.calls == 1
    assert all(result is h.new for result in results)
    assert h.engine.stats.fetches == 1


def test_mandatory_window_single_flight_failure_then_backoff() -> None:
    h = Harness(remaining=30)

    def fail() -> TemporaryCredentials:
        raise SourceDown("Throttling")

    h.after_others_queue(fail)
    results = run_threads(THREADS, h.engine.get)
    assert h.calls == 1, "every waiting thread retried the source"
    assert all(result is h.cached for result in results)

    h.answer = fail
    h.clock.now += 29  # inside the backoff, cut from 420 s to the 30 s the credentials had
    results = run_threads(THREADS, h.engine.get)
    assert h.calls == 1
    assert all(result is h.cached for result in results)
    assert h.engine.stats.rate_limited == THREADS

    h.clock.now += 1  # expired, so the backoff is over: one more attempt, single flight
    h.after_others_queue(fail)
    results = run_threads(THREADS, h.engine.get)
    assert h.calls == 2, "every waiting thread retried the source"
    assert all(result is h.cached for result in results)  # expired ones are still served

    h.answer = fail
    h.clock.now += 400  # inside the 420 s backoff that expired credentials get
    results = run_threads(THREADS, h.engine.get)
    assert h.calls == 2
    assert all(result is h.cached for result in results)
    assert h.engine.stats.rate_limited == 2 * THREADS

    h.clock.now += 21  # past the backoff: exactly one more attempt, still single flight
    h.after_others_queue(h.fresh)
    results = run_threads(THREADS, h.engine.get)
    assert h.calls == 3
    assert all(result is h.new for result in results)


def test_nothing_cached_waiters_share_the_error() -> None:
    h = Harness(remaining=None)

    def fail() -> TemporaryCredentials:
        raise SourceDown("no route to STS")

    h.after_others_queue(fail)
    results = run_threads(THREADS, h.engine.get)
    assert h.calls == 1
    assert all(isinstance(result, SourceDown) for result in results)


def test_fatal_error_reaches_every_waiter_once() -> None:
    h = Harness(remaining=30)

    def deny() -> TemporaryCredentials:
        raise AccessDenied("AccessDenied")

    h.after_others_queue(deny)
    results = run_threads(THREADS, h.engine.get)
    assert h.calls == 1
    assert all(isinstance(result, AccessDenied) for result in results)


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_advisory_window_nobody_waits_for_the_refresher(outcome: str) -> None:
    h = Harness(remaining=90)  # 5-minute window: due, but far from the blocking minute
    entered, release = threading.Event(), threading.Event()

    def slow() -> TemporaryCredentials:
        entered.set()
        assert release.wait(TIMEOUT)
        if outcome == "failure":
            raise SourceDown("slow and then throttled")
        return h.new

    h.answer = slow
    refresher = run_in_thread(h.engine.get)
    assert entered.wait(TIMEOUT)
    # The refresh is in flight and blocked: everyone else must be served at once.
    others = run_threads(THREADS - 1, h.engine.get)
    assert all(result is h.cached for result in others)
    assert h.calls == 1
    release.set()
    result = refresher()
    assert result is (h.new if outcome == "success" else h.cached)
    assert h.calls == 1


def run_in_thread(target: Callable[[], object]) -> Callable[[], object]:
    """Start target in a thread; the returned callable joins it and returns its result."""
    box: list[object] = []
    thread = threading.Thread(target=lambda: box.append(target()))
    thread.start()

    def join() -> object:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        return box[0]

    return join


def test_valid_credentials_take_no_lock_and_one_clock_call() -> None:
    h = Harness(remaining=7200)
    clock_calls = 0

    def counting_clock() -> float:
        nonlocal clock_calls
        clock_calls += 1
        return h.clock.now

    h.engine._clock = counting_clock
    acquires_before = [lock.acquires for lock in h.locks]
    for _ in range(1000):
        assert h.engine.get() is h.cached
    assert clock_calls == 1000
    assert [lock.acquires for lock in h.locks] == acquires_before
    assert h.calls == 0
