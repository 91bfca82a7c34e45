"""Many threads and forked children sharing the provider's credentials, against the test bed."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import boto3
import pytest
from fake_time import FakeClock
from testbed import TestBed
from testbed.proxy import Fault

import assume_provider

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

THREADS = 64


def run_together(calls: list[Callable[[], object]]) -> list[BaseException | None]:
    """Start every call at the same moment; return each one's error (None when it worked)."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            calls[index]()
        except BaseException as exc:
            errors[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)  # failure-only bound: a call that never returns
        assert not thread.is_alive(), "a call hung"
    return errors


def item_readers(bed: TestBed, count: int) -> list[Callable[[], object]]:
    """A client per thread (from one session: sharing across sessions is tested elsewhere,
    and 64 sessions would spend seconds loading service models)."""
    world = bed.world
    session = boto3.Session()
    readers = []
    for _ in range(count):
        client = session.client("dynamodb")
        readers.append(
            lambda c=client: c.get_item(TableName=world.table_name, Key=world.secret_item_key)
        )
    return readers


def test_sixty_four_threads_in_the_blocking_window_cost_one_assume_role(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    readers = item_readers(aws_env, THREADS)
    readers[0]()
    assert aws_env.proxy.count(action="AssumeRole") == 1

    fake_clock.advance(3600 - 30)  # 30 s left: every caller must wait for fresh credentials
    errors = run_together(readers)

    assert errors == [None] * THREADS
    assert aws_env.proxy.count(action="AssumeRole") == 2
    keys = {call.access_key_id for call in aws_env.proxy.calls(action="GetItem")[1:]}
    assert len(keys) == 1  # all 64 signed with the one refreshed key


def test_sixty_four_threads_with_sts_down_make_one_attempt_and_are_all_served(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    readers = item_readers(aws_env, THREADS)
    readers[0]()
    cached_key = aws_env.proxy.calls(action="GetItem")[0].access_key_id
    aws_env.proxy.inject(
        Fault.error("InternalFailure", 503, "down"), action="AssumeRole", times=None
    )

    def attempts() -> int:
        return aws_env.proxy.count(action="AssumeRole") - 1

    fake_clock.advance(3600 - 30)
    first_storm = run_together(readers)
    attempts_after_first_storm = attempts()
    fake_clock.advance(20)  # 10 s left, inside the backoff (cut to the 30 s they had)
    second_storm = run_together(readers)
    attempts_after_second_storm = attempts()
    fake_clock.advance(100)  # expired: the backoff is over, one more refresh, which fails
    third_storm = run_together(readers)
    attempts_after_third_storm = attempts()
    fake_clock.advance(120)  # expired, and inside the 300-600 s backoff that follows
    fourth_storm = run_together(readers)

    for storm in (first_storm, second_storm, third_storm, fourth_storm):
        assert storm == [None] * THREADS
    # One refresh (botocore's standard mode makes up to 3 attempts), not one per thread.
    assert 1 <= attempts_after_first_storm <= 3
    assert attempts_after_second_storm == attempts_after_first_storm
    assert 1 <= attempts_after_third_storm - attempts_after_second_storm <= 3
    assert attempts() == attempts_after_third_storm
    assert {call.access_key_id for call in aws_env.proxy.calls(action="GetItem")} == {cached_key}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_uses_inherited_credentials_and_refreshes_on_its_own(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    world = aws_env.world
    boto3.Session().client("sts").get_caller_identity()
    assert aws_env.proxy.count(action="AssumeRole") == 1

    pid = os.fork()
    if pid == 0:  # the child: like a gunicorn worker after the master pre-loaded the app
        status = 1
        try:
            client = boto3.Session().client("dynamodb")
            client.get_item(TableName=world.table_name, Key=world.secret_item_key)
            fake_clock.advance(3600 - 30)
            client.get_item(TableName=world.table_name, Key=world.secret_item_key)
            status = 0
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(wait_status) == 0
    # The child refreshed once itself (its clock moved); the parent's cache is untouched.
    assert aws_env.proxy.count(action="AssumeRole") == 2
    first, second = aws_env.proxy.calls(action="GetItem")
    assert first.access_key_id != second.access_key_id
