"""Connections any local process can open without the token: a flood of idle ones up to the
open-file limit (here lowered to 128, so 150 sockets suffice; systemd's default soft limit is
1024), and connections reset before their answer. Neither may fill stderr (one line per
refresh or failure), and a client that holds the token is still answered during the flood:
at the connection cap the server closes the connection that has waited longest for a
request."""

from __future__ import annotations

import http.client
import json
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

from cli_support import TOOL
from testbed import TestBed
from testbed.proxy import Fault

LIMIT = 128


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def _serve(
    aws_env: TestBed, env: dict[str, str], tmp_path: Path, **popen: Any
) -> tuple[subprocess.Popen[bytes], int, Path, Path]:
    """``serve`` with its stderr in a file: (process, port, token file, stderr file)."""
    errors = tmp_path / "stderr"
    token_file = tmp_path / "t" / "token"
    command = [*TOOL, "serve", "--port", "0", "--token-file", str(token_file)]
    process = subprocess.Popen(
        [*command, "--role-arn", aws_env.world.target_role_arn],
        env=env,
        stdout=subprocess.PIPE,
        stderr=errors.open("w"),
        **popen,
    )
    assert process.stdout is not None
    data = b""
    while data.count(b"\n") < 2:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready
        data += os.read(process.stdout.fileno(), 4096)
    url = dict(line.split("=", 1) for line in data.decode().splitlines())[
        "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    ]
    return process, int(url.rstrip("/").rsplit(":", 1)[1]), token_file, errors


def _wait_until_warm(port: int) -> None:
    """Until /healthz (no token, no credential request) says the default route is served."""
    for _ in range(600):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz")
        routes = json.loads(connection.getresponse().read())["routes"]
        connection.close()
        if routes.get("/", {}).get("expires_in"):
            return
        time.sleep(0.05)
    raise AssertionError("the server never fetched credentials")


def _flooded(aws_env: TestBed, env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    process, port, token_file, errors = _serve(aws_env, env, tmp_path, preexec_fn=_low_fd_limit)
    _wait_until_warm(port)
    flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(LIMIT + 20)]
    # No signal tells when the server has accepted them all; 2 s leaves it time to reach its
    # cap (and to exhaust its descriptors, before the cap existed). A shorter wait only makes
    # the test weaker, never flaky.
    time.sleep(2.0)
    try:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        client.request("GET", "/", headers={"Authorization": token_file.read_text()})
        status = client.getresponse().status
    except OSError as exc:
        status = repr(exc)
    for connection in flood:
        connection.close()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    return status, errors.read_text()


def test_a_connection_flood_does_not_flood_stderr(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    _, err = _flooded(aws_env, subprocess_env, tmp_path)
    assert len(err) < 4096, f"{len(err)} bytes, {err.count('Traceback')} tracebacks: {err[:300]}"


def test_a_token_holder_is_answered_during_a_connection_flood(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    status, _ = _flooded(aws_env, subprocess_env, tmp_path)
    assert status == 200, status


def test_connections_reset_before_their_answer_write_nothing_to_stderr(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """A client that gives up (its timeout, a kill) resets the connection, token or not."""
    aws_env.proxy.inject(Fault.delay(0.5), action="AssumeRole", times=None)  # answers take time
    process, port, token_file, errors = _serve(aws_env, subprocess_env, tmp_path)
    for path in ("/", "/healthz", "/profile/none"):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {token_file.read_text()}\r\n\r\n".encode()
        )
        time.sleep(0.05)  # the request is being served
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST, with the answer unread
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    lines = [line for line in errors.read_text().splitlines() if line]
    assert "Traceback" not in "\n".join(lines)
    assert all(line.startswith("assume-provider: serve: ") for line in lines), lines
