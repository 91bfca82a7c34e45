"""What the server answers while STS fails, for each kind of failure and each state of its cache:
valid credentials are served whatever the error; expired ones never are; with nothing to
serve the 503 comes before botocore's container timeout and names the role and the AWS code,
and no answer carries a key ID."""

from __future__ import annotations

import datetime
import http.client
import json
import threading
from pathlib import Path
from typing import Any

import botocore.credentials
import pytest
from fake_time import FakeClock
from inprocess_server import expiry_of as _expiry
from inprocess_server import get_json as _get
from inprocess_server import serving_in_process
from testbed import TestBed
from testbed.proxy import Fault

from assume_provider.engine import events
from assume_provider.server.http import MAX_WAIT_SECONDS, CredentialHTTPServer


def test_valid_cached_credentials_are_served_while_sts_denies(
    server: CredentialHTTPServer,
    aws_env: TestBed,
    fake_clock: FakeClock,
) -> None:
    """AccessDenied (a trust policy edited, an SCP) is remembered by the engine for a few
    seconds and raised to its callers; the server still serves what is valid."""
    status, body = _get(server)
    assert status == 200
    denied = threading.Event()

    def on_refresh(event: events.RefreshEvent) -> None:
        if event.kind != events.REFRESHED and event.error_code == "AccessDenied":
            denied.set()

    # Added after the server's own listener (the fixture started the server): by the time
    # this one hears the denial, the server's route has heard it too.
    events.add_refresh_listener(on_refresh)
    try:
        aws_env.proxy.inject(Fault.error("AccessDenied", 403), action="AssumeRole", times=None)
        fake_clock.advance(_expiry(body) - fake_clock() - 5 * 60)  # 5 minutes left: valid
        answers = []
        for index in range(5):
            status, answer = _get(server)
            answers.append((status, answer.get("code"), answer.get("AccessKeyId")))
            if index == 0:  # the rest are asked once the background refresh was denied
                assert denied.wait(60)
    finally:
        events.remove_refresh_listener(on_refresh)
    assert aws_env.proxy.count(action="AssumeRole") >= 2  # the refresh was tried and denied
    assert [a[0] for a in answers] == [200] * 5, answers
    assert {a[2] for a in answers} == {body["AccessKeyId"]}


def test_expired_credentials_are_a_503_naming_the_failure_never_a_200(
    server: CredentialHTTPServer,
    aws_env: TestBed,
    fake_clock: FakeClock,
) -> None:
    status, body = _get(server)
    assert status == 200
    throttled = threading.Event()

    def on_refresh(event: events.RefreshEvent) -> None:
        if event.kind != events.REFRESHED and event.error_code == "Throttling":
            throttled.set()

    events.add_refresh_listener(on_refresh)  # after the server's: see the test above
    try:
        server.max_wait = MAX_WAIT_SECONDS  # what serve runs with
        aws_env.proxy.inject(Fault.throttle(), action="AssumeRole", times=None)
        fake_clock.advance(_expiry(body) - fake_clock() + 120)  # expired two minutes ago
        codes = []
        for _ in range(2):  # as an SDK retries: until the refresh in flight has failed
            status, answer = _get(server)
            assert status == 503, (status, answer.get("Expiration"), answer.get("AccessKeyId"))
            assert aws_env.world.target_role_arn in answer["message"]
            codes.append(answer["code"])
            if answer["code"] == "Throttling":
                break
            assert answer["code"] == "RefreshInProgress"
            assert throttled.wait(60)  # the retry comes once the refresh has failed
    finally:
        events.remove_refresh_listener(on_refresh)
    assert codes[-1] == "Throttling", codes


def test_a_503_names_the_failed_refresh_even_before_the_route_has_heard_of_it(
    aws_env: TestBed, fake_clock: FakeClock, fresh_provider_state: Any, tmp_path: Path
) -> None:
    """The engine hands a refresh's result to the request waiting for it before it tells the
    listeners (the route's among them) that the refresh failed. A request that gets expired
    credentials back must still name that failure, not say that none is known."""
    delivering, release = threading.Event(), threading.Event()

    def hold_failure_events(event: events.RefreshEvent) -> None:
        if event.kind != events.REFRESHED:
            delivering.set()
            release.wait(60)

    events.add_refresh_listener(hold_failure_events)  # before the server's: it runs first
    try:
        with serving_in_process(aws_env, fake_clock, tmp_path) as server:
            status, body = _get(server)
            assert status == 200
            aws_env.proxy.inject(Fault.throttle(), action="AssumeRole", times=None)
            fake_clock.advance(_expiry(body) - fake_clock() + 120)  # expired two minutes ago
            answers: list[tuple[int, Any]] = []
            asking = threading.Thread(target=lambda: answers.append(_get(server)))
            asking.start()
            assert delivering.wait(60)  # the refresh failed and its result is out
            # A request that does not wait for the failure's event answers meanwhile, without
            # it; one that waits cannot answer before the release, however long this takes.
            asking.join(2.0)
            release.set()
            asking.join(60)
            ((status, answer),) = answers
            assert status == 503
            assert answer["code"] == "Throttling", answer
            assert aws_env.world.target_role_arn in answer["message"]
    finally:
        release.set()
        events.remove_refresh_listener(hold_failure_events)


def test_botocore_sees_the_aws_error_after_expiry_not_a_runtime_error(
    server: CredentialHTTPServer,
    aws_env: TestBed,
    fake_clock: FakeClock,
) -> None:
    """A 200 with expired credentials makes botocore raise "the refreshed credentials are
    still expired", which names neither the role nor STS's error."""
    status, body = _get(server)
    assert status == 200
    server.max_wait = MAX_WAIT_SECONDS  # what serve runs with: below botocore's 2 s timeout
    aws_env.proxy.inject(Fault.throttle(), action="AssumeRole", times=None)
    fake_clock.advance(_expiry(body) - fake_clock() + 120)
    environ = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": server.token_file,  # type: ignore[attr-defined]
    }
    with pytest.raises(Exception) as raised:
        credentials = botocore.credentials.ContainerProvider(environ=environ).load()
        credentials._time_fetcher = lambda: datetime.datetime.fromtimestamp(  # type: ignore[attr-defined]
            fake_clock(), datetime.timezone.utc
        )
        credentials.get_frozen_credentials()
    assert "Throttling" in str(raised.value) or "RefreshInProgress" in str(raised.value)
    assert aws_env.world.target_role_arn in str(raised.value)


def test_with_nothing_cached_a_request_hears_why_while_the_refresh_goes_on(
    server: CredentialHTTPServer,
    aws_env: TestBed,
) -> None:
    """A fleet starting while STS is slow or throttling (the server's STS client retries with
    backoff): one refresh can outlast the 2 s botocore's container fetcher waits. A request
    waits at most ``max_wait`` and gets a 503 saying why; the refresh goes on, and the
    requests that follow share it instead of starting others."""
    server.max_wait = MAX_WAIT_SECONDS  # what serve runs with
    gate = threading.Event()
    aws_env.proxy.inject(Fault.hold(gate), action="AssumeRole")  # slow until both answered
    answers = []
    try:
        for _ in range(2):  # a client, then its retry (30 s: a failure-only bound)
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            connection.request("GET", "/", headers={"Authorization": server.token.decode()})
            answer = connection.getresponse()
            answers.append((answer.status, json.loads(answer.read())))
            connection.close()
        for status, body in answers:
            assert status == 503 and body["code"] == "RefreshInProgress", body
            assert aws_env.world.target_role_arn in body["message"]
        # Under load the refresh may not have reached STS yet: wait for it (an event), then
        # check that the retry joined it instead of starting another.
        assert aws_env.proxy.wait_for_count(1, action="AssumeRole")
        assert aws_env.proxy.count(action="AssumeRole") == 1  # shared, not started again
    finally:
        gate.set()  # STS answers now
    server.max_wait = 60.0
    status, body = _get(server)  # waits for the same refresh to end
    assert status == 200 and aws_env.proxy.count(action="AssumeRole") == 1


def test_a_503_body_names_no_key_id(
    server: CredentialHTTPServer,
    aws_env: TestBed,
) -> None:
    """STS's AccessDenied text names the caller's key (the instance profile's, for hop 1)."""
    aws_env.proxy.inject(Fault.error("AccessDenied", 403), action="AssumeRole", times=None)
    status, body = _get(server)
    assert status == 503
    assert body["code"] == "AccessDenied" and aws_env.world.target_role_arn in body["message"]
    instance_key = aws_env.imds.credentials.access_key_id
    assert instance_key not in json.dumps(body), body["message"]
