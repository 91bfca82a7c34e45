"""Restarts of ``serve``: the squatting window closed, the token file never half-written, and
SIGTERM in any phase an exit 0.

- A squatter: another local user (``nobody``, through setpriv; no user is created) takes the
  port while the server is down and collects the token from a real client's request; the
  restarted server refuses it (401), as every start that binds its own port writes a new one.
- Under a socket the supervisor holds (a launcher that binds once and starts serve twice, as
  systemd does), the token is kept and a client that keeps asking across the restart is
  never refused: its connections wait in the kernel's queue.
- Two servers started together on a fresh token path, many rounds: both start, every read of
  the file sees a whole token (or no file yet), and both accept the file's final token.
- SIGTERM while starting, right after the variables, during the first fetch, while serving
  requests (twice, too): exit 0 within 5 s, in a loop of runs; each phase picked by an event.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any, Optional

import pytest
from serve_process import ServeProcess, get, loopback_listener
from server_support import client_env, empty_config
from testbed import TestBed
from testbed.proxy import Fault

TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
ROUNDS = int(os.environ.get("SERVER_RESTART_TEST_ROUNDS", "10"))
RUNS = int(os.environ.get("SERVER_RESTART_TEST_RUNS", "3"))
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
# Listens on the port as the user it runs as; prints its user ID, then the Authorization
# header of the first request it receives, and closes (the client sees a failure).
SQUATTER = """
import os, socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(8)
print("listening as", os.getuid(), flush=True)
connection, _ = listener.accept()
head = b""
while b"\\r\\n\\r\\n" not in head:
    chunk = connection.recv(4096)
    if not chunk:
        break
    head += chunk
for line in head.split(b"\\r\\n"):
    if line.lower().startswith(b"authorization:"):
        print(line.split(b":", 1)[1].strip().decode(), flush=True)
connection.close()
"""
STS_CALL = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"


def _args(bed: TestBed, token_file: Path, port: int = 0) -> list[str]:
    return [
        "--role-arn",
        bed.world.target_role_arn,
        "--port",
        str(port),
        "--token-file",
        str(token_file),
    ]


def _stop(serve: ServeProcess) -> Optional[int]:
    serve.process.send_signal(signal.SIGTERM)
    return serve.finish()


def _client(base: dict[str, str], variables: dict[str, str], tmp: Path) -> dict[str, str]:
    env = client_env(base, types.SimpleNamespace(variables=variables))  # type: ignore[arg-type]
    env.update(empty_config(tmp))
    return env


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"
)
def test_a_squatters_token_is_refused_once_the_server_is_back(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "t" / "token"
    first = ServeProcess(subprocess_env, _args(aws_env, token_file))
    try:
        variables = first.variables()
        assert _stop(first) == 0
    finally:
        first.kill()
    port = int(variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"].rsplit(":", 1)[1].strip("/"))
    client = _client(subprocess_env, variables, tmp_path)

    # The server is down: user nobody takes the port, and a real client hands it the token.
    squatter = subprocess.Popen(
        [*NOBODY, "/usr/bin/python3", "-c", SQUATTER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert squatter.stdout is not None
        assert squatter.stdout.readline().split() == ["listening", "as", "65534"]
        victim = subprocess.run(
            [sys.executable, "-c", STS_CALL],
            env=client,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert victim.returncode != 0  # the squatter answered nothing useful
        captured = squatter.stdout.readline().strip()
        assert squatter.wait(timeout=60) == 0
    finally:
        if squatter.poll() is None:
            squatter.kill()
        squatter.communicate(timeout=10)
    assert TOKEN.fullmatch(captured), "the squatter collected no token"

    second = ServeProcess(subprocess_env, _args(aws_env, token_file, port))
    try:
        url = second.variables()["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        assert token_file.read_text() != captured  # a new token at this start
        status, _ = get(url, captured, "/no-such-route")
        assert status == 401
        status, _ = get(url, token_file.read_text(), "/no-such-route")
        assert status == 404  # the file's token is accepted: past the token check
        done = subprocess.run(
            [sys.executable, "-c", STS_CALL],
            env=client,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert _stop(second) == 0
    finally:
        second.kill()


class KeepAsking:
    """A client that asks ``/`` again and again on new connections, re-reading the token
    file each time (as botocore does), and records every outcome."""

    def __init__(self, url: str, token_file: Path) -> None:
        self.url, self.token_file = url, token_file
        self.outcomes: list[Any] = []
        self.started = 0
        self.changed = threading.Condition()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            with self.changed:
                self.started += 1
                self.changed.notify_all()
            try:
                status, body = get(self.url, self.token_file.read_text(), "/", timeout=120)
                outcome: Any = (status, body.get("code"))
            except OSError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            with self.changed:
                self.outcomes.append(outcome)
                self.changed.notify_all()

    def wait(self, predicate: Any) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, 120)

    def wait_for_answers(self, count: int) -> bool:
        return self.wait(lambda: len(self.outcomes) >= count)

    def stop(self) -> list[Any]:
        self.done.set()
        self.thread.join(180)
        return self.outcomes


def test_under_a_held_socket_the_token_is_kept_and_no_request_is_refused_across_a_restart(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "t" / "token"
    with loopback_listener() as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        first = ServeProcess(subprocess_env, _args(aws_env, token_file), listen_socket=listener)
        second: Optional[ServeProcess] = None
        client: Optional[KeepAsking] = None
        try:
            assert first.variables()["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == url
            token = token_file.read_text()
            client = KeepAsking(url, token_file)
            assert client.wait(lambda: (200, None) in client.outcomes)
            assert _stop(first) == 0
            # No server runs now: the request the client has on its way waits in the queue.
            assert client.wait(lambda: client.started > len(client.outcomes))
            answered = len(client.outcomes)
            second = ServeProcess(
                subprocess_env, _args(aws_env, token_file), listen_socket=listener
            )
            second.variables()
            assert client.wait(lambda: len(client.outcomes) >= answered + 3)
            outcomes = client.stop()
            assert _stop(second) == 0
        finally:
            for serve in (first, second):
                if serve is not None:
                    serve.kill()
            if client is not None:
                client.stop()
    assert token_file.read_text() == token  # kept across the restart
    refused = [o for o in outcomes if o not in ((200, None), (503, "RefreshInProgress"))]
    assert refused == [], refused  # no connection error, no 401, nothing else
    assert outcomes.count((200, None)) >= 2


def _seen_tokens(token_file: Path, stop: threading.Event, seen: list[Optional[str]]) -> None:
    """Read the file as it is, again and again: None while there is none."""
    while not stop.is_set():
        try:
            seen.append(token_file.read_text())
        except FileNotFoundError:
            seen.append(None)


def test_two_servers_started_together_never_leave_a_partial_token_and_agree_on_the_last(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """Both servers write a new token; the one published last is the file's, and both
    follow the file, so both accept it (and neither the other's earlier one)."""
    for round_number in range(ROUNDS):
        token_file = tmp_path / f"round-{round_number}" / "token"  # the folder is missing too
        seen: list[Optional[str]] = []
        reading = threading.Event()
        reader = threading.Thread(target=_seen_tokens, args=(token_file, reading, seen))
        reader.start()
        servers = [ServeProcess(subprocess_env, _args(aws_env, token_file)) for _ in range(2)]
        try:
            urls = [s.variables()["AWS_CONTAINER_CREDENTIALS_FULL_URI"] for s in servers]
            reading.set()
            reader.join()
            final = token_file.read_text()
            assert TOKEN.fullmatch(final), final
            partial = [t for t in seen if t is not None and not TOKEN.fullmatch(t)]
            assert partial == [], (round_number, partial)
            earlier = {t for t in seen if t is not None and t != final}
            for url in urls:
                assert get(url, final, "/no-such-route")[0] == 404  # accepted
                for old in earlier:
                    assert get(url, old, "/no-such-route")[0] == 401
            assert os.listdir(token_file.parent) == ["token"]  # no temporary file left
            assert [_stop(s) for s in servers] == [0, 0]
        finally:
            reading.set()
            for serve in servers:
                serve.kill()


PHASES = ["starting", "printed", "first-fetch", "serving", "serving-twice"]


@pytest.mark.parametrize("phase", PHASES)
def test_sigterm_in_any_phase_exits_0_within_5_seconds(
    phase: str, aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    for run in range(RUNS):
        aws_env.reset()
        gate = threading.Event()
        if phase == "first-fetch":
            aws_env.proxy.inject(Fault.hold(gate, limit=300), action="AssumeRole")
        args = _args(aws_env, tmp_path / f"run-{run}" / "token")
        serve = ServeProcess(subprocess_env, [*args, "--debug"] if phase == "starting" else args)
        client: Optional[KeepAsking] = None
        try:
            if phase == "starting":  # building its botocore session: nothing is bound yet
                assert serve.wait_for_stderr("botocore.hooks DEBUG Changing event name")
            else:
                url = serve.variables()["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
            if phase == "first-fetch":
                assert aws_env.proxy.wait_for_count(1, action="AssumeRole")
            if phase.startswith("serving"):
                client = KeepAsking(url, tmp_path / f"run-{run}" / "token")
                assert client.wait_for_answers(2)
            serve.process.send_signal(signal.SIGTERM)
            if phase == "serving-twice":
                serve.process.send_signal(signal.SIGTERM)
            code = serve.finish(timeout=5)
        finally:
            gate.set()
            serve.kill()
            if client is not None:
                client.stop()
        assert code == 0, (phase, run, code, serve.stderr[-40:])


def test_a_token_write_that_fails_midway_leaves_the_old_token_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (ENOSPC from write) while a new token is written: the file still holds
    the old token, whole, and no temporary file is left (the write went to a temporary
    file, which a failure removes). What a crash at that point leaves is the same file."""
    from assume_provider.server.token import load_or_create_token, write_new_token

    token_file = tmp_path / "t" / "token"
    old = load_or_create_token(str(token_file))

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", disk_full)
        with pytest.raises(OSError):
            write_new_token(str(token_file))
    assert token_file.read_text() == old
    assert os.listdir(token_file.parent) == ["token"]
    new = write_new_token(str(token_file))
    assert new != old and token_file.read_text() == new


def test_a_stop_signal_whose_start_up_exception_was_swallowed_still_stops_the_server() -> None:
    """SIGTERM during start-up raises StopRequested in whatever the main thread runs; code on
    the way can swallow it (seen on Python 3.10: the server then served on, and ignored every
    later SIGTERM). Handing the signals to the loop stops it then: queued before anything
    queued after it."""
    import asyncio

    from assume_provider.server.lifecycle import StopRequested, StopSignals

    signals = StopSignals()
    with pytest.raises(StopRequested):
        signals._handle(signal.SIGTERM, None)  # raised, and swallowed here
    loop = asyncio.new_event_loop()
    stopped: list[str] = []
    try:
        signals.hand_to(loop, lambda: stopped.append("stop"))
        loop.call_soon(loop.stop)
        loop.run_forever()
    finally:
        signals.release()
        loop.close()
    assert stopped == ["stop"]
