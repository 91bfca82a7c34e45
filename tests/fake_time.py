"""A fake clock shared by the refresh engine and moto's STS, for tests that move time.

It is both of the engine's clocks: ``advance`` moves the wall clock and the monotonic one
together (time passing), ``step_wall`` moves the wall clock alone (NTP, a resumed VM).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass
class FakeClock:
    now: float
    ticks: float = 5_000.0  # the monotonic clock's reading

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.ticks += seconds

    def step_wall(self, seconds: float) -> None:
        """The wall clock jumps by ``seconds`` (either way); no time passes."""
        self.now += seconds

    def utc(self) -> datetime.datetime:
        """moto's form: naive UTC."""
        return datetime.datetime.fromtimestamp(self.now, datetime.timezone.utc).replace(tzinfo=None)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """The provider's engine clock and moto's STS clock (moto runs in this process), as one.

    Hours pass in a test without sleeping: credentials moto issues expire in fake time, and
    the engine judges them in fake time.
    """
    import moto.sts.models

    from assume_provider.botocore import provider as provider_module

    clock = FakeClock(datetime.datetime.now(datetime.timezone.utc).timestamp())
    monkeypatch.setattr(provider_module, "clock", clock)
    monkeypatch.setattr(provider_module, "monotonic", clock.monotonic)
    monkeypatch.setattr(moto.sts.models, "utcnow", clock.utc)
    yield clock
