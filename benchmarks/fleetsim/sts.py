"""The simulated STS, and the SDK client in front of it (standard retry mode).

STS is modelled by what a fleet feels: a request rate it admits per second (above it,
``Throttling``), a latency, and a brownout period in which it answers errors or slowly.
The client is botocore's standard retry mode, which both policies use (this project's
STS client sets it; botocore 1.44 defaults to it): 3 attempts, throttling and 5xx
retried after ``random() * 2 ** (attempt - 1)`` seconds (at most 20). Its retry quota is
not modelled (botocore's assume-role fetcher makes a new client for each refresh).

Time: one simulated clock for the whole fleet (``SimClock``). A request is answered
synchronously: the client advances the clock by the latency and the retry delays, so a
fetch that started at ``t`` returns with the clock at the instant its answer arrived.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

#: Simulated time 0 on the wall clock (POSIX seconds): credentials' Expiration is absolute.
EPOCH = 1_800_000_000.0


class SimClock:
    """The simulated time in seconds since the scenario began (monotonic and wall)."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def wall(self) -> float:
        return EPOCH + self.now

    def monotonic(self) -> float:
        return self.now


@dataclass(frozen=True)
class StsSettings:
    """STS and client parameters; every default is a guess stated in docs/performance.md."""

    throttle_per_second: int = 600  # requests admitted per second (account and region)
    latency: float = 0.15  # seconds for a successful AssumeRole
    error_latency: float = 0.05  # seconds for a throttling or 5xx answer
    brownout: Optional[tuple[float, float]] = None  # [start, end) in simulated seconds
    brownout_mode: str = "errors"  # "errors": 5xx; "slow": answers after slow_latency
    slow_latency: float = 5.0
    lifetime: float = 3600.0  # DurationSeconds of the issued credentials
    sdk_attempts: int = 3  # botocore standard retry mode
    sdk_max_backoff: float = 20.0


class StsError(Exception):
    """An AssumeRole that failed after the client's retries (throttled, or a 5xx)."""

    recoverable = True  # what the engine reads: a retry later may succeed

    def __init__(self, code: str) -> None:
        super().__init__(f"AssumeRole failed: {code}")
        self.error_code = code


class SimulatedSts:
    """Counts every request per simulated second and decides each one's answer."""

    def __init__(self, settings: StsSettings, duration: float, clock: SimClock) -> None:
        self.settings = settings
        self.clock = clock
        size = int(duration) + 600  # room for answers that arrive after the end
        self.requests = array("l", bytes(8 * size))  # per second
        self.throttled = array("l", bytes(8 * size))
        self._admitted = array("l", bytes(8 * size))

    def _second(self, at: float) -> int:
        return min(max(int(at), 0), len(self.requests) - 1)

    def _request(self, at: float) -> tuple[float, Optional[str]]:
        """One request sent at ``at``: (seconds until its answer, error code or None)."""
        s = self.settings
        second = self._second(at)
        self.requests[second] += 1
        if self._admitted[second] >= s.throttle_per_second:
            self.throttled[second] += 1
            return s.error_latency, "Throttling"
        self._admitted[second] += 1
        if s.brownout is not None and s.brownout[0] <= at < s.brownout[1]:
            if s.brownout_mode == "errors":
                return s.error_latency, "InternalFailure"
            return s.slow_latency, None
        return s.latency, None

    def assume_role(self, random: Callable[[], float]) -> float:
        """One client call with its retries, from the clock's now; the expiration (wall)."""
        s = self.settings
        clock = self.clock
        code = "none"
        for attempt in range(1, s.sdk_attempts + 1):
            took, error = self._request(clock.now)
            clock.now += took
            if error is None:
                return clock.wall() + s.lifetime
            code = error
            if attempt < s.sdk_attempts:
                clock.now += min(random() * 2 ** (attempt - 1), s.sdk_max_backoff)
        raise StsError(code)
