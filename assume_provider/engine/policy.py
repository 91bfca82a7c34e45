"""The refresh policy, in one place: what a call does, and how long a failure holds off.

Pure functions of the cached entry, the failure state and the time, so every rule can be
read here in order and tested without threads. Two clocks: ``now`` is the wall clock, the
only one ``Expiration`` (and the windows derived from it) can be compared with; ``ticks``
is a monotonic clock, which every deadline measured from now (the error memory, the
backoff) is kept on, so that a step of the wall clock (NTP, a suspended VM) neither
stretches nor cuts them. The engine (``refresh.py``) only executes
the decision: serve, raise, or refresh with or without waiting, single flight.

A call whose credentials are due (or missing) is decided by the first rule that applies:

1. Valid: not yet due; serve them. (With prefetch, "due" for callers comes a little
   after the thread's turn, so request threads never pay for a refresh it will do.)
2. Error memory: a refresh failed a moment ago with an error that retrying cannot fix
   (AccessDenied); raise it again without asking the source, so a retry loop that
   swallows the error cannot hammer STS.
3. Backoff: a refresh failed with an error a retry may fix (throttling, a network error);
   serve the cached credentials, expired ones included, and do not ask the source until
   the backoff ends, even after an invalidate. This is what keeps a fleet from
   stampeding a struggling STS.
4. Early window: due but more than the blocking window from expiry; one caller refreshes
   and nobody waits for it: the others (and the refresher, should it fail) are served the
   still-valid cache.
5. Blocking window: within a minute of expiry, expired, invalidated, or nothing cached;
   wait for the one refresh in flight (or start it), since the cache may not last the
   request.

What a failed refresh leaves behind (``after_failure``):

- an error that retrying cannot fix is remembered for a few seconds (rule 2), and raised
  now; there is no backoff, so the source is asked again once the memory ends;
- any other error, with credentials cached, starts a backoff (rule 3) drawn from the
  configured range (AWS: 300-600 s, jittered) but never longer than the cached credentials
  have left: a backoff that began while they were valid ends when they expire, and the
  source is asked again then (also when the wall clock steps forward past their expiry
  meanwhile: they are expired then). Once they have expired the whole drawn backoff applies, and
  they keep being served;
- any other error with nothing cached is raised, with no backoff: the next call retries.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, Optional

from .model import utc_text
from .records import frozen

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from .schedule import Entry

__all__ = [
    "NO_SETBACK",
    "Decision",
    "Setback",
    "after_failure",
    "backoff_after_failure",
    "decide",
    "failure_text",
]

_NEG_INF = float("-inf")
_POS_INF = float("inf")


@frozen
class Setback:
    """What failed refreshes left in force; replaced whole, so one read is consistent."""

    error: Optional[BaseException] = None  # remembered: retrying cannot fix it
    traceback: Optional[TracebackType] = None  # the first raise's, so it does not grow
    error_until: float = _NEG_INF  # end of the error memory (monotonic clock)
    backoff_until: float = _NEG_INF  # end of the backoff (monotonic clock)
    # The cached credentials' expiry (wall clock) when the backoff was capped at it: the
    # backoff also ends then, should the wall clock step forward past it meanwhile.
    backoff_capped_at: float = _POS_INF

    def backing_off(self, now: float, ticks: float) -> bool:
        """Whether the backoff is in force at wall ``now`` / monotonic ``ticks``."""
        return ticks < self.backoff_until and now < self.backoff_capped_at

    def blocked_until(self, now: float) -> float:
        """Until when (monotonic) nobody may ask the source (the prefetch thread included)."""
        backoff = self.backoff_until if now < self.backoff_capped_at else _NEG_INF
        return max(self.error_until, backoff)


#: No failure in force (fresh credentials clear every setback).
NO_SETBACK = Setback()


class Decision:
    """What a call whose credentials are due does (the engine executes it): one of the five
    constants below, compared by identity. Not an ``enum.Enum``: creating an enum class costs
    every process that imports the engine ~0.6 M instructions (``docs/performance.md``,
    "Short-lived processes"), for nothing the engine uses."""

    __slots__ = ("meaning", "name")

    SERVE: ClassVar[Decision]
    RAISE_REMEMBERED: ClassVar[Decision]
    SERVE_RATE_LIMITED: ClassVar[Decision]
    REFRESH_WITHOUT_WAITING: ClassVar[Decision]
    REFRESH_AND_WAIT: ClassVar[Decision]

    def __init__(self, name: str, meaning: str) -> None:
        self.name = name
        self.meaning = meaning

    def __repr__(self) -> str:
        return f"<Decision.{self.name}: {self.meaning!r}>"


Decision.SERVE = Decision("SERVE", "serve the cache, not yet due")
Decision.RAISE_REMEMBERED = Decision("RAISE_REMEMBERED", "raise the remembered error")
Decision.SERVE_RATE_LIMITED = Decision("SERVE_RATE_LIMITED", "serve the cache, backing off")
Decision.REFRESH_WITHOUT_WAITING = Decision(
    "REFRESH_WITHOUT_WAITING", "refresh if nobody is; otherwise serve the cache"
)
Decision.REFRESH_AND_WAIT = Decision(
    "REFRESH_AND_WAIT", "refresh, or wait for the refresh in flight"
)


def decide(
    now: float, ticks: float, entry: Optional[Entry], *, forced: bool, setback: Setback
) -> Decision:
    """The first rule of the module docstring that applies, checked in that order.

    ``now`` is the wall clock, ``ticks`` the monotonic one; ``forced`` is an invalidation
    not yet answered by a refresh.
    """
    if entry is not None and not forced and now < entry.callers_at:
        return Decision.SERVE  # 1. valid
    if ticks < setback.error_until:
        return Decision.RAISE_REMEMBERED  # 2. error memory
    if entry is not None and setback.backing_off(now, ticks):
        return Decision.SERVE_RATE_LIMITED  # 3. backoff
    if entry is not None and not forced and now < entry.mandatory_at:
        return Decision.REFRESH_WITHOUT_WAITING  # 4. early window
    return Decision.REFRESH_AND_WAIT  # 5. blocking window, expired, invalidated, nothing


def backoff_after_failure(
    backoff: tuple[float, float], draw: float, entry: Optional[Entry], now: float
) -> float:
    """Seconds to leave the source alone after a failure at ``now`` (``draw`` in [0, 1)).

    Capped at the time the cached credentials have left, so a backoff never outlasts
    them; with nothing left (expired, or nothing cached) the drawn backoff stands.
    """
    low, high = backoff
    drawn = low + (high - low) * draw
    left = entry.expires_at - now if entry is not None else 0.0
    return min(drawn, left) if left > 0 else drawn


def after_failure(
    previous: Setback,
    exc: BaseException,
    *,
    recoverable: bool,
    entry: Optional[Entry],
    now: float,
    ticks: float,
    error_memory: float,
    backoff: tuple[float, float],
    random: Callable[[], float],
) -> Setback:
    """The setback a failed refresh at ``now`` (wall) / ``ticks`` (monotonic) leaves (see
    the module docstring): its deadlines on the monotonic clock."""
    if not recoverable:
        return replace(
            previous, error=exc, traceback=exc.__traceback__, error_until=ticks + error_memory
        )
    if entry is None:
        return previous
    seconds = backoff_after_failure(backoff, random(), entry, now)
    # Capped at their expiry (they were valid): it ends then on the wall clock too, so a
    # forward step of the wall clock past the expiry does not keep serving them expired.
    capped_at = entry.expires_at if now < entry.expires_at else _POS_INF
    return replace(previous, backoff_until=ticks + seconds, backoff_capped_at=capped_at)


def failure_text(
    exc: BaseException,
    recoverable: bool,
    entry: Optional[Entry],
    setback: Setback,
    now: float,
    ticks: float,
) -> str:
    """The log line for a failed refresh: what happened, and what the policy does next."""
    if not recoverable:
        return (
            f"refresh failed and retrying cannot fix it: {exc}; raising it for "
            f"{setback.error_until - ticks:.0f} s without contacting the source"
        )
    if entry is None:
        return f"fetching credentials failed and none are cached: {exc}"
    backoff = setback.backoff_until - ticks
    left = entry.expires_at - now
    until_expiry = ", until they expire" if 0 < left <= backoff else ""
    return (
        f"refresh failed: {exc}; serving cached credentials {entry.credentials.access_key_id} "
        f"(expiring {utc_text(entry.credentials.expiration)}) and not contacting the source "
        f"again for {backoff:.0f} s{until_expiry}"
    )
