"""engine.get() off the calling thread: one flight per engine, shared by every waiter.

A real engine whose source blocks on an event, so each test knows a flight is in progress
without sleeping; thread joins and future timeouts only detect a hang, they assert nothing.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator

import pytest
from refresh_fakes import T0, AccessDenied, FakeClock

from assume_provider.engine import events
from assume_provider.engine.offthread import get_off_thread
from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials

TIMEOUT = 10.0
CALLERS = 32


class BlockingSource:
    """Counts its calls; each waits for ``release`` once it has set ``entered``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.error: Exception | None = None

    def __call__(self) -> TemporaryCredentials:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(TIMEOUT)
        if self.error is not None:
            raise self.error
        n = self.calls
        return TemporaryCredentials(f"AKID-{n}", f"S-{n}", f"T-{n}", self.clock.now + 3600)


@pytest.fixture
def source() -> BlockingSource:
    return BlockingSource(FakeClock())


def make_engine(source: BlockingSource, **kwargs: object) -> RefreshingCredentials:
    clock = source.clock
    return RefreshingCredentials(
        source,
        clock=clock,
        monotonic=clock.monotonic,
        random=lambda: 0.0,
        **kwargs,  # type: ignore[arg-type]
    )


def futures_from_many_threads(
    engine: RefreshingCredentials,
) -> list[concurrent.futures.Future[TemporaryCredentials]]:
    """get_off_thread from CALLERS threads started together; each returns at once."""
    barrier = threading.Barrier(CALLERS)
    found: list[concurrent.futures.Future[TemporaryCredentials]] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait(TIMEOUT)
        future = get_off_thread(engine)
        with lock:
            found.append(future)

    threads = [threading.Thread(target=call) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert len(found) == CALLERS, "a caller of get_off_thread hung"
    return found


def test_many_concurrent_callers_share_one_flight_and_one_get(source: BlockingSource) -> None:
    engine = make_engine(source)
    first = get_off_thread(engine)
    assert source.entered.wait(TIMEOUT)  # the flight is in progress, inside the source
    others = futures_from_many_threads(engine)
    assert all(future is first for future in others)
    source.release.set()
    credentials = first.result(TIMEOUT)
    assert credentials.access_key_id == "AKID-1"
    assert source.calls == 1
    assert all(future.result(TIMEOUT) is credentials for future in others)


def test_an_error_reaches_every_waiter(source: BlockingSource) -> None:
    engine = make_engine(source)
    source.error = AccessDenied("AccessDenied")
    first = get_off_thread(engine)
    assert source.entered.wait(TIMEOUT)
    others = futures_from_many_threads(engine)
    source.release.set()
    error = first.exception(TIMEOUT)
    assert isinstance(error, AccessDenied)
    assert all(future.exception(TIMEOUT) is error for future in others)
    assert source.calls == 1


def test_the_flight_is_forgotten_once_it_ends(source: BlockingSource) -> None:
    engine = make_engine(source)
    source.error = AccessDenied("AccessDenied")
    source.release.set()
    failed = get_off_thread(engine)
    assert isinstance(failed.exception(TIMEOUT), AccessDenied)
    source.clock.now += 10  # past the error memory (5 s): the source may be asked again
    source.error = None
    again = get_off_thread(engine)
    assert again is not failed  # a new flight, which asks the source again
    assert again.result(TIMEOUT).access_key_id == "AKID-2"
    assert source.calls == 2
    served = get_off_thread(engine)
    assert served is not again
    assert served.result(TIMEOUT) is again.result()  # valid now: served without a fetch
    assert source.calls == 2


def test_waiters_have_the_result_before_a_listener_of_that_refresh_runs(
    source: BlockingSource,
) -> None:
    listening, proceed = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow_listener(event: events.RefreshEvent) -> None:
        listening.set()
        seen.append(event.kind)
        proceed.wait(TIMEOUT)

    engine = make_engine(source)
    events.add_refresh_listener(slow_listener)
    try:
        source.release.set()
        flight = get_off_thread(engine)
        assert flight.result(TIMEOUT).access_key_id == "AKID-1"  # the listener still waits
        assert listening.wait(TIMEOUT)
    finally:
        proceed.set()
        events.remove_refresh_listener(slow_listener)
    assert seen == ["refreshed"]


def test_the_prefetch_refresh_is_the_engines_flight(source: BlockingSource) -> None:
    """The prefetch thread starts its refresh as the flight an async caller joins."""
    due = TemporaryCredentials("AKID-OLD", "S", "T", T0 + 3600)
    engine = make_engine(source, initial=due, prefetch=True)
    engine.close()  # drive the steps by hand
    source.clock.now = engine.refresh_at  # the thread's turn; callers are still served
    sleeps: list[float] = []
    stepping = threading.Thread(target=lambda: sleeps.append(engine._prefetch_step()))
    stepping.start()
    try:
        assert source.entered.wait(TIMEOUT)
        joined = get_off_thread(engine)  # during the prefetch's fetch: the same flight
        assert not joined.done()
    finally:
        source.release.set()
        stepping.join(TIMEOUT)
    assert joined.result(TIMEOUT).access_key_id == "AKID-1"
    assert source.calls == 1
    assert sleeps and sleeps[0] > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_forked_child_forgets_the_parents_flight(source: BlockingSource) -> None:
    engine = make_engine(source)
    parent_flight = get_off_thread(engine)
    assert source.entered.wait(TIMEOUT)  # in flight, and it never ends in the child

    def child() -> bool:
        source.release.set()  # the child's own fetch must not block
        flight = get_off_thread(engine)
        return flight is not parent_flight and flight.result(TIMEOUT).access_key_id == "AKID-2"

    try:
        assert in_child(child) == 0
    finally:
        source.release.set()
    assert parent_flight.result(TIMEOUT).access_key_id == "AKID-1"


def in_child(check: Callable[[], bool]) -> int:
    """Fork; the child runs check and exits 0 if it holds; return the child's exit code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            signal.alarm(int(TIMEOUT))  # a deadlocked child must not hang the suite
            code = 0 if check() else 1
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture(autouse=True)
def _no_leftover_listeners() -> Iterator[None]:
    yield
    assert events._listeners == ()


def test_an_async_listener_reporting_a_failure_through_the_engine_does_not_loop() -> None:
    """An async application's listener hands its report to the loop (as it must: listeners
    are synchronous), and the report's aiobotocore call needs the same engine, whose source
    is still failing. That attempt is the listener's own: it must not reach the listener
    again, or every failure schedules the next one, for ever (an endless run of STS calls,
    one after another, for as long as STS fails)."""
    import asyncio

    calls = 0

    def failing() -> TemporaryCredentials:
        nonlocal calls
        calls += 1
        raise ConnectionError("STS unreachable")

    engine = RefreshingCredentials(failing)
    reports: list[concurrent.futures.Future[None]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def report() -> None:  # what an aiobotocore call through this engine does
            with pytest.raises(ConnectionError):
                await asyncio.wrap_future(get_off_thread(engine))

        def listener(event: events.RefreshEvent) -> None:
            if event.kind == events.FAILED and len(reports) < 5:  # 5: bounded if it loops
                reports.append(asyncio.run_coroutine_threadsafe(report(), loop))

        events.add_refresh_listener(listener)
        try:
            with pytest.raises(ConnectionError):
                await asyncio.wrap_future(get_off_thread(engine))
            await_workers()  # the first attempt's listener has run
            assert len(reports) == 1
            await asyncio.wrap_future(reports[0])
            await_workers()  # and the report's attempt has been delivered, or not
        finally:
            events.remove_refresh_listener(listener)

    def await_workers() -> None:
        for thread in threading.enumerate():
            if thread.name == "assume-provider-refresh":
                thread.join(TIMEOUT)
                assert not thread.is_alive()

    asyncio.run(main())
    assert len(reports) == 1, "the report's own failed attempt reached the listener again"
    assert calls == 2
