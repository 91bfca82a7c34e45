"""A service's ExpiredToken answer, against the local test bed: who is retried, and at what cost.

The retry decision uses only what this package recorded when it handed keys to botocore: a
request signed with one of its keys is retried (after an invalidate if that key is still
current), and nothing else is; the decision never resolves credentials.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from testbed import TestBed
from testbed.proxy import Fault

import assume_provider
from assume_provider.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

EXPIRED = Fault.error(
    "ExpiredTokenException", 400, "The security token included in the request is expired"
)


def get_item(client: Any, bed: TestBed) -> dict[str, Any]:
    world = bed.world
    return client.get_item(  # type: ignore[no-any-return]
        TableName=world.table_name, Key=world.secret_item_key
    )


def test_requests_in_flight_when_their_key_was_replaced_are_retried_without_another_refresh(
    aws_env: TestBed,
) -> None:
    """Three threads sign with K1; the first is answered ExpiredToken, refreshes to K2 and
    succeeds; the other two arrive after that, are answered ExpiredToken too, and succeed on
    a retry signed with K2: one refresh for the three."""
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    session = boto3.Session()
    get_item(session.client("dynamodb"), aws_env)  # K1 fetched and in use
    old_key = aws_env.proxy.calls(action="GetItem")[-1].access_key_id

    all_signed = threading.Barrier(3, timeout=30)
    first_finished = threading.Event()
    sent_once = threading.local()

    def hold_first_attempts(request: Any, **_: Any) -> None:
        # before-send runs after signing: each thread's first attempt is signed with K1.
        if getattr(sent_once, "value", False):
            return  # retries go straight through
        sent_once.value = True
        all_signed.wait()
        if threading.current_thread().name != "first":
            assert first_finished.wait(60), "the first thread never finished"

    session.events.register("before-send.dynamodb.GetItem", hold_first_attempts)
    clients = {name: session.client("dynamodb") for name in ("first", "second", "third")}
    results: dict[str, Any] = {}

    def call(name: str) -> None:
        try:
            results[name] = get_item(clients[name], aws_env)
        except Exception as exc:
            results[name] = exc

    aws_env.proxy.inject(EXPIRED, action="GetItem", times=1)  # for the first thread's K1 request
    threads = [threading.Thread(target=call, args=(name,), name=name) for name in clients]
    for thread in threads:
        thread.start()
    threads[0].join(60)
    assert not threads[0].is_alive(), "the first thread hung"
    # The other two K1 requests, and only they: a retry signed with K2 may come first.
    aws_env.proxy.inject(EXPIRED, action="GetItem", times=2, access_key_id=old_key)
    first_finished.set()
    for thread in threads[1:]:
        thread.join(60)

    failed = {k: v for k, v in results.items() if not (isinstance(v, dict) and "Item" in v)}
    assert not failed, failed  # the threads that got no item, with what they got instead
    assert len(results) == 3
    assert aws_env.proxy.count(action="AssumeRole") == 2  # the first fetch and one refresh
    attempts = aws_env.proxy.calls(action="GetItem")[1:]
    rejected = [call for call in attempts if call.fault is not None]
    retried = [call for call in attempts if call.fault is None]
    assert len(rejected) == 3 and {call.access_key_id for call in rejected} == {old_key}
    assert len(retried) == 3 and len({call.access_key_id for call in retried}) == 1
    assert retried[0].access_key_id != old_key


def test_three_requests_rejected_together_succeed_after_one_refresh(aws_env: TestBed) -> None:
    """All three K1 requests are answered ExpiredToken (a retry signed with K2 may arrive
    before one of them): the ones that find K1 still current invalidate it, and the engine
    refreshes once for all of them."""
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    session = boto3.Session()
    client = session.client("dynamodb")
    get_item(client, aws_env)
    old_key = aws_env.proxy.calls(action="GetItem")[-1].access_key_id

    all_signed = threading.Barrier(3, timeout=30)
    sent_once = threading.local()

    def hold_first_attempts(request: Any, **_: Any) -> None:
        if not getattr(sent_once, "value", False):
            sent_once.value = True
            all_signed.wait()

    client.meta.events.register("before-send.dynamodb.GetItem", hold_first_attempts)
    # Only K1 requests are rejected: once the barrier opens, a thread's retry signed with K2
    # may reach the proxy before another thread's K1 request (a loaded machine orders it so).
    aws_env.proxy.inject(EXPIRED, action="GetItem", times=3, access_key_id=old_key)
    results: list[Any] = []

    def call() -> None:
        try:
            results.append(get_item(client, aws_env))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(results) == 3 and all(isinstance(r, dict) and "Item" in r for r in results), results
    assert aws_env.proxy.count(action="AssumeRole") == 2
    attempts = aws_env.proxy.calls(action="GetItem")[1:]
    assert {call.access_key_id for call in attempts if call.fault} == {old_key}
    assert len({call.access_key_id for call in attempts if not call.fault} - {old_key}) == 1


def _explicit_client(session: boto3.Session, bed: TestBed) -> Any:
    own = bed.assume(bed.world.target_role_arn)  # straight from moto: not at the proxy
    return session.client(
        "dynamodb",
        aws_access_key_id=own["AccessKeyId"],
        aws_secret_access_key=own["SecretAccessKey"],
        aws_session_token=own["SessionToken"],
    )


def test_expired_token_for_explicit_credentials_makes_no_credential_resolution(
    aws_env: TestBed,
) -> None:
    """The session's own chain (inactive provider, then botocore's chain down to IMDS) is
    never run by the retry decision of a client that brought its own credentials."""
    assume_provider.install()  # no role chain configured: the session's chain ends at IMDS
    session = boto3.Session()
    client = _explicit_client(session, aws_env)
    aws_env.proxy.inject(EXPIRED, action="GetItem")

    with pytest.raises(ClientError, match="ExpiredTokenException"):
        get_item(client, aws_env)

    assert aws_env.imds.request_count == 0
    assert aws_env.proxy.count(service="sts") == 0
    assert aws_env.proxy.count(action="GetItem") == 1  # not retried: the same key would fail


def test_expired_token_for_explicit_credentials_is_the_error_the_application_sees(
    aws_env: TestBed, aws_config_file: Path
) -> None:
    """A session whose provider would fail to load (a bad setting in the config file) is not
    asked: the application gets the service's error, not the provider's ConfigError."""
    aws_config_file.write_text(
        "[default]\n"
        f"assume_provider_role_arn = {aws_env.world.target_role_arn}\n"
        "assume_provider_duration_seconds = forever\n"
    )
    assume_provider.install()
    session = boto3.Session()
    with pytest.raises(ConfigError):  # what running the session's chain leads to
        session.client("sts").get_caller_identity()
    session = boto3.Session()
    client = _explicit_client(session, aws_env)
    aws_env.proxy.reset()
    aws_env.imds.reset()
    aws_env.proxy.inject(EXPIRED, action="GetItem")

    with pytest.raises(ClientError, match="ExpiredTokenException"):
        get_item(client, aws_env)

    assert aws_env.imds.request_count == 0
    assert aws_env.proxy.count(service="sts") == 0
