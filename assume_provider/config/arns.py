"""IAM role ARNs checked in linear time, for the settings and for the templates.

Each part is checked on its own after splitting at the separators, instead of with one
pattern: a repeated group whose character class also matches its separator (as a role path
``(?:[...]+/)*`` does) makes a backtracking regex engine take exponential time on a value
that almost matches, and a setting's value must never hang credential resolution.
"""

from __future__ import annotations

from typing import Optional

PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b")
OTHER_IAM_KINDS = ("user", "group", "policy", "instance-profile", "saml-provider", "oidc-provider")
MAX_ROLE_NAME = 64
MAX_ROLE_PATH = 512
ALLOWED = "expected arn:<partition>:iam::<12-digit account>:role/<path/name>"
_DIGITS = frozenset("0123456789")
_NAME_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-"
)
_WILDCARDS = frozenset("*?")


def is_account_id(text: str) -> bool:
    """Twelve ASCII digits (not ``str.isdigit``: that accepts other scripts' digits)."""
    return len(text) == 12 and all(character in _DIGITS for character in text)


def printable_ascii(text: str) -> bool:
    return all("\x21" <= character <= "\x7e" for character in text)


# An ``arn:<partition>:iam::<account>:<kind>/<path/><name>`` split at its separators:
# (partition, account, kind, has_path_name, path, name); has_path_name is False when the
# resource has no "/" at all. A plain tuple: a NamedTuple class costs every process that
# imports this module about 1 M instructions to create (``docs/performance.md``).
IamArn = tuple[str, str, str, bool, str, str]


def split_iam_arn(arn: str) -> Optional[IamArn]:
    """The parts of an IAM ARN, or None if ``arn`` is not ``arn:*:iam::*:*`` (linear time)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or parts[3] != "":
        return None
    kind, slash, path_name = parts[5].partition("/")
    path, _, name = path_name.rpartition("/")
    return (parts[1], parts[4], kind, bool(slash), path, name)


def role_arn_problem(arn: str, *, allow_wildcards: bool = True) -> Optional[str]:
    """Why ``arn`` is not an IAM role ARN, or None if it is one.

    ``allow_wildcards=False`` also refuses ``*`` and ``?`` in the path, for policies where
    a wildcard would match more roles than the one named.
    """
    if not arn:
        return f"empty role ARN; {ALLOWED}"
    parsed = split_iam_arn(arn)
    if parsed is None:
        return f"not an IAM role ARN; {ALLOWED}"
    partition, account, kind, has_path_name, path, name = parsed
    if partition not in PARTITIONS:
        return f"unknown partition {partition!r}; partitions: {', '.join(PARTITIONS)}"
    if not is_account_id(account):
        return f"account ID {account!r} is not 12 digits; {ALLOWED}"
    if kind in OTHER_IAM_KINDS:
        return f"this is an IAM {kind} ARN, not a role ARN; {ALLOWED}"
    if kind != "role" or not has_path_name:
        return f"not an IAM role ARN; {ALLOWED}"
    if not 1 <= len(name) <= MAX_ROLE_NAME or not set(name) <= _NAME_CHARACTERS:
        return (
            f"invalid role name {name!r}; {ALLOWED} (name: 1-{MAX_ROLE_NAME} of letters, "
            "digits, +=,.@_-)"
        )
    if len(path) + 2 > MAX_ROLE_PATH or not printable_ascii(path):
        return (
            f"invalid role path; {ALLOWED} (path: at most {MAX_ROLE_PATH} printable ASCII "
            "characters)"
        )
    if not allow_wildcards and _WILDCARDS & set(path):
        return f"wildcards (* or ?) in the role path would match other roles; {ALLOWED}"
    return None
