"""systemd's protocols, spoken by ``serve`` (server/systemd.py): a socket handed over on
descriptor 3 is served on (and one that is not a loopback TCP listener refused, exit 2), and
``READY=1``, ``WATCHDOG=1`` and ``STOPPING=1`` reach a real AF_UNIX datagram socket, READY
only once the first fetch has finished. And the unit pair in docs/server.md passes
``systemd-analyze verify``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from serve_process import NotifyListener, ServeProcess, get, loopback_listener
from testbed import TestBed
from testbed.proxy import Fault

from assume_provider.server.systemd import Notifier, inherited_socket

ROOT = Path(__file__).resolve().parent.parent
ERROR = "assume-provider: error: "


def _args(bed: TestBed, token_file: Path) -> list[str]:
    return ["--role-arn", bed.world.target_role_arn, "--port", "0", "--token-file", str(token_file)]


def _private_token(path: Path, token: str) -> None:
    path.parent.mkdir(mode=0o700)
    path.write_text(token)
    path.chmod(0o600)


def test_serves_on_the_socket_it_is_handed_and_keeps_the_existing_token(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "t" / "token"
    _private_token(token_file, "k" * 43)
    # READY=1 comes after the first fetch: asking only then, the answer cannot be a 503 for
    # a first AssumeRole still under way (which a loaded machine can make last seconds).
    notify = NotifyListener(tmp_path)
    env = {**subprocess_env, "NOTIFY_SOCKET": notify.address}
    with loopback_listener() as listener:
        port = listener.getsockname()[1]
        serve = ServeProcess(env, _args(aws_env, token_file), listen_socket=listener)
        try:
            variables = serve.variables()
            assert variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == f"http://127.0.0.1:{port}/"
            assert notify.next() == "READY=1"
            status, body = get(variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"], "k" * 43)
            assert status == 200, body
            serve.process.send_signal(signal.SIGTERM)
            assert serve.finish() == 0
        finally:
            serve.kill()
            notify.close()
    assert token_file.read_text() == "k" * 43  # kept: the port was never free


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _not_listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _unix(folder: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(folder / "unix-listener"))
    sock.listen(1)
    return sock


@pytest.mark.parametrize("kind", ["udp", "not-listening", "unix", "two-sockets"])
def test_a_socket_that_is_not_one_loopback_tcp_listener_is_exit_2(
    kind: str, aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    makers = {
        "udp": _udp,
        "not-listening": _not_listening,
        "unix": lambda: _unix(tmp_path),
        "two-sockets": loopback_listener,
    }
    token_file = tmp_path / "t" / "token"
    with makers[kind]() as sock:
        listen_fds = "2" if kind == "two-sockets" else "1"
        serve = ServeProcess(
            subprocess_env, _args(aws_env, token_file), listen_socket=sock, listen_fds=listen_fds
        )
        code = serve.finish()
    assert code == 2, serve.stderr
    assert serve.stdout == []
    assert len(serve.stderr) == 1 and serve.stderr[0].startswith(ERROR + "socket activation")
    assert not token_file.parent.exists()  # refused before anything was written
    assert aws_env.proxy.count() == 0


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_after_the_first_fetch_watchdog_while_serving_stopping_at_exit(
    abstract: bool, aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """READY=1 waits for the first fetch: while its AssumeRole is held at the proxy, only
    watchdog pings arrive (three of them, counted, not timed); once it is let go, READY=1."""
    listener = NotifyListener(tmp_path, abstract=abstract)
    gate = threading.Event()
    aws_env.proxy.inject(Fault.hold(gate, limit=300), action="AssumeRole")
    env = {**subprocess_env, "NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "100000"}
    serve = ServeProcess(env, _args(aws_env, tmp_path / "t" / "token"))
    try:
        serve.variables()
        assert aws_env.proxy.wait_for_count(1, action="AssumeRole")
        before_ready = [listener.next() for _ in range(3)]
        assert before_ready == ["WATCHDOG=1"] * 3  # the fetch is held: not ready yet
        gate.set()
        after = listener.next()
        while after == "WATCHDOG=1":
            after = listener.next()
        assert after == "READY=1"
        assert [listener.next() for _ in range(3)] == ["WATCHDOG=1"] * 3  # the loop answers
        serve.process.send_signal(signal.SIGTERM)
        last = listener.next()
        while last == "WATCHDOG=1":
            last = listener.next()
        assert last == "STOPPING=1"
        assert serve.finish() == 0
        listener.socket.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.socket.recv(4096)  # nothing after STOPPING=1: no ping, no second one
    finally:
        gate.set()
        serve.kill()
        listener.close()


def test_ready_after_a_first_fetch_that_failed(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    listener = NotifyListener(tmp_path)
    aws_env.proxy.inject(Fault.error("AccessDenied", 403), action="AssumeRole", times=None)
    env = {**subprocess_env, "NOTIFY_SOCKET": listener.address}
    serve = ServeProcess(env, _args(aws_env, tmp_path / "t" / "token"))
    try:
        serve.variables()
        assert listener.next() == "READY=1"  # no WATCHDOG_USEC: no pings
        assert aws_env.proxy.count(action="AssumeRole") >= 1
        serve.process.send_signal(signal.SIGTERM)
        assert listener.next() == "STOPPING=1"
        assert serve.finish() == 0
    finally:
        serve.kill()
        listener.close()


def test_the_variables_are_taken_out_of_the_environment_children_inherit() -> None:
    environ = {
        "LISTEN_PID": "1",  # another process's socket: not ours to take
        "LISTEN_FDS": "1",
        "LISTEN_FDNAMES": "web",
        "NOTIFY_SOCKET": "@some-name",
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": str(os.getpid()),
        "PATH": "/usr/bin",
    }
    assert inherited_socket(environ) is None
    notifier = Notifier.from_environment(environ)
    assert environ == {"PATH": "/usr/bin"}
    assert notifier.address == "@some-name"
    assert notifier.watchdog_interval == 15.0


# -- the unit pair in docs/server.md ---------------------------------------------------------


def _units_in_docs() -> dict[str, str]:
    """Each ```ini block of docs/server.md's "## systemd" that starts with a file comment,
    by file name: the doc is the one copy of the units."""
    text = (ROOT / "docs" / "server.md").read_text()
    section = text.split("\n## systemd\n", 1)[1].split("\n## ", 1)[0]
    units = {}
    for block in re.findall(r"```ini\n(.*?)```", section, re.S):
        first = block.splitlines()[0]
        match = re.fullmatch(r"# /etc/systemd/system/(\S+\.(?:socket|service))", first)
        if match:
            units[match.group(1)] = block
    return units


def test_the_documented_socket_and_service_units_pass_systemd_analyze_verify(
    tmp_path: Path,
) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    units = _units_in_docs()
    assert sorted(units) == ["assume-provider.service", "assume-provider.socket"]
    service = units["assume-provider.service"]
    for needed in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "User=", "ExecStart="):
        assert needed in service, needed
    assert "ListenStream=127.0.0.1:9911" in units["assume-provider.socket"]
    # verify checks that ExecStart's program exists: the documented path, made to exist here.
    program = re.search(r"^ExecStart=(\S+)", service, re.M)
    assert program is not None
    executable = tmp_path / "bin" / "assume-provider"
    executable.parent.mkdir()
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    for name, text in units.items():
        (tmp_path / name).write_text(text.replace(program.group(1), str(executable)))
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in sorted(units))],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    assert done.returncode == 0, done.stderr
    mine = [line for line in done.stderr.splitlines() if "assume-provider" in line]
    assert mine == [], mine  # no warning about our own units
