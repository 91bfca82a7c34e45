"""A refresh listener that calls STS through boto3, as an application reporting a failure
does, against the local test bed: the first fetch and a background refresh fail while other
threads wait, and every thread (the listener's included) finishes.

The proxy holds the first AssumeRole (a gate on the fault's ``chance``, which the proxy asks
as the request arrives) until the other threads are inside the engine's slow path, waiting
for that refresh; only then does it fail. Thread joins with generous timeouts only detect a
deadlock; nothing sleeps to let a thread get somewhere.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import boto3
import botocore.config
import pytest
from fake_time import FakeClock
from testbed import TestBed
from testbed.proxy import Fault

import assume_provider

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

TIMEOUT = 30.0
WAITERS = 8


def new_session() -> boto3.Session:
    """A session per thread (botocore's advice), one STS attempt per refresh (no retries)."""
    session = boto3.Session()
    session._session.set_default_client_config(
        botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})
    )
    return session


def caller_identity() -> str:
    """What every thread does: an STS call whose credentials come from the provider."""
    return str(new_session().client("sts").get_caller_identity()["Arn"])


def waiting_in_the_engine(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside the engine's slow path (where it waits for a refresh)."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "_get_slow":
            return True
        frame = frame.f_back
    return False


def wait_until_waiting(threads: list[threading.Thread]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not all(waiting_in_the_engine(thread) for thread in threads):
        assert time.monotonic() < deadline, "the callers never reached the engine"
        time.sleep(0.001)


class Gate:
    """Holds the first matching request at the proxy until opened."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> bool:
        self.reached.set()
        return self.opened.wait(TIMEOUT)  # then the fault applies to the held request


def in_threads(targets: list[Callable[[], object]]) -> tuple[list[threading.Thread], list[object]]:
    """One daemon thread per target, started; (the threads, their results or errors)."""
    results: list[object] = [None] * len(targets)

    def work(index: int) -> None:
        try:
            results[index] = targets[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    return threads, results


def prepared_calls(count: int) -> list[Callable[[], str]]:
    """``count`` STS calls with their clients built now (which asks the engine nothing), so
    that once started each reaches the engine at once: the held AssumeRole must not
    outlast the STS client's read timeout while threads are still loading botocore."""
    clients = [new_session().client("sts") for _ in range(count)]
    return [lambda client=client: str(client.get_caller_identity()["Arn"]) for client in clients]


class ReportingListener:
    """Reports each event through STS (boto3); on the first caller's thread, then checks
    that the threads that waited for its refresh finished without waiting for this
    listener. Records what happened; never raises."""

    def __init__(self, others_finished: threading.Semaphore, others: int) -> None:
        self.kinds: list[str] = []
        self.reports: list[object] = []
        self.others_done: list[bool] = []
        self.depth = 0
        self.max_depth = 0
        self.first_caller: threading.Thread | None = None
        self._others_finished = others_finished
        self._others = others

    def __call__(self, event: assume_provider.RefreshEvent) -> None:
        self.depth += 1
        self.max_depth = max(self.max_depth, self.depth)
        try:
            self.kinds.append(event.kind)
            try:
                self.reports.append(caller_identity())
            except Exception as exc:
                self.reports.append(exc)
            if threading.current_thread() is self.first_caller:
                finished = self._others_finished
                self.others_done.append(
                    all(finished.acquire(timeout=TIMEOUT) for _ in range(self._others))
                )
        finally:
            self.depth -= 1


@pytest.fixture
def listening() -> Iterator[Callable[[ReportingListener], None]]:
    added: list[ReportingListener] = []

    def add(listener: ReportingListener) -> None:
        added.append(listener)
        assume_provider.add_refresh_listener(listener)

    yield add
    for listener in added:
        assume_provider.remove_refresh_listener(listener)


def join_all(threads: list[threading.Thread]) -> None:
    """Join every thread within one generous deadline; a thread still alive is a deadlock."""
    deadline = time.monotonic() + 3 * TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "deadlocked"


def finishing(
    semaphore: threading.Semaphore, calls: list[Callable[[], str]]
) -> list[Callable[[], object]]:
    """The calls, each releasing ``semaphore`` once it has its answer (or error)."""

    def finish(call: Callable[[], str]) -> object:
        try:
            return call()
        finally:
            semaphore.release()

    return [lambda call=call: finish(call) for call in calls]


def test_listener_calling_sts_on_a_failed_first_fetch_with_threads_waiting(
    aws_env: TestBed, listening: Callable[[ReportingListener], None]
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    gate = Gate()
    aws_env.proxy.inject(Fault.server_error(500), action="AssumeRole", chance=gate)
    aws_env.proxy.inject(Fault.server_error(500), action="AssumeRole", times=None)
    others_finished = threading.Semaphore(0)
    listener = ReportingListener(others_finished, WAITERS)
    listening(listener)

    calls = prepared_calls(1 + WAITERS)
    first, first_result = in_threads(calls[:1])
    listener.first_caller = first[0]
    assert gate.reached.wait(TIMEOUT)  # the first fetch is at STS, holding the refresh
    waiters, results = in_threads(finishing(others_finished, calls[1:]))
    wait_until_waiting(waiters)
    gate.opened.set()  # the fetch fails now, with nothing cached
    join_all(first + waiters)

    # Every caller got the error of the one attempt they shared.
    assert all(isinstance(result, Exception) for result in first_result + results)
    assert listener.kinds == ["failed"]
    # The report failed too (STS is still down): the listener's own attempt was made, and
    # not handed back to it (no recursion); the waiters were done before it was.
    assert len(listener.reports) == 1 and isinstance(listener.reports[0], Exception)
    assert listener.max_depth == 1
    assert listener.others_done == [True]
    assert aws_env.proxy.count(action="AssumeRole") == 2

    aws_env.proxy.clear_faults()  # STS is back: nothing was left wedged
    role_name = aws_env.world.target_role_arn.split("/")[-1]
    assert f":assumed-role/{role_name}/" in caller_identity()


def test_listener_calling_sts_on_a_failed_early_refresh_with_threads_waiting(
    aws_env: TestBed, fake_clock: FakeClock, listening: Callable[[ReportingListener], None]
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    caller_identity()  # credentials cached, valid for an hour
    others_finished = threading.Semaphore(0)
    listener = ReportingListener(others_finished, WAITERS)
    listening(listener)
    gate = Gate()
    aws_env.proxy.inject(Fault.throttle(), action="AssumeRole", chance=gate)
    aws_env.proxy.inject(Fault.throttle(), action="AssumeRole", times=None)
    before = aws_env.proxy.count(action="AssumeRole")

    calls = prepared_calls(1 + WAITERS)
    fake_clock.advance(3600 - 90)  # the early window: one caller refreshes, nobody waits
    first, first_result = in_threads(calls[:1])
    listener.first_caller = first[0]
    assert gate.reached.wait(TIMEOUT)  # that refresh is at STS, holding the refresh lock
    fake_clock.advance(60)  # the blocking window: callers now wait for the refresh
    waiters, results = in_threads(finishing(others_finished, calls[1:]))
    wait_until_waiting(waiters)
    gate.opened.set()  # the refresh fails now (throttled), with valid credentials cached
    join_all(first + waiters)

    # Everyone was served the cached credentials (still valid), the listener's report too.
    assert all(isinstance(result, str) for result in first_result + results), results
    assert listener.kinds == ["served_stale"]
    assert len(listener.reports) == 1 and isinstance(listener.reports[0], str)
    assert listener.others_done == [True]
    assert listener.max_depth == 1
    assert aws_env.proxy.count(action="AssumeRole") - before == 1  # one attempt, then backoff
