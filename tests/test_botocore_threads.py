"""The provider never builds on the application's session from its own threads.

botocore does not promise that ``Session.create_client`` is safe from several threads of one
session at once; the application may do it (its choice), but the prefetch thread, the server's
workers and the async worker must not add themselves to that. Here 32 application threads
create clients on one session while the prefetch thread refreshes, round after round; the
session (a subclass of the test's own) records every client built on it. Time is the fake
clock's: each round moves it to the refresh time and wakes the prefetch thread, then waits for
the refresh it makes.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import botocore.session
import pytest
from fake_time import FakeClock
from testbed import TestBed

import assume_provider
from assume_provider.engine.events import REFRESHED, RefreshEvent

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

THREADS = 32
CLIENTS_PER_THREAD = 2
ROUNDS = 12
WAIT = 60  # a safety net for a broken build, never what a passing run waits for


class RecordingSession(botocore.session.Session):
    """Counts the clients built on it, by the name of the thread that built them."""

    def __init__(self) -> None:
        super().__init__()
        self.builders: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        with self._count_lock:
            self.builders[threading.current_thread().name] += 1
        return super().create_client(*args, **kwargs)


def test_32_threads_create_clients_while_the_prefetch_thread_refreshes(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    world = aws_env.world
    session = RecordingSession()
    assume_provider.register(
        session, role_arn=world.target_role_arn, duration_seconds=900, prefetch=True
    )
    first_arn = session.create_client("sts").get_caller_identity()["Arn"]
    assert world.account_a in first_arn
    engine = session.get_credentials()._engine

    refreshed = threading.Semaphore(0)

    def on_refresh(event: RefreshEvent) -> None:
        if event.kind == REFRESHED:
            refreshed.release()

    assume_provider.add_refresh_listener(on_refresh)
    errors: list[BaseException] = []
    try:
        for round_number in range(ROUNDS):
            before = engine.current.access_key_id
            start = threading.Barrier(THREADS + 1)

            def create_clients(start: threading.Barrier = start) -> None:
                try:
                    start.wait(WAIT)
                    for _ in range(CLIENTS_PER_THREAD):
                        session.create_client("sts")
                except BaseException as error:  # reported below
                    errors.append(error)

            threads = [
                threading.Thread(target=create_clients, name=f"app-{round_number}-{index}")
                for index in range(THREADS)
            ]
            for thread in threads:
                thread.start()
            fake_clock.now = engine.refresh_at  # the early refresh is due: the thread's turn
            start.wait(WAIT)
            engine._prefetcher.wake()  # instead of its minute-long nap on the real clock
            assert refreshed.acquire(timeout=WAIT), f"round {round_number}: no refresh"
            for thread in threads:
                thread.join(WAIT)
            assert engine.current.access_key_id != before
    finally:
        assume_provider.remove_refresh_listener(on_refresh)

    assert errors == []
    assert aws_env.proxy.count(action="AssumeRole") == 1 + ROUNDS
    # Every client built on the application's session is one the application asked for.
    expected = Counter({"MainThread": 1})
    for round_number in range(ROUNDS):
        for index in range(THREADS):
            expected[f"app-{round_number}-{index}"] = CLIENTS_PER_THREAD
    assert session.builders == expected
    last = session.create_client("sts").get_caller_identity()
    assert last["Arn"] == first_arn
