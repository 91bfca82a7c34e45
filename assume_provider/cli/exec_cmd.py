"""``assume-provider exec -- CMD [ARG...]``: run a command with the chain's credentials.

The command inherits stdin, stdout and stderr; SIGINT, SIGTERM and SIGHUP sent to this
process are forwarded to it; its exit status is ours (128 + N if signal N ended it).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
from types import FrameType
from typing import Any, Optional

from . import common
from .env_cmd import as_environment
from .obtain import obtain

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "exec",
        parents=parents,
        help="run a command with the credentials in its environment",
        description="Run CMD with the role chain's credentials in its environment.",
        usage="assume-provider exec [options] -- CMD [ARG...]",
    )
    common.add_no_cache_option(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        from ..errors import ConfigError

        raise ConfigError("exec needs a command: assume-provider exec -- CMD [ARG...]")
    # Taken before obtain(), which marks our own environment for the source's processes.
    environment: dict[str, str] = dict(os.environ)
    environment.update(as_environment(obtain(args).entry))
    return run_command(command, environment)


def run_command(command: list[str], environment: dict[str, str]) -> int:
    try:
        child = subprocess.Popen(command, env=environment)  # noqa: S603 - the user's command
    except OSError as exc:
        raise RuntimeError(f"cannot run {command[0]!r}: {exc.strerror or exc}") from None

    def forward(signum: int, frame: Optional[FrameType]) -> None:
        del frame
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        while True:
            try:
                status = child.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - SIGINT is handled by forward()
                continue
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - status if status < 0 else status
