"""Start ``assume-provider serve`` as a real process, and clients that know only its variables."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli_support import TOOL

FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN_FILE = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    variables: dict[str, str]
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.variables[FULL_URI]

    @property
    def token(self) -> str:
        return Path(self.variables[TOKEN_FILE]).read_text()

    def get(
        self,
        path: str = "/",
        *,
        token: str | None = None,
        host: str | None = None,
        authorize: bool = True,
    ) -> tuple[int, dict[str, str], Any]:
        """(status, headers, JSON body) of a GET, with the token unless told otherwise."""
        request = urllib.request.Request(self.url.rstrip("/") + path)
        if authorize:
            request.add_header("Authorization", self.token if token is None else token)
        if host is not None:
            request.add_header("Host", host)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for _ in range(60):  # as an SDK does: ask again while the first refresh is under way
            try:
                with opener.open(request, timeout=30) as response:
                    return response.status, dict(response.headers), json.loads(response.read())
            except urllib.error.HTTPError as exc:
                answer = exc.code, dict(exc.headers), json.loads(exc.read())
            if answer[2].get("code") != "RefreshInProgress":
                return answer
            time.sleep(0.5)
        return answer

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status and everything it wrote on stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=60)  # failure-only bound
        return self.process.returncode, err


@contextmanager
def serving(
    env: Mapping[str, str], args: Sequence[str], token_file: Path
) -> Iterator[RunningServer]:
    process = subprocess.Popen(
        [*TOOL, "serve", "--port", "0", "--token-file", str(token_file), *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        fd = process.stdout.fileno()  # raw reads: a buffered readline would hide the 2nd line
        data = b""
        while data.count(b"\n") < 2:
            ready, _, _ = select.select([fd], [], [], 60)
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                process.kill()
                _, err = process.communicate(timeout=10)
                raise AssertionError(f"serve printed no variables: {data!r}; stderr: {err}")
            data += chunk
        lines = data.decode().splitlines()
        assert len(lines) == 2, lines  # exactly two lines, nothing after them
        variables = dict(line.split("=", 1) for line in lines)
        yield RunningServer(process, variables)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def client_env(base: Mapping[str, str], server: RunningServer) -> dict[str, str]:
    """A process's environment with only the server's two variables as credentials: the bed's
    endpoint and region (to reach moto), empty config files, and IMDS unreachable."""
    env = {k: v for k, v in base.items() if not k.startswith(("AWS_", "ASSUME_PROVIDER_"))}
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        env[name] = base[name]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:9/"  # nothing listens there
    env["AWS_METADATA_SERVICE_NUM_ATTEMPTS"] = "1"
    env.update(server.variables)
    return env


def empty_config(tmp: Path) -> dict[str, str]:
    folder = tmp / "client-aws"
    folder.mkdir(exist_ok=True)
    (folder / "config").write_text("")
    (folder / "credentials").write_text("")
    return {
        "AWS_CONFIG_FILE": str(folder / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "credentials"),
    }


def token_file_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
