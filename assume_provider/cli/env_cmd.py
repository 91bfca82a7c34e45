"""``assume-provider env``: shell lines exporting the chain's credentials.

    eval "$(assume-provider env)"              # sh, bash, zsh
    assume-provider env --shell fish | source
    assume-provider env --shell powershell | Invoke-Expression

Besides the credentials it exports ``ASSUME_PROVIDER_EXPORTED_KEY_ID``: the library and the
CLI never use environment credentials with that key ID as a source, so running ``env``
again (or the provider inside the shell) still assumes from the real source.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config.inputs import EXPORTED_KEY_ID_VAR
from ..diskcache.entry import Entry
from . import common
from .obtain import obtain
from .payload import iso8601

# bash and zsh read sh's export lines as they are: they are accepted as names for sh.
SHELLS = ("sh", "bash", "zsh", "fish", "powershell")

# What `--unset` removes. AWS_DEFAULT_REGION is left alone: it is usually the user's own.
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    EXPORTED_KEY_ID_VAR,
)


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "env",
        parents=parents,
        help='print shell lines exporting the credentials (eval "$(assume-provider env)")',
        description="Print shell lines that export (or with --unset remove) the credentials.",
    )
    parser.add_argument("--shell", choices=SHELLS, default="sh", help="shell syntax (default sh)")
    parser.add_argument(
        "--unset", action="store_true", help="print the lines that remove the variables instead"
    )
    common.add_cache_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.unset:
        lines = [unset_line(args.shell, name) for name in CREDENTIAL_VARIABLES]
    else:
        variables = exported_variables(obtain(args).entry)
        lines = [export_line(args.shell, name, value) for name, value in variables]
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()
    return common.EXIT_OK


def exported_variables(entry: Entry) -> list[tuple[str, str]]:
    """The variables ``env`` prints and ``exec`` sets, in a stable order."""
    variables = [
        ("AWS_ACCESS_KEY_ID", entry.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", entry.secret_access_key),
        ("AWS_SESSION_TOKEN", entry.session_token),
        ("AWS_SECURITY_TOKEN", entry.session_token),  # older tools (boto 2, some SDKs)
        ("AWS_CREDENTIAL_EXPIRATION", iso8601(entry.expires_at)),
    ]
    if entry.region:
        variables.append(("AWS_DEFAULT_REGION", entry.region))
    variables.append((EXPORTED_KEY_ID_VAR, entry.access_key_id))
    return variables


def as_environment(entry: Entry) -> dict[str, str]:
    return dict(exported_variables(entry))


def quote(shell: str, value: str) -> str:
    """``value`` as one literal word of ``shell``, whatever characters it holds."""
    if shell == "fish":
        # In fish single quotes only \\ and \' are escapes.
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if shell == "powershell":
        # PowerShell single quotes: '' is a quote; the typographic quotes count as quotes too.
        for mark in ("'", "\u2018", "\u2019", "\u201a", "\u201b"):
            value = value.replace(mark, mark + mark)
        return "'" + value + "'"
    return "'" + value.replace("'", "'\\''") + "'"


def export_line(shell: str, name: str, value: str) -> str:
    if shell == "fish":
        return f"set -gx {name} {quote(shell, value)};"
    if shell == "powershell":
        return f"$Env:{name} = {quote(shell, value)}"
    return f"export {name}={quote(shell, value)}"


def unset_line(shell: str, name: str) -> str:
    if shell == "fish":
        return f"set -e {name};"
    if shell == "powershell":
        return f"Remove-Item Env:{name} -ErrorAction SilentlyContinue"
    return f"unset {name}"
