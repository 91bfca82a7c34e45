"""The ``assume-provider`` command line: a thin caller of the library.

Import cost matters here (``credential-process`` runs on every ``aws`` call): this module
imports nothing but ``sys``; a ``credential-process`` answered from the disk cache never
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
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["credential-process"]:
        from .cache.hit import serve_from_cache

        status = serve_from_cache(args_list[1:])
        if status is not None:
            return status
    from .parser import run

    return run(args_list)


def console_main() -> None:
    raise SystemExit(main())
