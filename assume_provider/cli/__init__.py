"""The ``assume-provider`` command line: a thin caller of the library.

Import cost matters here (``credential-process`` runs on every ``aws`` call): this module
imports nothing but ``sys`` (and the argument order and variable checks, which import no
more than the cache-hit path does); a ``credential-process`` answered from the disk cache never
imports argparse, botocore or boto3 (``cache_hit``), and everything else goes through the
argparse command line (``parser``).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Optional


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ..config.variables import leave_warning_to_command_line

    leave_warning_to_command_line()
    try:
        return _main(argv)
    finally:
        # main() called in a process that goes on (a test, say): leave its logging as it was.
        leave_warning_to_command_line(False)
        if "logging" in sys.modules:
            from .common import unconfigure_logging

            unconfigure_logging()


def _main(argv: Optional[Sequence[str]]) -> int:
    from .argv import subcommand_first

    args_list = subcommand_first(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["credential-process"] and not _unknown_variables():
        from .cache.hit import serve_from_cache

        status = serve_from_cache(args_list[1:])
        if status is not None:
            return status
    from .parser import run

    return run(args_list)


def _unknown_variables() -> bool:
    """An unknown ASSUME_PROVIDER_* variable: the full command line says so (one line)."""
    from ..config.variables import unknown_variables

    return bool(unknown_variables())


def console_main() -> None:
    raise SystemExit(main())
