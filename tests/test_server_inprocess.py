"""The server in this process, so the engine's clock and moto's can be moved together; its
clients are botocore's real container provider and plain HTTP requests."""

from __future__ import annotations

import datetime
import http.client
import json
import socket
import threading
from pathlib import Path
from typing import Any

import botocore.credentials
import botocore.session
import pytest
from fake_time import FakeClock
from inprocess_server import expiry_of as _expiry
from inprocess_server import get_json as _get
from testbed import TestBed
from testbed.proxy import Fault

import assume_provider
from assume_provider.engine import events
from assume_provider.server.http import CredentialHTTPServer


def test_botocore_container_provider_refreshes_through_the_server(
    server: CredentialHTTPServer, aws_env: TestBed, fake_clock: FakeClock
) -> None:
    environ = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": server.token_file,
    }  # type: ignore[attr-defined]
    credentials = botocore.credentials.ContainerProvider(environ=environ).load()
    # botocore reads the time through its own fetcher; let it see the moved clock too.
    credentials._time_fetcher = lambda: datetime.datetime.fromtimestamp(
        fake_clock(), datetime.timezone.utc
    )
    first = credentials.get_frozen_credentials().access_key
    status, body = _get(server)
    assert status == 200 and body["AccessKeyId"] == first
    fake_clock.advance(_expiry(body) - fake_clock() - 30)  # 30 s left: everyone must refresh
    second = credentials.get_frozen_credentials().access_key
    assert second != first
    assert aws_env.proxy.count(action="AssumeRole") == 2
    assert any("refreshed" in line for line in server.lines)  # type: ignore[attr-defined]


def test_sts_failing_with_credentials_cached_serves_the_cached_ones(
    server: CredentialHTTPServer, aws_env: TestBed, fake_clock: FakeClock
) -> None:
    seen: list[events.RefreshEvent] = []
    failed = threading.Event()

    def listen(event: events.RefreshEvent) -> None:
        seen.append(event)
        if event.kind != events.REFRESHED:
            failed.set()

    # Added after the server's own listener (the fixture started the server), so by the
    # time this one hears the failed attempt, /healthz has heard it too.
    assume_provider.add_refresh_listener(listen)
    try:
        status, body = _get(server)
        assert status == 200
        aws_env.proxy.inject(Fault.throttle(), action="AssumeRole", times=None)
        fake_clock.advance(_expiry(body) - fake_clock() - 30)
        status, again = _get(server)  # waits at most max_wait for the failing refresh
        assert status == 200 and again["AccessKeyId"] == body["AccessKeyId"]
        assert failed.wait(60)  # the refresh retries throttling before it gives up
        status, health = _get(server, "/healthz")
        assert health["status"] == "degraded"
        assert health["routes"]["/"]["last_error"] == "Throttling"
    finally:
        assume_provider.remove_refresh_listener(listen)
    kinds = [e.kind for e in seen]
    assert kinds[0] == "refreshed" and "served_stale" in kinds
    stale = next(e for e in seen if e.kind == "served_stale")
    assert stale.error_code == "Throttling" and stale.access_key_id == body["AccessKeyId"]
    text = repr(seen) + json.dumps(health) + "\n".join(server.lines)  # type: ignore[attr-defined]
    for secret in (body["SecretAccessKey"], body["Token"], server.token.decode()):
        assert secret not in text


def test_requests_to_a_valid_route_are_answered_while_another_waits_on_sts(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path
) -> None:
    aws_config_file.write_text(
        f"[profile slow]\nassume_provider_role_arn = {aws_env.world.hop_role_arn}\n"
    )
    assert _get(server)[0] == 200
    gate = threading.Event()
    aws_env.proxy.inject(Fault.hold(gate), action="AssumeRole")
    slow: list[int] = []
    waiter = threading.Thread(target=lambda: slow.append(_get(server, "/profile/slow")[0]))
    waiter.start()
    try:
        # The slow route's fetch has reached STS and is held there until the gate opens.
        assert aws_env.proxy.wait_for_count(2, action="AssumeRole")
        answered = []
        workers = [
            threading.Thread(target=lambda: answered.extend(_get(server)[0] for _ in range(10)))
            for _ in range(8)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
            assert not worker.is_alive(), "a request to the valid route hung"
        assert answered == [200] * 80
        assert slow == []  # all 80 were answered while the other route still waited on STS
    finally:
        gate.set()
    waiter.join(60)
    assert not waiter.is_alive()
    assert slow == [200]


def test_connections_that_send_nothing_are_closed_after_the_idle_timeout(
    server: CredentialHTTPServer,
) -> None:
    """Each connection holds a thread: one opened and left silent, one that stops halfway
    through its request line, and a kept-alive one after its answer must all be let go."""
    server.idle_timeout = 0.5
    address = ("127.0.0.1", server.port)
    silent = socket.create_connection(address, timeout=10)
    halfway = socket.create_connection(address, timeout=10)
    halfway.sendall(b"GET / HTTP/1.1\r\nHost: ")
    kept = http.client.HTTPConnection(*address, timeout=10)
    kept.request("GET", "/", headers={"Authorization": server.token.decode()})
    answer = kept.getresponse()
    assert answer.status == 200 and answer.getheader("Connection") != "close"
    answer.read()
    assert kept.sock is not None  # HTTP/1.1: the connection stays open for another request
    for connection in (silent, halfway, kept.sock):
        assert connection.recv(1) == b""  # closed by the server, well before the 10 s
    assert _get(server)[0] == 200


def test_listener_events_carry_the_signing_key_and_a_raising_listener_changes_nothing(
    aws_env: TestBed, fresh_provider_state: Any
) -> None:
    import boto3

    seen: list[events.RefreshEvent] = []

    def broken(event: events.RefreshEvent) -> None:
        raise RuntimeError("listener bug")

    assume_provider.add_refresh_listener(broken)
    assume_provider.add_refresh_listener(seen.append)
    try:
        session = boto3.Session()
        assume_provider.register(session, role_arn=aws_env.world.target_role_arn)
        sts = session.client("sts")
        sts.get_caller_identity()
        signed_with = session.get_credentials().get_frozen_credentials()
        aws_env.proxy.inject(Fault.error("AccessDenied", 403), action="AssumeRole")
        failing = boto3.Session()
        assume_provider.register(failing, role_arn=aws_env.world.hop_role_arn)
        with pytest.raises(Exception, match="AccessDenied"):
            failing.client("sts").get_caller_identity()
    finally:
        assume_provider.remove_refresh_listener(broken)
        assume_provider.remove_refresh_listener(seen.append)
    refreshed, failed = seen
    assert refreshed.kind == "refreshed"
    assert refreshed.access_key_id == signed_with.access_key
    assert refreshed.role_arns == (aws_env.world.target_role_arn,)
    assert refreshed.expiration is not None and refreshed.elapsed_seconds >= 0
    assert failed.kind == "failed" and failed.error_code == "AccessDenied"
    assert failed.role_arns == (aws_env.world.hop_role_arn,)
    for event in seen:
        assert signed_with.secret_key not in repr(event) + repr(event.fields())
        assert signed_with.token not in repr(event) + repr(event.fields())


def test_refresh_events_are_log_records_with_the_fields(
    aws_env: TestBed, fresh_provider_state: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import boto3

    caplog.set_level("INFO", logger="assume_provider.refresh")
    session = boto3.Session()
    assume_provider.register(session, role_arn=aws_env.world.target_role_arn)
    session.client("sts").get_caller_identity()
    (record,) = [r for r in caplog.records if r.name == "assume_provider.refresh"]
    assert record.kind == "refreshed"  # type: ignore[attr-defined]
    assert record.role_arns == (aws_env.world.target_role_arn,)  # type: ignore[attr-defined]
    assert record.error_code is None  # type: ignore[attr-defined]
    frozen = session.get_credentials().get_frozen_credentials()
    assert record.access_key_id == frozen.access_key  # type: ignore[attr-defined]
    assert frozen.secret_key not in record.getMessage()
