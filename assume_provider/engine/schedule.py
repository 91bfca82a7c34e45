"""When cached credentials fall due: the windows, and the jittered start of an early refresh.

Computed once per fetch and stored in an ``Entry``, so the hot path compares one float and
never does arithmetic. The sizes follow AWS's 2026 cross-SDK refresh behaviour: a blocking
window one minute before expiry, and an early (advisory) window chosen from the lifetime so
that short-lived credentials are not refreshed on every call (botocore#2189). The start of
the early refresh is jittered so that a fleet started together does not refresh together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from .records import frozen
from .windows import advisory_window_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from .model import TemporaryCredentials

__all__ = [
    "JITTER_FRACTION",
    "MIN_LIFETIME_FRACTION",
    "PREFETCH_GRACE",
    "Entry",
    "advisory_window_for",
    "schedule",
]

_INF = float("inf")

#: Early refresh starts somewhere in this first fraction of the advisory window (up to the
#: mandatory window), so a fleet started together does not refresh together.
JITTER_FRACTION = 0.5
#: Never schedule a refresh of freshly fetched credentials before this fraction of their
#: lifetime has passed: short-lived credentials must not be refreshed on every call.
MIN_LIFETIME_FRACTION = 0.25
#: With prefetch on, callers leave the prefetch thread this long to refresh before they
#: refresh themselves (it wakes at the window start; they only act if it is late or dead).
PREFETCH_GRACE = 30.0


@frozen
class Entry:
    """Cached credentials with their precomputed schedule, published in one assignment."""

    credentials: TemporaryCredentials
    expires_at: float  # +inf when the credentials never expire
    mandatory_at: float  # start of the blocking window
    refresh_at: float  # jittered start of the early refresh
    callers_at: float  # when callers refresh themselves (later with prefetch: it goes first)
    advisory_window: Optional[float]


def schedule(
    credentials: TemporaryCredentials,
    fetched_at: float,
    *,
    lifetime_known: bool,
    advisory_window: Optional[float],
    mandatory_window: float,
    prefetch: bool,
    random: Callable[[], float],
) -> Entry:
    """The entry for credentials fetched at ``fetched_at`` (``random`` draws the jitter).

    ``lifetime_known`` is False for credentials handed in rather than fetched: the time
    they have left is all that is known of their lifetime, so it sizes their window and
    the quarter-of-the-lifetime floor does not apply.
    """
    expiration = credentials.expiration
    if expiration is None:
        return Entry(credentials, _INF, _INF, _INF, _INF, None)
    lifetime = expiration - fetched_at
    window = advisory_window if advisory_window is not None else advisory_window_for(lifetime)
    mandatory_at = expiration - mandatory_window
    start = expiration - window
    if lifetime_known:
        start = max(start, fetched_at + MIN_LIFETIME_FRACTION * lifetime)
    span = max(0.0, mandatory_at - start) * JITTER_FRACTION
    refresh_at = start + span * random()
    callers_at = refresh_at
    if prefetch:
        callers_at += min(PREFETCH_GRACE, max(0.0, mandatory_at - refresh_at) / 2)
    return Entry(credentials, expiration, mandatory_at, refresh_at, callers_at, window)
