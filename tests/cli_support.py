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
