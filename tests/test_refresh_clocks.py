"""The wall clock steps (NTP, a resumed VM) in the middle of a backoff: the backoff lasts its
real duration, measured on the monotonic clock, whichever way the wall clock jumped.

Both clocks are injected (``refresh_fakes.FakeClock``): setting ``now`` is time passing and
moves both; ``step_wall`` is a jump of the wall clock alone. Counts are asserted, not times.
"""

from __future__ import annotations

import pytest
from refresh_fakes import T0, AccessDenied, FakeClock, SourceDown

from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials

HOUR = 3600.0
BACKOFF = 450.0  # (300, 600) with the draw 0.5
EXPIRY = T0 + HOUR


class Source:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> TemporaryCredentials:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return TemporaryCredentials(f"AKID-{self.calls}", "S", "T", self.clock.now + HOUR)


def make() -> tuple[RefreshingCredentials, Source, FakeClock]:
    clock = FakeClock()
    source = Source(clock)
    engine = RefreshingCredentials(
        source, clock=clock, monotonic=clock.monotonic, random=lambda: 0.5
    )
    return engine, source, clock


JUMPS = {
    "back an hour": {100: -HOUR},
    "forward an hour": {100: HOUR},
    "back, then forward": {100: -HOUR, 200: HOUR},
    "forward, then back": {100: HOUR, 200: -HOUR},
}


@pytest.mark.parametrize("name", list(JUMPS))
def test_a_backoff_lasts_its_real_duration_whatever_the_wall_clock_does(name: str) -> None:
    engine, source, clock = make()
    first = engine.get()
    clock.now = EXPIRY + 5  # expired: the refresh fails, the whole drawn backoff applies
    source.error = SourceDown("Throttling: Rate exceeded")
    assert engine.get() is first  # served, expired, during the backoff
    assert source.calls == 2
    source.error = None  # STS is back; only the backoff keeps the engine from asking

    jumps = JUMPS[name]
    for elapsed in range(1, int(BACKOFF)):  # each real second of the backoff
        clock.now += 1
        if elapsed in jumps:
            clock.step_wall(jumps[elapsed])
        # A service answered ExpiredToken (the credentials are expired at AWS, whatever the
        # local wall clock says): the application's retry invalidates and asks again.
        engine.invalidate()
        assert engine.get() is first, f"{elapsed} s into the backoff"
        assert source.calls == 2, f"STS asked {elapsed} s into a {BACKOFF:.0f} s backoff"

    clock.now += 1  # the backoff's real duration has passed
    engine.invalidate()
    fresh = engine.get()
    assert source.calls == 3
    assert fresh is not first and fresh.access_key_id == "AKID-3"


@pytest.mark.parametrize("name", list(JUMPS))
def test_the_prefetch_thread_sleeps_out_the_real_backoff(name: str) -> None:
    engine, source, clock = make()
    engine.get()
    clock.now = EXPIRY + 5
    source.error = SourceDown("down")
    engine.get()
    elapsed = 0
    for at, jump in JUMPS[name].items():
        clock.now += at - elapsed
        elapsed = at
        clock.step_wall(jump)
    clock.now += BACKOFF - 10 - elapsed  # 10 s of the backoff left, really
    engine.invalidate()
    assert engine._prefetch_step() == pytest.approx(10.0)
    assert source.calls == 2


def test_the_error_memory_lasts_its_real_duration() -> None:
    engine, source, clock = make()
    engine.get()
    clock.now = EXPIRY - 30
    source.error = AccessDenied("AccessDenied")
    with pytest.raises(AccessDenied):
        engine.get()
    clock.step_wall(HOUR)  # the wall clock leaps past the 5 s memory at once
    clock.now += 4
    with pytest.raises(AccessDenied):
        engine.get()
    assert source.calls == 2  # remembered: not asked again
    clock.step_wall(-2 * HOUR)  # and back past where it began
    clock.now += 1  # the memory's real 5 s have passed
    source.error = None
    engine.invalidate()
    engine.get()
    assert source.calls == 3


def test_expiration_is_judged_on_the_wall_clock() -> None:
    """The one comparison that must stay on the wall clock: Expiration is an instant."""
    engine, source, clock = make()
    first = engine.get()
    clock.step_wall(HOUR + 1)  # no time passed, but the wall clock says expired
    assert engine.get() is not first
    assert source.calls == 2


def test_a_backoff_capped_at_expiry_ends_when_the_wall_clock_says_they_expired() -> None:
    """The backoff began while the cache was valid, so it was capped at their expiry (the
    policy: never past what the cached credentials have left). The wall clock then steps
    forward past that expiry: they are expired now (``Expiration`` is judged on the wall
    clock), so the cap has been reached and the source is asked at once, not after the rest
    of the capped backoff's monotonic duration, serving expired credentials meanwhile."""
    engine, source, clock = make()
    first = engine.get()
    clock.now = EXPIRY - 120  # in the blocking window: 120 s left, less than any backoff
    source.error = SourceDown("Throttling: Rate exceeded")
    assert engine.get() is first  # served; the backoff is capped at the 120 s they have left
    assert source.calls == 2
    source.error = None
    clock.now += 10
    clock.step_wall(HOUR)  # NTP: the wall clock was an hour slow; they expired long ago
    engine.invalidate()  # and AWS said ExpiredToken
    fresh = engine.get()
    assert source.calls == 3, "served expired credentials for the rest of a capped backoff"
    assert fresh is not first
