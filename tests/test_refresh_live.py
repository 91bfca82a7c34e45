"""The refresh engine inside the provider, against the local test bed: faults, expiry, soak.

Time is simulated: the engine's clock and moto's STS clock (moto runs in this process) are
the same fake clock, so hours pass in milliseconds and nothing sleeps waiting for expiry.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import boto3
import botocore.config
import pytest
from fake_time import FakeClock
from testbed import TestBed
from testbed.proxy import Fault

import assume_provider

pytestmark = pytest.mark.usefixtures("fresh_provider_state")


def get_item(session: boto3.Session, bed: TestBed) -> dict[str, object]:
    world = bed.world
    return session.client("dynamodb").get_item(  # type: ignore[no-any-return]
        TableName=world.table_name, Key=world.secret_item_key
    )


# name: (the fault, given a gate the test sets once the retry has arrived; times; attempts)
FAULTS: dict[str, tuple[Callable[[threading.Event], Fault], int, int]] = {
    "first two throttled": (lambda gate: Fault.throttle(), 2, 3),
    "a 500": (lambda gate: Fault.server_error(500), 1, 2),
    "a dropped connection": (lambda gate: Fault.drop(), 1, 2),
    # Held until the client has given up on it and retried: beyond the read timeout
    # however slow the machine, where a fixed delay could end first under load.
    "a call held beyond the read timeout": (Fault.hold, 1, 2),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_application_calls_succeed_through_sts_faults(aws_env: TestBed, name: str) -> None:
    make_fault, times, expected_attempts = FAULTS[name]
    gate = threading.Event()
    aws_env.proxy.inject(make_fault(gate), action="AssumeRole", times=times)
    release = threading.Thread(
        target=lambda: aws_env.proxy.wait_for_count(expected_attempts, action="AssumeRole")
        and gate.set(),
        daemon=True,
    )
    release.start()
    session = boto3.Session()
    # The application's own client settings apply to the STS calls too: a 1 s read timeout.
    session._session.set_default_client_config(botocore.config.Config(read_timeout=1))
    assume_provider.register(session, role_arn=aws_env.world.target_role_arn)

    try:
        item = get_item(session, aws_env)
    finally:
        gate.set()  # a held call never outlives the test
        release.join(60)

    assert "Item" in item
    assert aws_env.proxy.count(action="AssumeRole") == expected_attempts
    assert aws_env.proxy.count(action="GetItem") == 1


def test_expired_token_from_a_service_refreshes_and_retries_once(aws_env: TestBed) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    session = boto3.Session()
    get_item(session, aws_env)
    aws_env.proxy.inject(
        Fault.error(
            "ExpiredTokenException", 400, "The security token included in the request is expired"
        ),
        action="GetItem",
    )

    assert "Item" in get_item(session, aws_env)

    first, retried = aws_env.proxy.calls(action="GetItem")[-2:]
    assert first.fault is not None and retried.fault is None
    assert first.access_key_id != retried.access_key_id
    assert aws_env.proxy.count(action="AssumeRole") == 2


def test_expired_token_for_a_clients_own_credentials_leaves_the_provider_alone(
    aws_env: TestBed,
) -> None:
    from botocore.exceptions import ClientError

    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn)
    session = boto3.Session()
    get_item(session, aws_env)  # the provider's credentials, resolved and in use
    own = aws_env.assume(world.target_role_arn)  # a client with credentials of its own
    client = session.client(
        "dynamodb",
        aws_access_key_id=own["AccessKeyId"],
        aws_secret_access_key=own["SecretAccessKey"],
        aws_session_token=own["SessionToken"],
    )
    aws_env.proxy.inject(Fault.error("ExpiredTokenException", 400, "expired"), action="GetItem")

    with pytest.raises(ClientError, match="ExpiredTokenException"):
        client.get_item(TableName=world.table_name, Key=world.secret_item_key)

    assert aws_env.proxy.count(action="AssumeRole") == 1  # no refresh of the shared ones
    assert aws_env.proxy.count(action="GetItem") == 2  # no retry with the same credentials


def test_rotated_instance_profile_is_used_when_sts_rejects_the_old_one(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    session = boto3.Session()
    get_item(session, aws_env)
    old_source_key = aws_env.imds.credentials.access_key_id
    new_source_key = aws_env.imds.rotate().access_key_id
    aws_env.proxy.inject(Fault.error("ExpiredToken", 400, "token expired"), action="AssumeRole")

    fake_clock.advance(3600 - 30)  # into the blocking window: the next call must refresh
    assert "Item" in get_item(session, aws_env)

    rejected, accepted = aws_env.proxy.calls(action="AssumeRole")[-2:]
    assert rejected.access_key_id == old_source_key
    assert accepted.access_key_id == new_source_key


def test_expired_credentials_are_refreshed_before_use(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    session = boto3.Session()
    get_item(session, aws_env)
    fake_clock.advance(2 * 3600)  # long after expiry, as after a suspended laptop or VM
    get_item(session, aws_env)
    first, second = aws_env.proxy.calls(action="GetItem")
    assert first.access_key_id != second.access_key_id
    assert aws_env.proxy.count(action="AssumeRole") == 2


def test_sts_outage_keeps_serving_cached_credentials_and_backs_off(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    session = boto3.Session()
    get_item(session, aws_env)
    aws_env.proxy.inject(
        Fault.error("InternalFailure", 503, "down"), action="AssumeRole", times=None
    )
    session._session.set_default_client_config(
        botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})
    )

    fake_clock.advance(3600 - 5 * 60)  # early-refresh window of 1-hour credentials (15 min)
    for _ in range(50):
        assert "Item" in get_item(session, aws_env)
        fake_clock.advance(1)

    # One refresh attempt (with botocore's own retries), then a 300-600 s backoff.
    attempts = aws_env.proxy.count(action="AssumeRole") - 1
    assert 1 <= attempts <= 3


def test_soak_twenty_four_hours_with_five_percent_of_sts_calls_failing(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    rng = random.Random(20261128)
    aws_env.proxy.inject(
        Fault.server_error(500),
        action="AssumeRole",
        times=None,
        chance=lambda: rng.random() < 0.05,
    )
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    session = boto3.Session()
    dynamodb = session.client("dynamodb")
    failures = 0
    step = 120
    for _ in range(24 * 3600 // step):
        try:
            dynamodb.get_item(TableName=aws_env.world.table_name, Key=aws_env.world.secret_item_key)
        except Exception:
            failures += 1
        fake_clock.advance(step)

    attempts = aws_env.proxy.count(action="AssumeRole")
    faulted = sum(1 for call in aws_env.proxy.calls(action="AssumeRole") if call.fault)
    print(
        f"\n24 h soak: {attempts} AssumeRole attempts ({faulted} failed by injection), "
        f"{24 * 3600 // step} DynamoDB calls, {failures} failed"
    )
    assert failures == 0
    # 1-hour credentials refreshed in their 15-minute early window: about 32 a day.
    assert 24 <= attempts - faulted <= 40


def test_sts_failing_30s_before_expiry_is_asked_again_within_a_minute_of_expiry(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    session = boto3.Session()
    session._session.set_default_client_config(
        botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})
    )
    assume_provider.register(session, role_arn=aws_env.world.target_role_arn)
    get_item(session, aws_env)
    expiration = fake_clock.now + 3600  # moto issues 1-hour credentials in fake time
    cached_key = aws_env.proxy.calls(action="GetItem")[0].access_key_id
    aws_env.proxy.inject(
        Fault.error("InternalFailure", 503, "down"), action="AssumeRole", times=None
    )

    fake_clock.advance(3600 - 30)  # blocking window: this request waits for a refresh
    assert "Item" in get_item(session, aws_env)  # it fails; the cached credentials serve
    assert aws_env.proxy.count(action="AssumeRole") == 2
    aws_env.proxy.clear_faults()  # STS is back

    asked_at = None
    while fake_clock.now <= expiration + 60:  # a request every 10 s of fake time
        fake_clock.advance(10)
        assert "Item" in get_item(session, aws_env)
        if aws_env.proxy.count(action="AssumeRole") == 3:
            asked_at = fake_clock.now
            break
    assert asked_at is not None, "STS was not asked again within a minute of expiry"
    assert expiration <= asked_at <= expiration + 60
    last = aws_env.proxy.calls(action="GetItem")[-1]
    assert last.access_key_id != cached_key  # signed with the refreshed credentials
