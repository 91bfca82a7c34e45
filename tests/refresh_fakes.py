"""Fakes shared by the refresh engine's tests: settable clocks and the two kinds of failure."""

from __future__ import annotations

T0 = 1_700_000_000.0
TICKS0 = 5_000.0  # a monotonic clock starts anywhere; not at T0, so a mix-up shows


class FakeClock:
    """The engine's two clocks; tests set ``now`` (no real waiting).

    Setting ``now`` moves the wall clock and the monotonic clock (``monotonic``) together,
    as real time passing does; ``step_wall`` moves the wall clock alone, as NTP or a
    resumed VM does. Pass ``clock=clock, monotonic=clock.monotonic`` to the engine.
    """

    def __init__(self, now: float = T0) -> None:
        self._now = now
        self._ticks = TICKS0

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        self._ticks += value - self._now
        self._now = value

    def monotonic(self) -> float:
        return self._ticks

    def step_wall(self, seconds: float) -> None:
        """The wall clock jumps by ``seconds`` (either way); no real time passes."""
        self._now += seconds


class SourceDown(Exception):
    """A failure a retry may fix (throttling, a network error): the engine backs off."""


class AccessDenied(Exception):
    """A failure no retry fixes: the engine raises it at once and remembers it briefly."""

    recoverable = False
