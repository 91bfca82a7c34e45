"""``assume-provider credential-process``: the JSON the AWS CLI and every SDK read.

Configured as ``credential_process`` in an AWS profile, it runs on every ``aws`` command,
so a cache hit imports neither botocore nor boto3 (see ``credentials.obtain``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import common
from .obtain import obtain
from .payload import credential_process_document


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "credential-process",
        parents=parents,
        help="print credentials as credential_process JSON (for AWS config profiles)",
        description=(
            "Print the role chain's credentials in the credential_process format (Version 1). "
            "Repeated calls are served from the disk cache while the credentials stay valid."
        ),
    )
    common.add_cache_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(credential_process_document(obtain(args).entry))
    sys.stdout.flush()
    return common.EXIT_OK
