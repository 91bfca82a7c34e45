"""Refresh listeners run outside the engine's locks: they may use the engine themselves,
waiting callers never wait for them, and a listener cannot trigger itself without end.

Engine-level, with a watched lock (``test_refresh_threads.WatchedLock``) so a test knows
when callers wait for the refresh; joins and event timeouts only detect a hang.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from refresh_fakes import T0, FakeClock, SourceDown
from test_refresh_threads import THREADS, TIMEOUT, WatchedLock

from assume_provider.engine import events
from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials

NEW = TemporaryCredentials("AKID-NEW", "S", "T", T0 + 3600)


class Bench:
    """An engine with a watched refresh lock, a scripted source, and one listener slot."""

    def __init__(self, remaining: float | None) -> None:
        self.clock = FakeClock()
        self.locks: list[WatchedLock] = []
        self.calls = 0
        self.answer: Callable[[], TemporaryCredentials] = lambda: NEW
        cached = None
        if remaining is not None:
            cached = TemporaryCredentials("AKID-OLD", "S", "T", T0 + remaining)
        self.engine = RefreshingCredentials(
            self.fetch,
            clock=self.clock,
            monotonic=self.clock.monotonic,
            lock_factory=self.new_lock,
            random=lambda: 0.0,
            initial=cached,
        )
        self.refresh_lock = self.locks[0]

    def new_lock(self) -> WatchedLock:
        lock = WatchedLock()
        self.locks.append(lock)
        return lock

    def fetch(self) -> TemporaryCredentials:
        self.calls += 1
        return self.answer()


@pytest.fixture
def listen() -> Iterator[Callable[[events.RefreshListener], None]]:
    added: list[events.RefreshListener] = []

    def add(callback: events.RefreshListener) -> None:
        added.append(callback)
        events.add_refresh_listener(callback)

    yield add
    for callback in added:
        events.remove_refresh_listener(callback)


def in_threads(count: int, target: Callable[[], object]) -> tuple[list[object], list[bool]]:
    """Run target in ``count`` daemon threads; (results or errors, which ones finished)."""
    results: list[object] = [None] * count

    def work(index: int) -> None:
        try:
            results[index] = target()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    return results, [not thread.is_alive() for thread in threads]


@pytest.mark.parametrize("outcome", ["refreshed", "served_stale", "failed"])
def test_waiting_callers_have_the_result_before_a_listener_of_it_runs(
    listen: Callable[[events.RefreshListener], None], outcome: str
) -> None:
    bench = Bench(remaining=None if outcome == "failed" else 30)  # blocking window: all wait
    finished = threading.Semaphore(0)
    others_done: list[bool] = []

    def slow_listener(event: events.RefreshEvent) -> None:
        # Runs on the thread that made the attempt; the other callers must not need it.
        others_done.append(all(finished.acquire(timeout=TIMEOUT) for _ in range(THREADS - 1)))

    def answer() -> TemporaryCredentials:
        bench.refresh_lock.wait_for_waiting(THREADS - 1)  # all callers wait
        if outcome != "refreshed":
            raise SourceDown("Throttling")
        return NEW

    def call() -> object:
        try:
            return bench.engine.get()
        finally:
            finished.release()

    bench.answer = answer
    listen(slow_listener)
    results, done = in_threads(THREADS, call)

    assert all(done), "a caller hung"
    assert others_done == [True], "callers waited for the listener of the refresh they shared"
    assert bench.calls == 1
    if outcome == "failed":
        assert all(isinstance(result, SourceDown) for result in results)
    else:
        assert all(isinstance(result, TemporaryCredentials) for result in results)


def test_a_listener_may_use_the_engine_that_emitted_the_event(
    listen: Callable[[events.RefreshListener], None],
) -> None:
    """A listener reporting a failed first fetch through a client of the same engine: its
    own attempt (nothing cached, so no backoff) is made, logged, and not delivered again."""
    bench = Bench(remaining=None)
    bench.answer = lambda: (_ for _ in ()).throw(SourceDown("Throttling"))
    seen: list[str] = []
    nested: list[BaseException] = []

    def reporting_listener(event: events.RefreshEvent) -> None:
        seen.append(event.kind)
        try:
            bench.engine.get()  # what an STS client resolving through this engine does
        except SourceDown as exc:
            nested.append(exc)

    listen(reporting_listener)
    results, done = in_threads(1, bench.engine.get)

    assert done == [True], "the listener deadlocked on the engine's lock"
    assert isinstance(results[0], SourceDown)
    assert seen == ["failed"]  # once: the listener's own attempt was not handed back to it
    assert len(nested) == 1
    assert bench.calls == 2  # the caller's attempt and the listener's, no more

    bench.answer = lambda: NEW  # the source is back: the engine is not wedged
    results, done = in_threads(1, bench.engine.get)
    assert done == [True] and results == [NEW]
    assert seen == ["failed", "refreshed"]


def test_a_listener_attempt_is_logged_as_one(
    listen: Callable[[events.RefreshListener], None], caplog: pytest.LogCaptureFixture
) -> None:
    bench = Bench(remaining=None)
    bench.answer = lambda: (_ for _ in ()).throw(SourceDown("Throttling"))

    def reporting_listener(event: events.RefreshEvent) -> None:
        try:
            bench.engine.get()
        except SourceDown:
            pass

    listen(reporting_listener)
    caplog.set_level("INFO", logger="assume_provider.refresh")
    for _ in range(3):
        with pytest.raises(SourceDown):
            bench.engine.get()
    records = [r for r in caplog.records if r.name == "assume_provider.refresh"]
    by_listener = [r for r in records if "made by a refresh listener" in r.getMessage()]
    assert bench.calls == 6  # each failed get() and its listener's one attempt
    assert len(records) == 6 and len(by_listener) == 3
    assert all(r.kind == "failed" for r in records)


def test_in_the_early_window_only_the_refresher_pays_for_its_listener(
    listen: Callable[[events.RefreshListener], None],
) -> None:
    """The new credentials are published before the refresher's listener runs: the other
    callers get them at once, while that listener still runs."""
    bench = Bench(remaining=200)  # early window: a 300 s window, 200 s left
    entered, proceed = threading.Event(), threading.Event()

    def slow_listener(event: events.RefreshEvent) -> None:
        entered.set()
        proceed.wait(TIMEOUT)

    listen(slow_listener)
    refresher = threading.Thread(target=bench.engine.get, daemon=True)
    refresher.start()
    try:
        assert entered.wait(TIMEOUT)  # the refresher is inside its listener now
        results, done = in_threads(8, bench.engine.get)
        assert all(done) and all(result is NEW for result in results)
    finally:
        proceed.set()
        refresher.join(TIMEOUT)
    assert bench.calls == 1
