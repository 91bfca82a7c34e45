"""The full command line, built with argparse (the cache-hit path never imports this)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, Optional

from .. import __version__
from . import common
from .argv import settings_only, subcommand_first

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
    """argparse, with usage errors in this tool's one-line format and exit status 2.

    A missing command (a bare ``assume-provider``, or ``template`` without its kind) is a
    usage error too, but the one line alone would leave a newcomer guessing: the parser's
    whole help goes before it, on stderr like the error.
    """

    def error(self, message: str) -> NoReturn:
        command = self._missing_command(message)
        if command is not None:
            self.print_help(sys.stderr)
            sys.stderr.write("\n")
            message = f"no {command} given; choose one of those above"
        common.print_error(message)
        raise SystemExit(common.EXIT_USAGE)

    def _missing_command(self, message: str) -> Optional[str]:
        """The name of this parser's command (COMMAND, KIND) when argparse says it is missing;
        None for any other error, a missing required option included (``--table``)."""
        if not message.startswith(_MISSING_COMMAND):
            return None
        missing = message[len(_MISSING_COMMAND) :].split(", ")
        for action in self._actions:
            # nargs PARSER marks a subcommand action (its class is argparse's private one).
            if action.nargs == argparse.PARSER and action.metavar in missing:
                return str(action.metavar)
        return None


# argparse's message when a required subcommand is missing.
_MISSING_COMMAND = "the following arguments are required: "


def _named_command(argv: Sequence[str]) -> Optional[str]:
    """The subcommand, once ``subcommand_first`` has put it first (None when unknown)."""
    return argv[0] if argv and argv[0] in _MODULE_OF_COMMAND else None


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The full parser, or one holding only the subcommand ``only`` (faster to import)."""
    import importlib

    parser = _Parser(
        prog="assume-provider",
        description="Chained IAM AssumeRole credentials for the AWS CLI, shells and SDKs.",
        epilog=(
            "Settings (--role-arn, --profile, ...), the options of COMMAND and --debug go before "
            "or after COMMAND; "
            "`assume-provider COMMAND --help` lists the ones COMMAND takes."
        ),
    )
    common.add_global_options(parser, top_level=True)
    parser.add_argument(
        "--version", action="version", version=f"assume-provider {__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    parents = [common.settings_parent_parser()]  # --cache-dir: common.add_cache_options
    modules = (_MODULE_OF_COMMAND[only],) if only else _SUBCOMMAND_MODULES
    for name in modules:
        module = importlib.import_module(f"{__package__}.{name}")
        module.add_parser(subparsers, parents)
    return parser


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line; settings before the subcommand mean what they mean after it."""
    words = subcommand_first(argv)
    if settings_only(words):
        words = []  # the usage, and "no COMMAND given", rather than an ARN as the command
    return build_parser(_named_command(words)).parse_args(words)


def run(argv: Sequence[str]) -> int:
    args = parse_arguments(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return common.run_handler(handler, args)
