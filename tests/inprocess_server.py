"""The host credential server in this process (fixture ``server``, registered in conftest),
and plain HTTP requests to it: for tests that move the engine's clock with moto's."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from fake_time import FakeClock
from testbed import TestBed

from assume_provider.config.inputs import SettingInputs
from assume_provider.config.settings import resolve_settings
from assume_provider.server.http import CredentialHTTPServer
from assume_provider.server.route import Route
from assume_provider.server.routes import RouteTable
from assume_provider.server.token import load_or_create_token


@pytest.fixture
def server(
    aws_env: TestBed, fake_clock: FakeClock, fresh_provider_state: Any, tmp_path: Path
) -> Iterator[CredentialHTTPServer]:
    with serving_in_process(aws_env, fake_clock, tmp_path) as http:
        yield http


@contextlib.contextmanager
def serving_in_process(
    aws_env: TestBed, fake_clock: FakeClock, tmp_path: Path
) -> Iterator[CredentialHTTPServer]:
    """The ``server`` fixture's server, for a test that must set something up before it."""
    inputs = SettingInputs.from_environment({"role_arn": aws_env.world.target_role_arn}, os.environ)
    lines: list[str] = []
    routes = RouteTable(
        Route("/", resolve_settings(inputs), botocore.session.Session()),
        environ=os.environ,
        clock=fake_clock,
        log=lines.append,
    )
    token_file = tmp_path / "token"
    # Tests wait for a cold route's refresh whatever the load on the machine; the bounded
    # wait of a real server (MAX_WAIT_SECONDS) is set where a test is about it.
    token = load_or_create_token(str(token_file))
    http = CredentialHTTPServer("127.0.0.1", 0, token, routes, max_wait=60.0)
    http.lines = lines  # type: ignore[attr-defined]
    http.token_file = str(token_file)  # type: ignore[attr-defined]
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield http
    finally:
        http.shutdown()
        http.server_close()
        routes.close()


def get_json(server: CredentialHTTPServer, path: str = "/") -> tuple[int, Any]:
    request = urllib.request.Request(server.url.rstrip("/") + path)
    request.add_header("Authorization", server.token.decode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def expiry_of(body: Any) -> float:
    return (
        datetime.datetime.strptime(body["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
        .replace(tzinfo=datetime.timezone.utc)
        .timestamp()
    )
