"""AWS's 24 cross-SDK credential-refresh scenarios, as a table run against the engine.

Each scenario starts from cached credentials in a given state, then runs steps: a call to
get() (with what the source answers if it is asked), an invalidation, or a clock advance.
After each get() we check which credentials came back (or which error), whether the
source was contacted, whether the call was rate limited by the refresh backoff, and,
where the scenario says so, the advisory window chosen.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional, Union

import pytest
from refresh_fakes import AccessDenied, FakeClock, SourceDown

from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials

MINUTE = 60.0


class ScriptedSource:
    """The credential source: answers from a queue and counts every contact."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls = 0
        self.issued: list[TemporaryCredentials] = []
        self.script: deque[Callable[[], TemporaryCredentials]] = deque()
        self.lock = threading.Lock()

    def __call__(self) -> TemporaryCredentials:
        with self.lock:
            self.calls += 1
            if not self.script:
                raise RuntimeError("the source was contacted but the test expected no contact")
            answer = self.script.popleft()
        return answer()

    def queue(self, response: Response, lifetime: float) -> None:
        def fresh() -> TemporaryCredentials:
            new = TemporaryCredentials(
                f"AKID-NEW-{len(self.issued) + 1}", "NEW-SECRET", "NEW-TOKEN",
                self.clock.now + lifetime,
            )
            self.issued.append(new)
            return new

        def stale() -> TemporaryCredentials:
            return TemporaryCredentials("AKID-STALE", "S", "T", self.clock.now)

        def error() -> TemporaryCredentials:
            raise SourceDown("Throttling: Rate exceeded")

        def fatal() -> TemporaryCredentials:
            raise AccessDenied("AccessDenied: not authorized to perform sts:AssumeRole")

        self.script.append({FRESH: fresh, STALE: stale, ERROR: error, FATAL: fatal}[response])


# What the source answers when asked.
Response = str
FRESH, STALE, ERROR, FATAL = "fresh", "stale", "error", "fatal"
# What the caller observes.
CACHED, NEW, RAISES, RAISES_FATAL = "cached", "new", "raises", "raises-fatal"

# Cached credentials' expiry relative to the start of each scenario. The engine only knows
# the time left for credentials it did not fetch itself, so it sizes their advisory window
# from that (<= 20 min: 5 min); 90 s left is past any jitter of that window's start.
CACHED_STATE: dict[str, Optional[float]] = {
    "valid": 2 * 3600.0,
    "advisory": 90.0,
    "mandatory": 30.0,
    "expired": -60.0,
    "none": None,
}


@dataclass(frozen=True)
class Get:
    """Call get(); if the source is asked it answers `source`."""

    expect: str
    contacted: bool
    rate_limited: bool = False
    source: Optional[Response] = None
    lifetime: float = 3600.0
    advisory_window: Optional[float] = None


@dataclass(frozen=True)
class Advance:
    seconds: float


@dataclass(frozen=True)
class Invalidate:
    access_key_id: str


Step = Union[Get, Advance, Invalidate]


@dataclass(frozen=True)
class Scenario:
    id: str
    cached: str
    steps: list[Step]
    cached_key: str = "AKID-CACHED"
    advisory_window: Optional[float] = None
    backoff: Optional[float] = None  # the backoff the injected randomness draws
    doc: str = field(default="", compare=False)


SCENARIOS = [
    Scenario("valid-is-served", "valid", [Get(CACHED, contacted=False)],
             doc="valid cached credentials are served without asking the source"),
    Scenario("advisory-refresh-ok", "advisory", [Get(NEW, contacted=True, source=FRESH)]),
    Scenario("advisory-refresh-fails", "advisory", [Get(CACHED, contacted=True, source=ERROR)],
             doc="a failed early refresh backs off and serves the cache"),
    Scenario("mandatory-refresh-ok", "mandatory", [Get(NEW, contacted=True, source=FRESH)]),
    Scenario("mandatory-refresh-fails", "mandatory",
             [Get(CACHED, contacted=True, source=ERROR)]),
    Scenario("expired-refresh-ok", "expired", [Get(NEW, contacted=True, source=FRESH)]),
    Scenario("expired-refresh-fails", "expired", [Get(CACHED, contacted=True, source=ERROR)],
             doc="expired credentials are still served rather than raising"),
    Scenario("none-fails-then-retries", "none", [
        Get(RAISES, contacted=True, source=ERROR),
        Get(NEW, contacted=True, source=FRESH),
    ], doc="nothing to fall back on: raise; no backoff, so the next call retries"),
    Scenario("advisory-stale-answer", "advisory", [Get(CACHED, contacted=True, source=STALE)],
             doc="credentials that expire at or before now count as a failed refresh"),
    Scenario("mandatory-stale-answer", "mandatory",
             [Get(CACHED, contacted=True, source=STALE)]),
    Scenario("window-10min-lifetime", "none", [
        Get(NEW, contacted=True, source=FRESH, lifetime=10 * MINUTE, advisory_window=5 * MINUTE),
    ]),
    Scenario("window-20.5min-lifetime", "none", [
        Get(NEW, contacted=True, source=FRESH, lifetime=20.5 * MINUTE,
            advisory_window=15 * MINUTE),
    ]),
    Scenario("window-6h-lifetime", "none", [
        Get(NEW, contacted=True, source=FRESH, lifetime=6 * 3600, advisory_window=60 * MINUTE),
    ]),
    Scenario("window-recomputed-after-refresh", "none", [
        Get(NEW, contacted=True, source=FRESH, lifetime=6 * 3600, advisory_window=60 * MINUTE),
        Advance(6 * 3600 - 59 * MINUTE),  # 59 minutes left: inside the 60-minute window
        Get(NEW, contacted=True, source=FRESH, lifetime=10 * MINUTE, advisory_window=5 * MINUTE),
    ]),
    Scenario("window-configured-overrides", "none", [
        Get(NEW, contacted=True, source=FRESH, lifetime=6 * 3600, advisory_window=30 * MINUTE),
    ], advisory_window=30 * MINUTE),
    Scenario("advisory-fatal-then-recovers", "advisory", [
        Get(RAISES_FATAL, contacted=True, source=FATAL),
        Advance(6),
        Get(NEW, contacted=True, source=FRESH),
    ], doc="no backoff after a fatal error; it is remembered for 5 s only"),
    Scenario("mandatory-fatal-then-recovers", "mandatory", [
        Get(RAISES_FATAL, contacted=True, source=FATAL),
        Advance(6),
        Get(NEW, contacted=True, source=FRESH),
    ]),
    Scenario("fatal-remembered", "advisory", [
        Get(RAISES_FATAL, contacted=True, source=FATAL),
        Get(RAISES_FATAL, contacted=False),
    ], doc="a retry loop that swallows the error cannot hammer the source"),
    Scenario("invalidate-then-refresh-ok", "valid", [
        Invalidate("AKID-1"),
        Get(NEW, contacted=True, source=FRESH),
    ], cached_key="AKID-1"),
    Scenario("invalidate-then-refresh-fails", "valid", [
        Invalidate("AKID-1"),
        Get(CACHED, contacted=True, source=ERROR),
    ], cached_key="AKID-1"),
    Scenario("invalidate-during-backoff", "expired", [
        Get(CACHED, contacted=True, source=ERROR),
        Advance(60),
        Invalidate("AKID-1"),
        Get(CACHED, contacted=False, rate_limited=True),
        Advance(425),  # 485 s in all: past the 420 s backoff
        Get(NEW, contacted=True, source=FRESH),
    ], cached_key="AKID-1", backoff=420),
    Scenario("invalidate-stale-key-ignored", "valid", [
        Invalidate("AKID-1"),
        Get(CACHED, contacted=False),
    ], cached_key="AKID-2", doc="a concurrent refresh already replaced AKID-1"),
    Scenario("backoff-holds-then-elapses", "expired", [
        Get(CACHED, contacted=True, source=ERROR),
        Advance(300),
        Get(CACHED, contacted=False, rate_limited=True),
        Advance(425),  # 725 s in all: past the 420 s backoff
        Get(NEW, contacted=True, source=FRESH),
    ], backoff=420),
    Scenario("none-fatal-then-recovers", "none", [
        Get(RAISES_FATAL, contacted=True, source=FATAL),
        Advance(6),
        Get(NEW, contacted=True, source=FRESH),
    ], doc="the fatal error itself is raised, not a generic 'no credentials'"),
]


def test_every_scenario_is_encoded() -> None:
    assert len(SCENARIOS) == 24
    assert len({s.id for s in SCENARIOS}) == 24


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    clock = FakeClock()
    source = ScriptedSource(clock)
    low, high = 300.0, 600.0
    # One injected randomness drives both the backoff and the early-refresh jitter; 0 puts
    # the refresh at the very start of the advisory window, as the scenarios assume.
    draw = 0.0 if scenario.backoff is None else (scenario.backoff - low) / (high - low)
    offset = CACHED_STATE[scenario.cached]
    cached = None
    if offset is not None:
        cached = TemporaryCredentials(
            scenario.cached_key, "CACHED-SECRET", "CACHED-TOKEN", clock.now + offset
        )
    engine = RefreshingCredentials(
        source,
        clock=clock,
        monotonic=clock.monotonic,
        random=lambda: draw,
        advisory_window=scenario.advisory_window,
        backoff=(low, high),
        initial=cached,
    )

    for number, step in enumerate(scenario.steps, 1):
        where = f"{scenario.id} step {number}: {step}"
        if isinstance(step, Advance):
            clock.now += step.seconds
            continue
        if isinstance(step, Invalidate):
            engine.invalidate(step.access_key_id)
            continue
        if step.source is not None:
            source.queue(step.source, step.lifetime)
        calls_before = source.calls
        limited_before = engine.stats.rate_limited

        if step.expect == RAISES:
            with pytest.raises(SourceDown):
                engine.get()
        elif step.expect == RAISES_FATAL:
            with pytest.raises(AccessDenied):
                engine.get()
        else:
            result = engine.get()
            wanted = cached if step.expect == CACHED else source.issued[-1]
            assert result is wanted, where
            assert engine.current is wanted, where

        assert (source.calls - calls_before == 1) is step.contacted, where
        assert source.calls - calls_before <= 1, where
        assert (engine.stats.rate_limited - limited_before == 1) is step.rate_limited, where
        if step.advisory_window is not None:
            assert engine.advisory_window == step.advisory_window, where
    assert not source.script, f"{scenario.id}: a scripted answer was never asked for"
