"""The values the refresh engine hands out and reports, and the one lock it is built on.

Kept apart from the engine so that the schedule, the policy and their callers (the botocore
view, the CLI) share the types without importing the machinery. Standard library only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional

from .records import frozen

__all__ = [
    "Lock",
    "RefreshStats",
    "StaleCredentialsError",
    "TemporaryCredentials",
    "default_is_recoverable",
    "utc_text",
]


@frozen
class TemporaryCredentials:
    """One set of credentials with its expiry; the repr hides secrets so logs never leak them."""

    access_key_id: str
    secret_access_key: str
    session_token: Optional[str]
    expiration: Optional[float]  # POSIX seconds (UTC); None = never expires

    def __repr__(self) -> str:
        """Show only what is safe to log: the access key id and the expiry."""
        return (
            f"TemporaryCredentials(access_key_id={self.access_key_id!r}, "
            f"expiration={self.expiration!r})"
        )


def utc_text(timestamp: Optional[float]) -> str:
    """Expiries in logs read as ISO 8601 UTC, as STS and the CLI print them."""
    if timestamp is None:
        return "never"
    try:
        return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return repr(timestamp)


#: What the hot path serves before anything was fetched (never returned: it is due at once).
NO_CREDENTIALS = TemporaryCredentials("", "", None, None)


@frozen
class RefreshStats:
    """Counters a caller can check to see how often the source was really asked."""

    fetches: int  # times the source was contacted
    failures: int  # of those, how many failed (stale credentials included)
    rate_limited: int  # calls that needed a refresh but were served the cache during a backoff


class StaleCredentialsError(RuntimeError):
    """The source returned credentials that had already expired: treated as a failed refresh."""

    recoverable = True

    def __init__(self, credentials: TemporaryCredentials, now: float) -> None:
        super().__init__(
            f"the credential source returned credentials {credentials.access_key_id} that "
            f"expired at {credentials.expiration} (now {now:.0f})"
        )
        self.access_key_id = credentials.access_key_id
        self.expiration = credentials.expiration


def default_is_recoverable(exc: BaseException) -> bool:
    """Errors say whether retrying can fix them through a ``recoverable`` attribute."""
    return bool(getattr(exc, "recoverable", True))


if TYPE_CHECKING:  # a Protocol is for the type checker only (its class costs each process)
    from types import TracebackType
    from typing import Protocol

    class Lock(Protocol):
        """What the engine needs from a lock, so tests can inject one that records its use."""

        def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool:
            """Take the lock (non-blocking for the advisory window)."""

        def release(self) -> None:
            """Give the lock back."""

        def __enter__(self) -> bool:
            """Hold the lock for a few assignments."""

        def __exit__(
            self,
            exc_type: Optional[type[BaseException]],
            exc: Optional[BaseException],
            traceback: Optional[TracebackType],
        ) -> None:
            """Release it even on error."""
