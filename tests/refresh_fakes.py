"""Fakes shared by the refresh engine's tests: a settable clock and the two kinds of failure."""

from __future__ import annotations

T0 = 1_700_000_000.0


class FakeClock:
    """The engine's clock; tests set ``now`` (no real waiting)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SourceDown(Exception):
    """A failure a retry may fix (throttling, a network error): the engine backs off."""


class AccessDenied(Exception):
    """A failure no retry fixes: the engine raises it at once and remembers it briefly."""

    recoverable = False
