"""Keeping secrets out of logs, tracebacks and error messages.

Two layers. Values: every secret access key and session token this package handles is
registered here, and any log record that contains one is rewritten before a handler sees
it. Shapes: STS and IMDS responses are logged by botocore (DEBUG) before this package has
seen their secrets, so fields named like secrets are masked by pattern too.

The hook is a log-record factory: botocore checks ``isEnabledFor(DEBUG)`` before building a
record, so with DEBUG off no record is built and this costs nothing.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Optional

from .engine.forksafe import ForkSafeLock

if TYPE_CHECKING:
    from collections.abc import Callable

MASK = "****"
_MAX_SECRETS = 256  # old rotated secrets beyond this are no longer in use anywhere

_lock = ForkSafeLock()
_secrets: dict[str, None] = {}  # insertion-ordered set, bounded
_installed_factory: Optional[Callable[..., logging.LogRecord]] = None

# Patterns as text, compiled at their first use (``re`` keeps them compiled): most processes
# never redact anything, and compiling them at import cost every short-lived process about
# 4 M instructions (``docs/performance.md``, "Short-lived processes").
_SECRET_FIELD = (
    r"""(?ix)
    (
      <(SecretAccessKey|SessionToken|Token)>[^<]*(?:</\2>)?      # XML (STS), even truncated
    | ((?<![\w-])["']?(?:SecretAccessKey|SessionToken|Token|aws_secret_access_key|aws_session_token
           |X-Amz-Security-Token|secret_key|token|WebIdentityToken)["']?\s*[:=]\s*b?)
      (["'])[^"']*\4?                                 # JSON, dict reprs, headers (even cut)
    | (X-Amz-Security-Token=|WebIdentityToken=)[^&\s'"]+            # query strings, form bodies
    | (x-amz-security-token:)[^\s'"\\]+                              # canonical request lines
    )
    """  # noqa: S105 - a pattern that finds secrets, not one
)


def _mask_field(match: re.Match[str]) -> str:
    if match.group(2):
        return f"<{match.group(2)}>{MASK}</{match.group(2)}>"
    if match.group(3):
        return f"{match.group(3)}{match.group(4)}{MASK}{match.group(4)}"
    return f"{match.group(5) or match.group(6)}{MASK}"


def register_secret(*values: Optional[str]) -> None:
    """Remember secret values so that they are masked wherever they would be logged."""
    with _lock:
        for value in values:
            if value and len(value) >= 8:
                _secrets.pop(value, None)
                _secrets[value] = None
        while len(_secrets) > _MAX_SECRETS:
            _secrets.pop(next(iter(_secrets)))


# Access key IDs (long-term AKIA, temporary ASIA, and the rarer prefixes). Not secrets, but
# they identify a principal: answers given to callers who may not hold that key drop them.
_ACCESS_KEY_ID = r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{12,124}\b"


def redact_text(text: str, *, key_ids: bool = False) -> str:
    """``text`` with every known secret and every secret-shaped field masked; with
    ``key_ids``, access key IDs too."""
    with _lock:
        known = list(_secrets)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = re.sub(_SECRET_FIELD, _mask_field, text)
    return re.sub(_ACCESS_KEY_ID, MASK, text) if key_ids else text


# Loggers whose records can carry credentials: botocore's DEBUG records of requests and
# responses, the SDK and CLI layers above it, and this package. The application's own
# records are left exactly as they are. The async SDKs (aiobotocore logs its own requests and
# responses) are watched the same way.
_WATCHED_LOGGERS = (
    "botocore",
    "boto3",
    "awscli",
    "s3transfer",
    "aiobotocore",
    "aioboto3",
    "aiohttp",
    "s3fs",
    "assume_provider",
)


def _redacted_record(record: logging.LogRecord) -> logging.LogRecord:
    if not record.name.startswith(_WATCHED_LOGGERS):
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken record is logging's problem, not ours
        return record
    cleaned = redact_text(message)
    if cleaned != message:
        record.msg = cleaned
        record.args = None
    if record.exc_info and not record.exc_text:
        # Pre-formatting bypasses the handler's own formatException: only when it must.
        formatted = logging.Formatter().formatException(record.exc_info)
        redacted = redact_text(formatted)
        if redacted != formatted:
            record.exc_text = redacted
    return record


def install_redaction() -> None:
    """Wrap the process's log-record factory once (idempotent, chains any existing factory)."""
    global _installed_factory
    with _lock:
        current = logging.getLogRecordFactory()
        if _installed_factory is not None and current is _installed_factory:
            return

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _redacted_record(current(*args, **kwargs))

        _installed_factory = factory
        logging.setLogRecordFactory(factory)
