"""The refresh policy as a table: which rule wins, and how long a failure holds the source off.

``decide`` and ``after_failure`` are pure, so each rule and its precedence over the next is
checked here directly, without threads or a source; the scenario tests check the same
behaviour through the engine.
"""

from __future__ import annotations

from typing import Optional

import pytest
from refresh_fakes import T0, AccessDenied, SourceDown

from assume_provider.engine.model import TemporaryCredentials
from assume_provider.engine.policy import (
    NO_SETBACK,
    Decision,
    Setback,
    after_failure,
    backoff_after_failure,
    decide,
)
from assume_provider.engine.schedule import Entry

EXPIRES = T0 + 3600
# Due for callers 15 minutes before expiry, blocking from 1 minute before.
ENTRY = Entry(
    TemporaryCredentials("AKID", "S", "T", EXPIRES),
    expires_at=EXPIRES,
    mandatory_at=EXPIRES - 60,
    refresh_at=EXPIRES - 900,
    callers_at=EXPIRES - 900,
    advisory_window=900.0,
)
VALID, EARLY, BLOCKING, EXPIRED = EXPIRES - 1000, EXPIRES - 600, EXPIRES - 30, EXPIRES + 60
REMEMBERED = Setback(error=AccessDenied("denied"), error_until=float("inf"))
BACKING_OFF = Setback(backoff_until=float("inf"))
BOTH = Setback(error=AccessDenied("denied"), error_until=float("inf"), backoff_until=float("inf"))


@pytest.mark.parametrize(
    ("now", "entry", "forced", "setback", "expected"),
    [
        # 1. valid: served, whatever failed before (a setback only matters once due)
        (VALID, ENTRY, False, BOTH, Decision.SERVE),
        # ... unless invalidated: then the rules below decide
        (VALID, ENTRY, True, NO_SETBACK, Decision.REFRESH_AND_WAIT),
        (VALID, ENTRY, True, BACKING_OFF, Decision.SERVE_RATE_LIMITED),
        # 2. error memory beats the backoff and every refresh, cached or not
        (EARLY, ENTRY, False, BOTH, Decision.RAISE_REMEMBERED),
        (EXPIRED, None, False, REMEMBERED, Decision.RAISE_REMEMBERED),
        # 3. backoff: the cache is served, expired or invalidated included
        (EARLY, ENTRY, False, BACKING_OFF, Decision.SERVE_RATE_LIMITED),
        (BLOCKING, ENTRY, False, BACKING_OFF, Decision.SERVE_RATE_LIMITED),
        (EXPIRED, ENTRY, True, BACKING_OFF, Decision.SERVE_RATE_LIMITED),
        # ... but with nothing cached there is nothing to serve: fetch
        (EXPIRED, None, False, BACKING_OFF, Decision.REFRESH_AND_WAIT),
        # 4. early window: refresh, nobody waits
        (EARLY, ENTRY, False, NO_SETBACK, Decision.REFRESH_WITHOUT_WAITING),
        # 5. blocking window, expired, nothing cached: wait for the refresh
        (BLOCKING, ENTRY, False, NO_SETBACK, Decision.REFRESH_AND_WAIT),
        (EXPIRED, ENTRY, False, NO_SETBACK, Decision.REFRESH_AND_WAIT),
        (VALID, None, False, NO_SETBACK, Decision.REFRESH_AND_WAIT),
    ],
)
def test_decide_applies_the_first_rule_that_holds(
    now: float, entry: Optional[Entry], forced: bool, setback: Setback, expected: Decision
) -> None:
    # The same instant on both clocks here; the test below tells them apart.
    assert decide(now, now, entry, forced=forced, setback=setback) is expected


def test_decide_measures_the_backoff_and_the_error_memory_on_the_monotonic_clock() -> None:
    ticks = 5_000.0  # the monotonic clock, at the failure
    backed_off = Setback(backoff_until=ticks + 300)
    remembered = Setback(error=AccessDenied("denied"), error_until=ticks + 5)
    # Invalidated (forced), so rule 1 (valid on the wall clock) does not hide the others.
    for wall in (BLOCKING - 3600, BLOCKING, BLOCKING + 3600):  # the wall clock stepped
        assert decide(wall, ticks + 299, ENTRY, forced=True, setback=backed_off) is (
            Decision.SERVE_RATE_LIMITED
        )
        assert decide(wall, ticks + 4, ENTRY, forced=True, setback=remembered) is (
            Decision.RAISE_REMEMBERED
        )
    assert decide(BLOCKING - 3600, ticks + 300, ENTRY, forced=True, setback=backed_off) is (
        Decision.REFRESH_AND_WAIT
    )
    assert decide(BLOCKING + 3600, ticks + 5, ENTRY, forced=True, setback=remembered) is (
        Decision.REFRESH_AND_WAIT
    )


@pytest.mark.parametrize(
    ("now", "draw", "expected"),
    [
        (EXPIRES - 3000, 0.5, 450.0),  # far from expiry: the drawn backoff
        (EXPIRES - 600, 0.999, 599.7),
        (EXPIRES - 300, 0.5, 300.0),  # cut to the time left
        (EXPIRES - 30, 0.0, 30.0),
        (EXPIRES, 0.5, 450.0),  # expired: the drawn backoff again
        (EXPIRED, 0.0, 300.0),
    ],
)
def test_backoff_never_outlasts_the_cached_credentials(
    now: float, draw: float, expected: float
) -> None:
    assert backoff_after_failure((300.0, 600.0), draw, ENTRY, now) == pytest.approx(expected)


def test_backoff_without_an_expiry_or_a_cache_is_the_drawn_one() -> None:
    never = Entry(ENTRY.credentials, float("inf"), float("inf"), float("inf"), float("inf"), None)
    assert backoff_after_failure((300.0, 600.0), 0.5, never, T0) == 450.0
    assert backoff_after_failure((300.0, 600.0), 0.5, None, T0) == 450.0


TICKS_OFFSET = -1_699_000_000.0  # the monotonic clock's reading minus the wall clock's


def fail(exc: Exception, *, recoverable: bool, entry: Optional[Entry], now: float) -> Setback:
    return after_failure(
        NO_SETBACK,
        exc,
        recoverable=recoverable,
        entry=entry,
        now=now,
        ticks=now + TICKS_OFFSET,
        error_memory=5.0,
        backoff=(300.0, 600.0),
        random=lambda: 0.5,
    )


def test_after_failure_remembers_fatal_errors_and_backs_off_from_the_others() -> None:
    denied = AccessDenied("denied")
    fatal = fail(denied, recoverable=False, entry=ENTRY, now=EARLY)
    assert fatal.error is denied and fatal.error_until == EARLY + TICKS_OFFSET + 5
    assert fatal.backoff_until == float("-inf")  # no backoff: asked again after 5 s

    down = SourceDown("down")
    backed = fail(down, recoverable=True, entry=ENTRY, now=BLOCKING)
    # cut at expiry: as long as the credentials have left, on the monotonic clock
    assert backed.error is None and backed.backoff_until == EXPIRES + TICKS_OFFSET
    assert backed.blocked_until(BLOCKING) == EXPIRES + TICKS_OFFSET
    assert backed.blocked_until(EXPIRES) == float("-inf")  # the wall clock says expired

    nothing = fail(down, recoverable=True, entry=None, now=EARLY)
    assert nothing is NO_SETBACK  # nothing cached: raise, and let the next call retry
