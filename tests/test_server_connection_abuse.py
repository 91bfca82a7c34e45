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
import threading
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


def _get_with_token(port: int, token_file: Path) -> int:
    """The status of a GET /, asked again (as an SDK does) while the refresh is under way:
    each ask waits on the server's side, at most its max_wait, so nothing sleeps here."""
    for _ in range(40):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", "/", headers={"Authorization": token_file.read_text()})
            answer = connection.getresponse()
            status, body = answer.status, answer.read()
        finally:
            connection.close()
        if status != 503 or b"RefreshInProgress" not in body:
            break
    return status


def _flooded(aws_env: TestBed, env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    process, port, token_file, errors = _serve(aws_env, env, tmp_path, preexec_fn=_low_fd_limit)
    _wait_until_warm(port)
    flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(LIMIT + 20)]
    # The server accepts connections in the order they came and serves each in a task
    # started in that order: once the last one is answered, every earlier one has been
    # accepted (the server is at its cap, or, before the cap existed, out of descriptors:
    # then no answer comes, and the token holder below is not answered either).
    last = flood[-1]
    last.settimeout(30)  # failure-only bound
    last.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    try:
        last.recv(1)
    except OSError:
        pass
    try:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        client.request("GET", "/", headers={"Authorization": token_file.read_text()})
        status = client.getresponse().status
    except OSError as exc:
        status = repr(exc)
    for connection in flood:
        connection.close()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
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
    gate = threading.Event()
    aws_env.proxy.inject(Fault.hold(gate), action="AssumeRole")  # the warm-up, held at STS
    process, port, token_file, errors = _serve(aws_env, subprocess_env, tmp_path)
    try:
        # The default route's fetch is at STS: a request for "/" waits on it.
        assert aws_env.proxy.wait_for_count(1, action="AssumeRole")
        for path in ("/", "/healthz", "/profile/none"):
            client = socket.create_connection(("127.0.0.1", port), timeout=30)
            client.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: {token_file.read_text()}\r\n\r\n".encode()
            )
            if path != "/":  # answered at once: reset with the answer there, unread
                select.select([client], [], [], 30)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # RST, with the answer unread
    finally:
        gate.set()
    # This request shares the fetch the reset "/" waited on, after it: once it is answered,
    # the server has answered (written to) the reset one, or timed its wait out.
    answer = _get_with_token(port, token_file)
    assert answer == 200, answer
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    lines = [line for line in errors.read_text().splitlines() if line]
    assert "Traceback" not in "\n".join(lines)
    assert all(line.startswith("assume-provider: serve: ") for line in lines), lines
