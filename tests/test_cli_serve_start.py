"""`serve` on a busy port: the error says what is likely there and how to choose another port,
and a failed start leaves no token file (nor the folders it made for one)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import run_tool
from testbed import TestBed

ERROR = "assume-provider: error: "


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield int(listener.getsockname()[1])


def _serve(
    env: dict[str, str], role_arn: str, port: int, token_file: Path
) -> tuple[int, list[str]]:
    # The role before the subcommand: `serve` takes settings on either side too.
    done = run_tool(
        ["--role-arn", role_arn, "serve", "--port", str(port), "--token-file", str(token_file)],
        env,
    )
    assert done.stdout == ""  # the variables are printed only once listening
    return done.returncode, done.stderr.splitlines()


def test_a_busy_port_says_a_server_may_run_there_and_names_port_and_creates_no_token_file(
    aws_env: TestBed, subprocess_env: dict[str, str], busy_port: int, tmp_path: Path
) -> None:
    token_file = tmp_path / "new-folder" / "deeper" / "server-token"

    status, lines = _serve(subprocess_env, aws_env.world.target_role_arn, busy_port, token_file)

    assert status == 1
    assert not token_file.exists()
    assert not (tmp_path / "new-folder").exists()  # nor the folders made for it
    assert len(lines) == 1 and lines[0].startswith(ERROR), lines
    message = lines[0]
    assert f"cannot listen on 127.0.0.1:{busy_port}" in message
    assert "assume-provider serve started earlier" in message
    assert "--port PORT" in message and "--port 0" in message
    assert aws_env.proxy.count() == 0


def test_a_failed_start_keeps_an_existing_token_file_as_it_was(
    aws_env: TestBed, subprocess_env: dict[str, str], busy_port: int, tmp_path: Path
) -> None:
    token_file = tmp_path / "server-token"
    token_file.write_text("t" * 43)
    token_file.chmod(0o600)

    status, _ = _serve(subprocess_env, aws_env.world.target_role_arn, busy_port, token_file)

    assert status == 1
    assert token_file.read_text() == "t" * 43
