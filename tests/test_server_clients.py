"""Clients of ``assume-provider serve`` that are not Python: the AWS JavaScript SDK v3 from
the npm registry on the machine's Node.js, and clients that read only
AWS_CONTAINER_AUTHORIZATION_TOKEN (the token's value, not the file; the AWS CLI v2 before
2.15, the Go SDK v2 before late 2023), wired as docs/server.md says.

The SDK is installed with ``npm ci`` from tests/js_clients/package-lock.json (exact versions)
into a cache outside the repository, one folder per lock file, so only the first run on a
machine pays for the install. Every client sees the bed's endpoint, empty config files,
IMDS turned off and the server's variables: nothing else could give it credentials.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import AWS
from server_support import FULL_URI, TOKEN_FILE, RunningServer, empty_config, serving
from testbed import TestBed

HERE = Path(__file__).resolve().parent
JS_CLIENTS = HERE / "js_clients"
SERVER_DOC = HERE.parent / "docs" / "server.md"
# Read at import, before any fixture points HOME at a test's own folder.
NPM_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "assume-provider-tests"
    / "npm"
)
_REAL_HOME = str(Path.home())
VALUE = "AWS_CONTAINER_AUTHORIZATION_TOKEN"


def _lock_key() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((JS_CLIENTS / name).read_bytes())
    return digest.hexdigest()[:16]


def _npm_env() -> dict[str, str]:
    """npm's own environment: no AWS variable, the real HOME (npm's download cache)."""
    keep = ("PATH", "LANG", "TMPDIR", "npm_config_registry", "NPM_CONFIG_REGISTRY")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["HOME"] = _REAL_HOME
    return env


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The SDK's node_modules for the committed lock file, installed once per machine.

    Installed into a fresh folder and renamed into place under a lock, so a run stopped
    half-way, or two runs at once, never leave a partial install where the next run looks.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(f"needs node and npm on PATH (node: {node}, npm: {npm})")
    target = NPM_CACHE / _lock_key()
    if (target / "node_modules").is_dir():
        return target / "node_modules"
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    with open(NPM_CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (target / "node_modules").is_dir():
            staging = Path(tempfile.mkdtemp(prefix=".install-", dir=NPM_CACHE))
            for name in ("package.json", "package-lock.json"):
                shutil.copy(JS_CLIENTS / name, staging / name)
            install = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev"],
                cwd=staging,
                env=_npm_env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
            if install.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                raise AssertionError(f"npm ci failed: {install.stderr[-2000:]}")
            staging.rename(target)
    return target / "node_modules"


@pytest.fixture
def serve_process(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> Iterator[RunningServer]:
    """The server on the bed's role, past its first fetch (what the tests ask about is the
    client, not a start-up race)."""
    args = ["--role-arn", aws_env.world.target_role_arn]
    with serving(subprocess_env, args, tmp_path / "t" / "token") as running:
        assert running.get("/")[0] == 200
        yield running


def _client_env(
    subprocess_env: dict[str, str], server: RunningServer, tmp_path: Path
) -> dict[str, str]:
    """Only the server's two variables as credentials; empty config files, IMDS off and, for
    an SDK that ignores that, its endpoint on a closed local port."""
    env = {k: v for k, v in subprocess_env.items() if not k.startswith("AWS_")}
    env.update(empty_config(tmp_path))
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:9/"
    env["AWS_METADATA_SERVICE_NUM_ATTEMPTS"] = "1"
    env[FULL_URI] = server.variables[FULL_URI]
    env[TOKEN_FILE] = server.variables[TOKEN_FILE]
    return env


def _node(
    node_modules: Path, bed: TestBed, env: dict[str, str], chain: str, *, wrapper: list[str]
) -> subprocess.CompletedProcess[str]:
    script = JS_CLIENTS / "sts_identity.cjs"
    return subprocess.run(
        [*wrapper, "node", str(script), bed.proxy.url, bed.world.region, chain],
        env={**env, "NODE_PATH": str(node_modules)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _documented_wrapper(tmp_path: Path) -> list[str]:
    """The wrapper script of docs/server.md's section on clients, as a file to run."""
    text = SERVER_DOC.read_text()
    section = text.split("## Clients: the token file or its value", 1)[1].split("\n## ", 1)[0]
    scripts = [b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if b.startswith("#!")]
    assert len(scripts) == 1, "docs/server.md: one #!/bin/sh wrapper in the clients section"
    path = tmp_path / "with-container-token"
    path.write_text(scripts[0])
    path.chmod(0o755)
    return [str(path)]


def _assert_role_of_account_a(bed: TestBed, out: str) -> None:
    identity = json.loads(out)
    assert identity["Account"] == bed.world.account_a
    assert identity["Arn"].startswith(
        f"arn:aws:sts::{bed.world.account_a}:assumed-role/TargetRole/"
    ), identity


def test_javascript_sdk_v3_default_chain_gets_the_role_from_the_two_variables(
    aws_env: TestBed,
    subprocess_env: dict[str, str],
    serve_process: RunningServer,
    node_modules: Path,
    tmp_path: Path,
) -> None:
    env = _client_env(subprocess_env, serve_process, tmp_path)
    result = _node(node_modules, aws_env, env, "default", wrapper=[])
    assert result.returncode == 0, result.stderr
    _assert_role_of_account_a(aws_env, result.stdout)
    assert aws_env.proxy.count(action="GetCallerIdentity") == 1  # the SDK's, at the bed
    assert aws_env.proxy.count(action="AssumeRole") == 1  # the server's only
    assert aws_env.imds.credential_request_count <= 1  # the server's own source, not node


def test_javascript_value_only_provider_needs_and_works_with_the_documented_wrapper(
    aws_env: TestBed,
    subprocess_env: dict[str, str],
    serve_process: RunningServer,
    node_modules: Path,
    tmp_path: Path,
) -> None:
    env = _client_env(subprocess_env, serve_process, tmp_path)
    unwrapped = _node(node_modules, aws_env, env, "container-metadata", wrapper=[])
    assert unwrapped.returncode != 0  # the file alone means no Authorization header: 401
    assert "ProviderError: Error response received" in unwrapped.stderr
    assert unwrapped.stdout == ""
    assert serve_process.token not in unwrapped.stderr
    wrapped = _node(
        node_modules, aws_env, env, "container-metadata", wrapper=_documented_wrapper(tmp_path)
    )
    assert wrapped.returncode == 0, wrapped.stderr
    _assert_role_of_account_a(aws_env, wrapped.stdout)
    assert aws_env.proxy.count(action="GetCallerIdentity") == 1  # only the wrapped call got in


def test_aws_cli_reading_only_the_value_works_with_the_documented_wrapper(
    aws_env: TestBed, subprocess_env: dict[str, str], serve_process: RunningServer, tmp_path: Path
) -> None:
    # The AWS CLI v1 of the venv reads the file too; `env -u` hides it, so the CLI sees what
    # a value-only client sees (the wrapper has read the file by then).
    env = _client_env(subprocess_env, serve_process, tmp_path)
    env["AWS_ENDPOINT_URL"] = aws_env.proxy.url
    env["AWS_DEFAULT_REGION"] = aws_env.world.region
    value_only_aws = ["env", "-u", TOKEN_FILE, *AWS, "sts", "get-caller-identity"]

    def run(wrapper: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*wrapper, *value_only_aws, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    unwrapped = run([])
    assert unwrapped.returncode != 0
    assert "401" in unwrapped.stderr  # botocore names the status the server answered
    assert serve_process.token not in unwrapped.stderr
    wrapped = run(_documented_wrapper(tmp_path))
    assert wrapped.returncode == 0, wrapped.stderr
    _assert_role_of_account_a(aws_env, wrapped.stdout)
    assert VALUE not in env  # the wrapper set it for its command only
