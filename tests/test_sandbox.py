"""The sandbox (`./scripts/demo --sandbox`, i.e. demo/sandbox.py): its printed lines point a
shell at the local stand-in, the AWS CLI and a boto3 script then run as account A's role, and
Ctrl-C stops it cleanly.

The sandbox runs on this interpreter (the test venv has what .venv-demo has), as a reader
would use it: its stdout lines sourced by a POSIX shell that then runs the client.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from testbed.world import ACCOUNT_A, ACCOUNT_B

ROOT = Path(__file__).resolve().parents[1]
READY = "# ready"
BOTO3_SCRIPT = textwrap.dedent(
    """
    import json, boto3
    identity = boto3.client("sts").get_caller_identity()
    secret = boto3.client("dynamodb").get_item(
        TableName="pipeline-secrets", Key={"name": {"S": "db-password"}})
    print(json.dumps({"Account": identity["Account"], "Arn": identity["Arn"],
                      "item": "Item" in secret}))
    """
)


class Sandbox:
    def __init__(self, process: subprocess.Popen[bytes], lines: list[str]) -> None:
        self.process = process
        self.lines = lines

    def variable(self, name: str) -> str:
        prefix = f"export {name}="
        (line,) = [line for line in self.lines if line.startswith(prefix)]
        return line[len(prefix) :].strip("'")


def _read_until_ready(process: subprocess.Popen[bytes]) -> list[str]:
    """stdout's lines up to and with the ready line; raw reads, each wait bounded."""
    assert process.stdout is not None
    fd, data = process.stdout.fileno(), b""
    while not any(line.startswith(READY) for line in data.decode().splitlines()):
        ready, _, _ = select.select([fd], [], [], 120)
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            process.kill()
            _, err = process.communicate(timeout=60)
            raise AssertionError(f"the sandbox printed no ready line: {data!r} {err!r}")
        data += chunk
    return data.decode().splitlines()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    process = subprocess.Popen(
        [sys.executable, "-u", str(ROOT / "demo" / "sandbox.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield Sandbox(process, _read_until_ready(process))
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=60)


def _in_sandbox_shell(sandbox: Sandbox, tmp_path: Path, *command: str) -> str:
    """Run ``command`` in a shell that sourced the sandbox's lines (and whose own environment
    has AWS credentials of its own, which the lines must put aside)."""
    lines = tmp_path / "sandbox-lines.sh"
    lines.write_text("\n".join(sandbox.lines) + "\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "AWS_ACCESS_KEY_ID": "AKIAOUTSIDESANDBOX00",
        "AWS_SECRET_ACCESS_KEY": "not-for-the-sandbox",
        "AWS_PROFILE": "someone-elses",
    }
    done = subprocess.run(
        ["sh", "-c", '. "$0" && exec "$@"', str(lines), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_printed_lines_run_aws_and_boto3_as_account_a(sandbox: Sandbox, tmp_path: Path) -> None:
    aws = json.loads(
        _in_sandbox_shell(
            sandbox, tmp_path, "aws", "sts", "get-caller-identity", "--output", "json"
        )
    )
    assert aws["Account"] == ACCOUNT_A
    assert ":assumed-role/TargetRole/" in aws["Arn"]
    script = json.loads(_in_sandbox_shell(sandbox, tmp_path, "python", "-c", BOTO3_SCRIPT))
    assert script["Account"] == ACCOUNT_A
    assert ":assumed-role/TargetRole/" in script["Arn"]
    assert script["item"]  # A's table, read with A's role
    # Without the role the same shell is the instance, in account B: the lines set the role.
    instance = json.loads(
        _in_sandbox_shell(
            sandbox,
            tmp_path,
            "env",
            "-u",
            "ASSUME_PROVIDER_ROLE_ARN",
            "aws",
            "sts",
            "get-caller-identity",
            "--output",
            "json",
        )
    )
    assert instance["Account"] == ACCOUNT_B


def test_the_sandboxs_credentials_stay_in_its_folder(sandbox: Sandbox, tmp_path: Path) -> None:
    """`env` in the sandbox's shell caches the stand-in's credentials in the sandbox's folder
    (removed when it stops), not in the user's own ~/.aws/assume-provider/cache."""
    exported = _in_sandbox_shell(sandbox, tmp_path, "assume-provider", "env")
    assert "export AWS_ACCESS_KEY_ID=" in exported
    assert not (tmp_path / "home" / ".aws").exists()
    folder = Path(sandbox.variable("AWS_CONFIG_FILE")).parent
    assert any((folder / "cache").iterdir())


# Ctrl-C; `kill`; the terminal closed (a hang-up): each must leave nothing behind.
@pytest.mark.parametrize(
    "stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda stop: stop.name
)
def test_ctrl_c_stops_the_sandbox_and_its_servers(sandbox: Sandbox, stop: signal.Signals) -> None:
    endpoints = [
        urlsplit(sandbox.variable(name))
        for name in ("AWS_ENDPOINT_URL", "AWS_EC2_METADATA_SERVICE_ENDPOINT")
    ]
    env_file = Path(sandbox.variable("AWS_CONFIG_FILE")).parent / "sandbox.env"
    assert env_file.is_file()
    for endpoint in endpoints:  # listening while it runs
        socket.create_connection((endpoint.hostname, endpoint.port), timeout=30).close()
    sandbox.process.send_signal(stop)
    _, err = sandbox.process.communicate(timeout=120)
    assert sandbox.process.returncode == 0, err
    assert err.decode().splitlines()[-1] == "sandbox: stopped"
    assert not env_file.exists()  # its folder (config files, the lines) removed
    for endpoint in endpoints:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((endpoint.hostname, endpoint.port), timeout=30).close()


def test_scripts_demo_refuses_an_unknown_option_before_installing(tmp_path: Path) -> None:
    """`./scripts/demo --sandbox` is the way in; a typo gets the usage, not a venv."""
    venv = tmp_path / "venv-demo"
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--sandbx"],
        env={"PATH": os.environ["PATH"], "ASSUME_PROVIDER_DEMO_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "usage: ./scripts/demo [--sandbox]\n"
    assert not venv.exists()
