"""Thousands of other established TCP connections on loopback, held open while a benchmark
measures: a host's socket table as a busy shared host has it, for code that looks a
connection up in that table (the server's caller check).

Two child processes hold them: one listens and accepts, the other connects. Each end of a
connection is a file descriptor, so no single process reaches the open-file limit that one
holding both ends of 10,000 connections would (20,000 here); each raises its soft limit to
the hard one. Every connection stays idle: no byte is sent. Both children exit when their
standard input closes (when the context manager leaves, or the parent dies).

    with extra_connections(10_000) as count:
        ...  # measure; `count` connections are open
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_PRELUDE = """\
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
count = int(sys.argv[1])
"""

_LISTENER = (
    _PRELUDE
    + """\
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(4096)
print(server.getsockname()[1], flush=True)
held = [server.accept()[0] for _ in range(count)]
print(len(held), flush=True)
sys.stdin.read()  # hold them until the parent closes our stdin
"""
)

_CONNECTOR = (
    _PRELUDE
    + """\
port = int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
print(len(held), flush=True)
sys.stdin.read()
"""
)


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"a connection holder exited early ({process.wait()})")
    return line.strip()


def established_on_loopback() -> int:
    """Established IPv4 TCP sockets in this network namespace (both ends of a loopback
    connection count), as the kernel's socket table lists them."""
    with open("/proc/net/tcp") as table:
        next(table)
        return sum(1 for line in table if line.split()[3] == "01")


@contextmanager
def extra_connections(count: int) -> Iterator[int]:
    """``count`` established, idle loopback connections, open for the block's duration."""
    if count <= 0:
        yield 0
        return
    listener = _spawn(_LISTENER, str(count))
    connector = None
    try:
        port = _line(listener)
        connector = _spawn(_CONNECTOR, str(count), port)
        connected, accepted = int(_line(connector)), int(_line(listener))
        if connected != count or accepted != count:
            raise SystemExit(f"opened {connected}/{accepted} of {count} connections")
        yield count
    finally:
        for process in (connector, listener):
            if process is not None:
                assert process.stdin is not None
                process.stdin.close()
                process.wait(timeout=60)
