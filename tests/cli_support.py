"""Helpers for the command-line tests: run the real console script and the real AWS CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

BIN = os.path.dirname(sys.executable)
_SCRIPT = os.path.join(BIN, "assume-provider")
# The console script of the interpreter running the tests (pip install -e .); the module
# form otherwise. Never a pyenv shim: those add a shell and ~50 ms per call.
TOOL: list[str] = (
    [_SCRIPT] if os.path.exists(_SCRIPT) else [sys.executable, "-m", "assume_provider"]
)
AWS: list[str] = [os.path.join(BIN, "aws")]


def tool_command_line() -> str:
    """The tool as a credential_process command line."""
    return " ".join(TOOL)


def run_tool(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 60, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*TOOL, *args], env=dict(env), capture_output=True, text=True, timeout=timeout, **kwargs
    )


def run_aws(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AWS, *args, "--output", "json"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_config(env: Mapping[str, str], text: str) -> None:
    with open(env["AWS_CONFIG_FILE"], "w", encoding="utf-8") as handle:
        handle.write(text)


def _imported_modules(importtime_output: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in importtime_output.splitlines() if "|" in line}


def modules_the_tool_imports(
    args: Sequence[str], env: Mapping[str, str]
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the tool under ``-X importtime``: its result, and the modules it imported beyond
    those the interpreter's own start-up imports (e.g. through .pth hooks)."""
    script = TOOL[-1] if TOOL[0] != sys.executable else None
    prefix = [sys.executable, "-X", "importtime"]
    command = [*prefix, script, *args] if script else [*prefix, "-m", "assume_provider", *args]
    done = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=60)
    bare = subprocess.run(
        [*prefix, "-c", "pass"], env=dict(env), capture_output=True, text=True, timeout=60
    )
    return done, _imported_modules(done.stderr) - _imported_modules(bare.stderr)
