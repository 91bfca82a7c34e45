"""The full command line, built with argparse (the cache-hit path never imports this)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import NoReturn, Optional

from .. import __version__
from . import common

# Each subcommand module exposes ``add_parser(subparsers, parents)``, which registers its
# parser with ``set_defaults(handler=...)``. The handler takes the parsed namespace and
# returns the exit status.
_SUBCOMMAND_MODULES = (
    "credential_process",
    "env_cmd",
    "exec_cmd",
    "whoami",
    "template_cmd",
    "serve_cmd",
)
# The command each module registers: when the command line names one, only that module is
# imported (credential-process runs on every `aws` call; every millisecond shows).
_MODULE_OF_COMMAND = {
    "credential-process": "credential_process",
    "env": "env_cmd",
    "exec": "exec_cmd",
    "whoami": "whoami",
    "template": "template_cmd",
    "serve": "serve_cmd",
}


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors in this tool's one-line format and exit status 2."""

    def error(self, message: str) -> NoReturn:
        common.print_error(message)
        raise SystemExit(common.EXIT_USAGE)


def _named_command(argv: Sequence[str]) -> Optional[str]:
    """The subcommand named on the command line (the first word not an option), if known."""
    for word in argv:
        if word == "--debug":
            continue
        return word if word in _MODULE_OF_COMMAND else None
    return None


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The full parser, or one holding only the subcommand ``only`` (faster to import)."""
    import importlib

    parser = _Parser(
        prog="assume-provider",
        description="Chained IAM AssumeRole credentials for the AWS CLI, shells and SDKs.",
    )
    common.add_global_options(parser, top_level=True)
    parser.add_argument(
        "--version", action="version", version=f"assume-provider {__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    parents = [common.settings_parent_parser()]
    modules = (_MODULE_OF_COMMAND[only],) if only else _SUBCOMMAND_MODULES
    for name in modules:
        module = importlib.import_module(f"{__package__}.{name}")
        module.add_parser(subparsers, parents)
    return parser


def run(argv: Sequence[str]) -> int:
    parser = build_parser(_named_command(argv))
    args = parser.parse_args(list(argv))
    handler: Callable[[argparse.Namespace], int] = args.handler
    return common.run_handler(handler, args)
