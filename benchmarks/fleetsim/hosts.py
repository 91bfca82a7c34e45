"""The two host models: this project's engine, and botocore's own refreshable credentials.

Both run the real policy code on the simulated clock; neither is a re-implementation.

- ``EngineHost``: ``assume_provider.engine.refresh.RefreshingCredentials`` with the clock,
  the monotonic clock and the randomness injected, its defaults otherwise (1-minute
  blocking window, 15-minute early window for 1-hour credentials with its jittered start,
  300-600 s backoff, no prefetch thread).
- ``BotocoreHost``: ``botocore.credentials.DeferredRefreshableCredentials`` (what botocore's
  ``role_arn`` profile builds) with its ``time_fetcher`` injected: 15-minute advisory and
  10-minute mandatory windows, no backoff. Its refresh function models
  ``AssumeRoleCredentialFetcher``: a cached response is reused while it has 15 minutes
  left, which a refresh (only ever asked for inside the advisory window) never finds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, Optional

import botocore.credentials
from botocore.credentials import DeferredRefreshableCredentials

from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials

from .loop import HostState, Simulation
from .sts import EPOCH, StsError

#: The engine's blocking window (its default), which decides whether a call made during
#: a flight waits for it.
ENGINE_MANDATORY = 60.0
#: botocore's windows (RefreshableCredentials' class defaults) and the fetcher's cache window.
BOTOCORE_ADVISORY = 15 * 60.0
BOTOCORE_MANDATORY = 10 * 60.0
BOTOCORE_CACHE_WINDOW = 15 * 60.0


class EngineHost:
    """A host whose application threads share one ``RefreshingCredentials``."""

    __slots__ = ("engine", "sim", "state")

    def __init__(self, sim: Simulation, index: int, start: float) -> None:
        self.sim = sim
        self.state = HostState(start)
        self.engine = RefreshingCredentials(
            self._fetch,
            clock=sim.clock.wall,
            monotonic=sim.clock.monotonic,
            random=sim.random,
            backoff=sim.backoff,
            name=f"host-{index}",
        )

    def _fetch(self) -> TemporaryCredentials:
        expiration = self.sim.fetch(self.state)
        return TemporaryCredentials("ASIASIMULATED", "secret", "token", expiration)

    def call(self, at: float) -> float:
        sim, host = self.sim, self.state
        think = sim.fleet.think_time
        if at < host.flight_end:  # another thread holds the refresh lock
            if at < host.pre_valid_until - ENGINE_MANDATORY:
                sim.served(host, at, host.pre_valid_until)  # early window: the old cache
                return at + think
            # Blocking window (or nothing cached): wait, and share the flight's outcome.
            sim.served(host, host.flight_end, host.flight_outcome)
            return host.flight_end + think
        before = host.fetches
        expiry: Optional[float]
        try:
            expiry = self._get()
        except StsError:
            expiry = None
        end = sim.clock.now
        if host.fetches != before:
            host.flight_outcome = expiry
            if host.fetches > before + 1:
                sim.metrics.calls_with_two_fetches += 1
        sim.served(host, end, expiry)
        quiet, served_until = self._quiet(end)
        return sim.skip(host, end + think, quiet, served_until)

    def _get(self) -> float:
        expiration = self.engine.get().expiration
        assert expiration is not None
        return expiration - EPOCH

    def _quiet(self, now: float) -> tuple[float, float]:
        """Until when calls only get the cache, and until when that cache is valid."""
        current = self.engine.current
        if current is None or current.expiration is None:
            return now, now
        expiry = current.expiration - EPOCH
        refresh_at = self.engine.refresh_at
        if refresh_at is not None and refresh_at - EPOCH > now:
            return refresh_at - EPOCH, expiry
        # In a backoff the engine serves the cache and asks nobody until it ends. The end
        # is not public (a seam the engine lacks); read it to skip, never to decide.
        blocked_until: float = self.engine._setback.blocked_until(EPOCH + now)
        return max(now, blocked_until), expiry


class BotocoreHost:
    """A host whose application threads share botocore's assume-role credentials."""

    __slots__ = ("cached", "credentials", "sim", "state")

    def __init__(self, sim: Simulation, index: int, start: float) -> None:
        del index
        self.sim = sim
        self.state = HostState(start)
        self.cached: Optional[dict[str, Any]] = None  # the fetcher's cached response
        self.credentials = DeferredRefreshableCredentials(
            refresh_using=self._fetch_credentials,
            method="assume-role",
            time_fetcher=self._now,
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.sim.clock.wall(), timezone.utc)

    def _fetch_credentials(self) -> dict[str, Any]:
        cached = self.cached
        left = cached["_expires"] - self.sim.clock.wall() if cached is not None else 0.0
        if cached is not None and left >= BOTOCORE_CACHE_WINDOW:
            return cached
        expiration = self.sim.fetch(self.state)
        self.cached = {
            "access_key": "ASIASIMULATED",
            "secret_key": "secret",
            "token": "token",
            "expiry_time": datetime.fromtimestamp(expiration, timezone.utc).isoformat(),
            "_expires": expiration,
        }
        return self.cached

    def call(self, at: float) -> float:
        sim, host = self.sim, self.state
        think = sim.fleet.think_time
        if at < host.flight_end:  # another thread holds the refresh lock
            if host.pre_valid_until - at >= BOTOCORE_MANDATORY:
                sim.served(host, at, host.pre_valid_until)  # advisory: the old credentials
                return at + think
            # Mandatory: block on the lock, then check again (and refresh again) itself.
            return host.flight_end
        try:
            self.credentials.get_frozen_credentials()
            expiry: Optional[float] = host.valid_until
        except StsError:
            expiry = None
        end = sim.clock.now
        sim.served(host, end, expiry)
        quiet = host.valid_until - BOTOCORE_ADVISORY
        return sim.skip(host, end + think, quiet, host.valid_until)


@contextlib.contextmanager
def fast_expiry_parsing() -> Iterator[None]:
    """Parse the ISO 8601 expiry this simulation hands botocore with ``fromisoformat``.

    botocore parses ``expiry_time`` with dateutil, which took half of a botocore run; for
    the strings made here both give the same datetime, so the policy is unchanged. Any
    other value goes to botocore's own parser. Restored when the block ends.
    """
    original = botocore.credentials.parse

    def parse(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and not args and not kwargs:
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value)
        return original(value, *args, **kwargs)

    botocore.credentials.parse = parse
    try:
        yield
    finally:
        botocore.credentials.parse = original
