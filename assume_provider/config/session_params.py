"""The session parameters of INTERFACE.md ("Session parameters"), validated by STS's rules.

SourceIdentity (sent on the first hop), session tags and transitive tag keys, managed and
inline session policies (sent on the last hop), and the STS fallback regions. Every check
here runs in time linear in the value (no backtracking pattern), before any request, and
raises a ``ConfigError`` naming the setting and where its value came from.

No botocore import here (the CLI parses settings before it needs botocore); ``json`` is
imported only when an inline policy is given.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

from .arns import PARTITIONS, is_account_id, printable_ascii, split_iam_arn
from .inputs import shown, string_list

SOURCE_IDENTITY = "source_identity"
TAGS = "tags"
TRANSITIVE_TAG_KEYS = "transitive_tag_keys"
POLICY_ARNS = "policy_arns"
POLICY = "policy"
STS_FALLBACK_REGIONS = "sts_fallback_regions"

# STS's limits (AssumeRole API reference).
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_POLICY_ARNS = 10
MAX_POLICY_ARN = 2048
MIN_POLICY_ARN = 20
MAX_PACKED_POLICY = 2048
MAX_POLICY_NAME = 128
MAX_POLICY_PATH = 512
MAX_FALLBACK_REGIONS = 10
MAX_REGION = 32
# SourceIdentity: 2-64 characters of [A-Za-z0-9+=,.@-] (no underscore, unlike session names).
_SOURCE_IDENTITY_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@-"
)
# Tag keys and values: [\p{L}\p{Z}\p{N}_.:/=+\-@]; checked per character.
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_POLICY_NAME_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-"
)
_REGION_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_DIGITS = frozenset("0123456789")
FILE_PREFIX = "file://"
_JSON_WHITESPACE = frozenset(" \t\n\r")


def _error(name: str, origin: Any, value: Any, allowed: str) -> Exception:
    from ..errors import ConfigError

    return ConfigError(f"invalid {name} {shown(value)} (from {origin}): {allowed}")


def parse_source_identity(raw: Any, origin: Any) -> Optional[str]:
    if raw is None:
        return None
    if (
        not isinstance(raw, str)
        or not 2 <= len(raw) <= 64
        or not set(raw) <= _SOURCE_IDENTITY_CHARACTERS
    ):
        raise _error(
            SOURCE_IDENTITY, origin, raw, "expected 2-64 characters of letters, digits and +=,.@-"
        )
    return raw


def _tag_text_ok(text: str) -> bool:
    for character in text:
        if character in _TAG_PUNCTUATION:
            continue
        if unicodedata.category(character)[0] not in "LZN":
            return False
    return True


_TAG_RULES = (
    f"at most {MAX_TAGS} tags K=V, keys 1-{MAX_TAG_KEY} and values 0-{MAX_TAG_VALUE} "
    "characters of letters, digits, spaces and _.:/=+-@, keys unique ignoring case"
)


def _tag_pairs(raw: Any, origin: Any) -> list[tuple[str, str]]:
    """The (key, value) pairs of a mapping, a ``K=V,K2=V2`` string or a sequence of ``K=V``."""
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
            raise _error(TAGS, origin, raw, f"keys and values must be strings; {_TAG_RULES}")
        return pairs
    if isinstance(raw, str):
        items = [item.strip() for item in raw.split(",")]
        if not any(items):
            return []
    elif isinstance(raw, Sequence):
        if not all(isinstance(item, str) for item in raw):
            raise _error(TAGS, origin, raw, f"each tag must be a K=V string; {_TAG_RULES}")
        items = list(raw)
    else:
        raise _error(TAGS, origin, raw, f"expected a mapping or K=V,K2=V2; {_TAG_RULES}")
    pairs = []
    for item in items:
        key, equals, value = item.partition("=")
        if not equals:
            raise _error(TAGS, origin, item, f"a tag must be K=V; {_TAG_RULES}")
        pairs.append((key, value))
    return pairs


def parse_tags(raw: Any, origin: Any) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    pairs = _tag_pairs(raw, origin)
    if len(pairs) > MAX_TAGS:
        raise _error(TAGS, origin, raw, f"{len(pairs)} tags; {_TAG_RULES}")
    seen: dict[str, str] = {}
    for key, value in pairs:
        if not 1 <= len(key) <= MAX_TAG_KEY or not _tag_text_ok(key):
            raise _error(TAGS, origin, raw, f"invalid tag key {shown(key)}; {_TAG_RULES}")
        if key.lower().startswith("aws:"):
            raise _error(TAGS, origin, raw, f"tag key {shown(key)}: the aws: prefix is reserved")
        if len(value) > MAX_TAG_VALUE or not _tag_text_ok(value):
            raise _error(
                TAGS, origin, raw, f"invalid value of tag {shown(key)}; {_TAG_RULES}"
            )
        folded = key.lower()
        if folded in seen:
            raise _error(
                TAGS,
                origin,
                raw,
                f"tag keys {shown(seen[folded])} and {shown(key)} are equal ignoring case; "
                f"{_TAG_RULES}",
            )
        seen[folded] = key
    return tuple(pairs)


def parse_transitive_tag_keys(
    raw: Any, origin: Any, tags: Sequence[tuple[str, str]]
) -> tuple[str, ...]:
    keys = string_list(TRANSITIVE_TAG_KEYS, raw, origin, "tag key")
    tag_keys = {key for key, _ in tags}
    for key in keys:
        if key not in tag_keys:
            raise _error(
                TRANSITIVE_TAG_KEYS,
                origin,
                raw,
                f"{shown(key)} is not the key of a session tag (tags: "
                f"{', '.join(sorted(tag_keys)) or 'none'}); transitive keys must be among the tags",
            )
    if len({key.lower() for key in keys}) != len(keys):
        raise _error(TRANSITIVE_TAG_KEYS, origin, raw, "a tag key is listed twice")
    return keys


POLICY_ARN_ALLOWED = (
    "expected arn:<partition>:iam::<12-digit account or aws>:policy/<path/name>"
)


def policy_arn_problem(arn: str) -> Optional[str]:
    """Why ``arn`` is not an IAM managed policy ARN, or None if it is one (linear time)."""
    if not MIN_POLICY_ARN <= len(arn) <= MAX_POLICY_ARN:
        return f"{MIN_POLICY_ARN}-{MAX_POLICY_ARN} characters; {POLICY_ARN_ALLOWED}"
    parsed = split_iam_arn(arn)
    if parsed is None:
        return f"not an IAM policy ARN; {POLICY_ARN_ALLOWED}"
    partition, account, kind, has_path_name, path, name = parsed
    if partition not in PARTITIONS:
        return f"unknown partition {partition!r}; partitions: {', '.join(PARTITIONS)}"
    if account != "aws" and not is_account_id(account):
        return f"account {account!r} is neither 12 digits nor aws; {POLICY_ARN_ALLOWED}"
    if kind != "policy" or not has_path_name:
        return f"an IAM {kind} ARN, not a policy ARN; {POLICY_ARN_ALLOWED}"
    if not 1 <= len(name) <= MAX_POLICY_NAME or not set(name) <= _POLICY_NAME_CHARACTERS:
        return f"invalid policy name {name!r}; {POLICY_ARN_ALLOWED}"
    if len(path) + 2 > MAX_POLICY_PATH or not printable_ascii(path):
        return f"invalid policy path; {POLICY_ARN_ALLOWED}"
    return None


def _checked_list(
    name: str,
    raw: Any,
    origin: Any,
    what: str,
    limit: int,
    problem_of: Callable[[str], Optional[str]],
) -> tuple[str, ...]:
    """A list setting of at most ``limit`` items, each of which ``problem_of`` accepts."""
    items = string_list(name, raw, origin, what)
    if len(items) > limit:
        raise _error(name, origin, raw, f"{len(items)} {what}s; at most {limit} are allowed")
    for item in items:
        problem = problem_of(item)
        if problem:
            raise _error(name, origin, item, problem)
    return items


def parse_policy_arns(raw: Any, origin: Any) -> tuple[str, ...]:
    arns = _checked_list(
        POLICY_ARNS, raw, origin, "policy ARN", MAX_POLICY_ARNS, policy_arn_problem
    )
    if len(set(arns)) != len(arns):
        raise _error(POLICY_ARNS, origin, raw, "a policy ARN is listed twice")
    return arns


def packed_policy(text: str) -> str:
    """``text`` without the JSON whitespace outside its strings (one linear pass)."""
    out = []
    in_string = escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in _JSON_WHITESPACE:
            continue
        out.append(character)
    return "".join(out)


def policy_file_path(raw: Any) -> Optional[str]:
    """The path a ``file://PATH`` policy value names (``~`` expanded), else None."""
    if isinstance(raw, str) and raw.strip().startswith(FILE_PREFIX):
        return os.path.expanduser(raw.strip()[len(FILE_PREFIX) :])
    return None


_POLICY_RULES = (
    f"expected a JSON policy document (an object), at most {MAX_PACKED_POLICY} characters "
    "once whitespace outside its strings is removed, or file://PATH of one"
)


def parse_policy(raw: Any, origin: Any) -> Optional[str]:
    """The inline session policy as sent: the document, packed."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _error(POLICY, origin, raw, _POLICY_RULES)
    text = raw
    path = policy_file_path(raw)
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(64 * 1024 + 1)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise _error(POLICY, origin, raw, f"cannot read {path}: {reason}") from None
        if len(text) > 64 * 1024:
            raise _error(POLICY, origin, raw, f"{path} is over 64 KiB; {_POLICY_RULES}")
    import json

    def refuse_constant(name: str) -> None:
        # Python's json reads NaN and Infinity; JSON (and so IAM) has no such values.
        raise ValueError(f"{name} is not JSON")

    try:
        document = json.loads(text, parse_constant=refuse_constant)
    except ValueError as exc:
        raise _error(POLICY, origin, raw, f"not valid JSON ({exc}); {_POLICY_RULES}") from None
    except RecursionError:
        raise _error(POLICY, origin, raw, f"nested too deeply; {_POLICY_RULES}") from None
    if not isinstance(document, dict):
        raise _error(POLICY, origin, raw, f"not a JSON object; {_POLICY_RULES}")
    packed = packed_policy(text)
    if len(packed) > MAX_PACKED_POLICY:
        raise _error(POLICY, origin, raw, f"{len(packed)} characters packed; {_POLICY_RULES}")
    return packed


def region_problem(region: str) -> Optional[str]:
    """Why ``region`` is not an AWS region name (e.g. us-east-1), or None (linear time)."""
    allowed = "expected a region name such as us-east-1 or eu-central-2"
    if not 1 <= len(region) <= MAX_REGION or not set(region) <= _REGION_CHARACTERS:
        return allowed
    parts = region.split("-")
    if len(parts) < 3 or not all(parts) or not set(parts[-1]) <= _DIGITS:
        return allowed
    if any(set(part) & _DIGITS for part in parts[:-1]):
        return allowed
    return None


def parse_fallback_regions(raw: Any, origin: Any) -> tuple[str, ...]:
    regions = _checked_list(
        STS_FALLBACK_REGIONS, raw, origin, "region", MAX_FALLBACK_REGIONS, region_problem
    )
    return tuple(dict.fromkeys(regions))  # a region named twice is tried once
