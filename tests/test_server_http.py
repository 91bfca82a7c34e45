"""The server's HTTP layer with raw sockets: what it does with requests no SDK sends (malformed,
oversized, with bodies, pipelined, other methods and versions), and that none of them costs a
credential or breaks the next client."""

from __future__ import annotations

import concurrent.futures
import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from inprocess_server import get_json as _get
from testbed import TestBed

from assume_provider.server.http import CredentialHTTPServer
from assume_provider.server.protocol import MAX_HEAD_BYTES


def _exchange(server: CredentialHTTPServer, raw: bytes) -> bytes:
    """Send ``raw``, read until the server closes the connection (or 10 s pass)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(raw)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def _answers(received: bytes) -> list[tuple[int, dict[str, str], Any]]:
    """Every (status, headers, JSON body) in ``received``, in order."""
    answers = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers["content-length"])
        answers.append((int(status_line.split()[1]), headers, json.loads(rest[:length])))
        received = rest[length:]
    return answers


def _request(server: CredentialHTTPServer, extra: str = "", line: str = "GET / HTTP/1.1") -> str:
    return (
        f"{line}\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: {server.token.decode()}\r\n{extra}\r\n"
    )


def test_malformed_requests_get_a_json_error_and_the_connection_is_closed(
    server: CredentialHTTPServer,
    aws_env: TestBed,
) -> None:
    cases = {
        b"GARBAGE\r\n\r\n": 400,
        b"GET / HTTP/1.1 extra\r\n\r\n": 400,
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n": 505,
        b"GET / HTTP/1.1\r\nno colon on this line\r\n\r\n": 400,
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n": 431,
        b"GET / HTTP/1.1\r\nX: " + b"y" * MAX_HEAD_BYTES + b"\r\n\r\n": 431,
    }
    for raw, expected in cases.items():
        ((status, headers, body),) = _answers(_exchange(server, raw))
        assert status == expected, raw[:60]
        assert headers["connection"] == "close"
        assert set(body) == {"code", "message"}
    assert aws_env.proxy.count(action="AssumeRole") == 0  # none of them reached a route
    assert _get(server)[0] == 200  # and the server still serves


def test_pipelined_requests_are_answered_in_order_on_one_connection(
    server: CredentialHTTPServer,
) -> None:
    raw = (
        _request(server)
        + _request(server, line="GET /healthz HTTP/1.1")
        + _request(server, extra="Connection: close\r\n")
    )
    answers = _answers(_exchange(server, raw.encode()))
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert "AccessKeyId" in answers[0][2] and "status" in answers[1][2]
    assert "connection" not in answers[0][1]  # kept alive until the client asked to close
    assert answers[2][1]["connection"] == "close"


def test_a_request_with_a_body_is_answered_and_its_body_never_read_as_a_request(
    server: CredentialHTTPServer,
) -> None:
    smuggled = _request(server, line="GET /profile/other HTTP/1.1")
    raw = _request(server, extra=f"Content-Length: {len(smuggled)}\r\n") + smuggled
    ((status, headers, _),) = _answers(_exchange(server, raw.encode()))
    assert status == 200 and headers["connection"] == "close"


def test_other_methods_and_http_1_0(server: CredentialHTTPServer) -> None:
    for method in ("POST", "PUT", "DELETE", "HEAD"):
        raw = _request(server, line=f"{method} / HTTP/1.1", extra="Connection: close\r\n")
        ((status, headers, body),) = _answers(_exchange(server, raw.encode()))
        assert status == 405 and headers["allow"] == "GET", method
        assert body["code"] == "MethodNotAllowed"
    ((status, headers, body),) = _answers(
        _exchange(server, _request(server, line="GET / HTTP/1.0").encode())
    )
    assert status == 200 and headers["connection"] == "close" and "Token" in body
    assert headers["cache-control"] == "no-store"


def test_a_second_content_length_or_any_transfer_encoding_closes_the_connection(
    server: CredentialHTTPServer,
) -> None:
    """What follows such a head may be a body: it must never be read as the next request."""
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    smuggled = f"GET /smuggled HTTP/1.1\r\n{host}\r\n"
    heads = [
        f"Content-Length: 0\r\nContent-Length: {len(smuggled)}\r\n",
        "Transfer-Encoding:\r\n",
        "Transfer-Encoding: chunked\r\n",
    ]
    for extra in heads:
        raw = f"GET /healthz HTTP/1.1\r\n{host}{extra}\r\n{smuggled}"
        answers = _answers(_exchange(server, raw.encode()))
        assert [status for status, _, _ in answers] == [200], extra
        assert answers[0][1]["connection"] == "close"


_PIPELINER = """
import socket, sys, threading
port = int(sys.argv[1])
burst = b"GET / HTTP/1.1\\r\\n\\r\\n" * 4000  # no Host, no token: 403s
s = socket.create_connection(("127.0.0.1", port))
answered, stop = threading.Event(), threading.Event()
def drain():
    try:
        while s.recv(1 << 20):
            answered.set()
    except OSError:
        pass
def until_stdin_closes():
    sys.stdin.read()
    stop.set()
threading.Thread(target=drain, daemon=True).start()
threading.Thread(target=until_stdin_closes, daemon=True).start()
s.sendall(burst)
answered.wait(60)
print("flooding", flush=True)  # the server is answering the pipeline now
while not stop.is_set():  # until the test has asked all it wanted
    s.sendall(burst)
s.close()
"""


def _healthz_status(server: CredentialHTTPServer) -> bytes:
    """The status line of a /healthz (or b""); 30 s is a failure-only bound: the flood goes
    on until every one has been asked, so one the flood held up would never be answered."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
        client.sendall(
            f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        try:
            return client.recv(100).split(b"\r\n")[0]
        except OSError:
            return b""


def test_a_pipelining_client_without_the_token_does_not_hold_up_the_others(
    server: CredentialHTTPServer,
) -> None:
    """Reading a request already buffered does not yield to the loop (on Python 3.12+
    wait_for() does not either): without a turn per request, one connection pipelining
    thousands held every other client for as long as it went on."""
    attacker = subprocess.Popen(
        [sys.executable, "-c", _PIPELINER, str(server.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert attacker.stdin is not None and attacker.stdout is not None
    try:
        ready, _, _ = select.select([attacker.stdout], [], [], 60)
        assert ready and attacker.stdout.readline() == b"flooding\n"
        statuses = [_healthz_status(server) for _ in range(40)]
        assert attacker.poll() is None  # the flood went on all along
    finally:
        attacker.stdin.close()
        try:
            attacker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            attacker.kill()
            attacker.wait()
    assert statuses == [b"HTTP/1.1 200 OK"] * 40


def _on_the_loop(server: CredentialHTTPServer, check: Callable[[], bool]) -> bool:
    """``check()`` run on the server's event loop, where its connection state lives."""
    result: concurrent.futures.Future[bool] = concurrent.futures.Future()
    server._loop.call_soon_threadsafe(lambda: result.set_result(check()))
    return result.result(30)


def _wait_for_server(server: CredentialHTTPServer, check: Callable[[], bool]) -> None:
    """Until ``check()`` holds on the server's loop; 60 s is a failure-only bound."""
    deadline = time.monotonic() + 60
    while not _on_the_loop(server, check):
        assert time.monotonic() < deadline, "the server never got there"
        threading.Event().wait(0.01)  # between looks at the server's state, not instead


def test_connections_that_never_read_their_answers_can_be_closed_to_make_room(
    server: CredentialHTTPServer,
) -> None:
    server.max_connections = 4
    holders = []
    try:
        burst = b"GET / HTTP/1.1\r\n\r\n" * 8000  # 403s (no Host), never read
        for _ in range(4):
            holder = socket.socket()
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # a tiny window
            holder.connect(("127.0.0.1", server.port))
            holder.setblocking(False)
            sent = 0
            while sent < len(burst):
                try:
                    sent += holder.send(burst[sent:])
                except BlockingIOError:
                    # No room for a second: the server has stopped reading, stuck writing
                    # answers nobody reads (or, sent less, it answers what came and waits
                    # for more: a connection that can be closed to make room as well).
                    if not select.select([], [holder], [], 1)[1]:
                        break
            holders.append(holder)

        def all_wait_on_their_clients() -> bool:
            connections = list(server._connections.values())
            return len(connections) == 4 and all(c.waiting_since is not None for c in connections)

        _wait_for_server(server, all_wait_on_their_clients)
        assert _healthz_status(server) == b"HTTP/1.1 200 OK"
    finally:
        for holder in holders:
            holder.close()


def test_shutdown_at_any_moment_after_start_stops_the_loop_cleanly(
    server: CredentialHTTPServer,
) -> None:
    """serve calls shutdown() on SIGTERM, which may come before the loop has even started."""
    failures: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: failures.append(f"{args.exc_type.__name__}")
    try:
        still_running = 0
        for _ in range(50):
            other = CredentialHTTPServer("127.0.0.1", 0, "t" * 43, server.routes)
            thread = threading.Thread(target=other.serve_forever, daemon=True)
            thread.start()
            other.shutdown()
            other.server_close()
            thread.join(30)  # failure-only bound
            still_running += thread.is_alive()
    finally:
        threading.excepthook = previous
    assert failures == [] and still_running == 0
