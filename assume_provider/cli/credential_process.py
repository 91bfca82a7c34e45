"""``assume-provider credential-process``: the JSON the AWS CLI and every SDK read.

Configured as ``credential_process`` in an AWS profile, it runs on every ``aws`` command,
so a cache hit imports neither botocore nor boto3 (see ``credentials.obtain``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import common
from .credentials import iso8601, obtain


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
    common.add_no_cache_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    entry = obtain(args).entry
    document = {
        "Version": 1,
        "AccessKeyId": entry.access_key_id,
        "SecretAccessKey": entry.secret_access_key,
        "SessionToken": entry.session_token,
        "Expiration": iso8601(entry.expires_at),
    }
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()
    return common.EXIT_OK
