"""``assume-provider serve`` as a real process whose output the test follows line by line,
optionally handed a listening socket the way systemd does (``LISTEN_PID``, ``LISTEN_FDS``,
descriptor 3), and a datagram socket that hears its notifications (``NOTIFY_SOCKET``).

Every wait here waits on an event (a line written, a datagram received) with a generous
failure-only bound; nothing sleeps to let the server get somewhere.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from cli_support import TOOL

FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN_FILE = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
WAIT = 60.0  # failure-only bound for every wait on an event


# Puts the socket on descriptor 3, sets LISTEN_PID to its own PID (exec keeps it: the
# tool's), and becomes the tool: what systemd does between fork and exec.
_HAND_OVER = """
import os, sys
fd, count, command = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=count)
os.execvp(command[0], command)
"""


class ServeProcess:
    """One ``serve`` process: its stdout and stderr lines as they come."""

    def __init__(
        self,
        env: Mapping[str, str],
        args: Sequence[str],
        *,
        listen_socket: Optional[socket.socket] = None,
        listen_fds: str = "1",
    ) -> None:
        command = [*TOOL, "serve", *args]
        pass_fds: tuple[int, ...] = ()
        if listen_socket is not None:
            fd = listen_socket.fileno()
            command = [sys.executable, "-c", _HAND_OVER, str(fd), listen_fds, *command]
            pass_fds = (fd,)
        self.process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=pass_fds,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._follow, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        self._closed = 0
        for reader in self._readers:
            reader.start()

    def _follow(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._closed += 1
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        with self._changed:
            return (
                self._changed.wait_for(lambda: predicate() or self._closed == 2, timeout)
                and predicate()
            )

    def wait_for_stderr(self, text: str) -> bool:
        return self.wait_for(lambda: any(text in line for line in self.stderr))

    def variables(self) -> dict[str, str]:
        """The two printed lines, once printed (AssertionError with stderr if never)."""
        if not self.wait_for(lambda: len(self.stdout) >= 2):
            raise AssertionError(f"serve printed no variables: {self.stdout}; {self.stderr}")
        return dict(line.split("=", 1) for line in self.stdout[:2])

    def finish(self, timeout: float = WAIT) -> Optional[int]:
        """The exit status, once the process and its output have ended (None: still running
        after ``timeout``)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for reader in self._readers:
            reader.join(WAIT)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


def get(
    url: str, token: Optional[str], path: str = "/", timeout: float = 30
) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of one GET on a new connection; connection errors raise."""
    request = urllib.request.Request(url.rstrip("/") + path)
    if token is not None:
        request.add_header("Authorization", token)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def loopback_listener() -> socket.socket:
    """What systemd's ``ListenStream=127.0.0.1:PORT`` holds: bound, listening, inheritable
    by the child it is handed to."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    return listener


class NotifyListener:
    """The receiving end of ``NOTIFY_SOCKET``: a real AF_UNIX datagram socket."""

    def __init__(self, folder: Path, abstract: bool = False) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"assume-provider-test-{os.getpid()}-{id(self)}"
            self.socket.bind("\0" + name)
            self.address = "@" + name
        else:
            path = folder / "notify"
            self.socket.bind(str(path))
            self.address = str(path)
        self.socket.settimeout(WAIT)

    def next(self) -> str:
        """The next datagram's text (socket.timeout after WAIT seconds: none came)."""
        return self.socket.recv(4096).decode("ascii")

    def close(self) -> None:
        self.socket.close()
