"""The event loop and the fleet's bookkeeping: what every host model shares.

Events are application calls: each host runs ``threads`` application threads, each calling
for credentials, doing ``think_time`` seconds of work with them, and calling again (a
closed loop, so a thread blocked on a refresh makes no calls meanwhile). One heap entry per
thread, ``(time, sequence, host)``; the sequence keeps equal times in push order, so the run
is deterministic for a seed.

Single flight in a sequential simulation: a host's refresh runs to completion inside the
call that started it (the simulated STS advances the clock to the instant its answer
arrives), and the host records that the flight lasted ``[flight_start, flight_end)``. A call
of the same host that falls inside that interval is what a real thread does while another
holds the refresh lock: the host model decides it from the state before the flight (serve
the old credentials, or wait for the flight and share its outcome); it never starts a
second fetch.

Quiet periods are skipped: while a host's policy would only serve its cache (valid and not
due, or in a backoff), a thread's calls until then change nothing, so they are counted in
one step (failed if the served credentials had expired) and the thread moves to the first
call after the quiet period.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random as _random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Protocol

from .sts import EPOCH, SimClock, SimulatedSts, StsSettings

_NEG_INF = float("-inf")


@dataclass(frozen=True)
class FleetSettings:
    """The fleet and the applications on it (guesses, stated in docs/performance.md)."""

    hosts: int = 10_000
    threads: int = 4  # application threads per host that use the credentials
    think_time: float = 1.0  # seconds each thread works between two calls
    start_spread: float = 10.0  # hosts start uniformly within this many seconds
    duration: float = 7200.0
    seed: int = 1


@dataclass
class Metrics:
    """What one run counted (calls, fetches, recovery) and the invariants it checked."""

    calls: int = 0
    failed_calls: int = 0
    failed_raised: int = 0  # of those, calls whose credentials call raised (the rest: expired)
    fetches: int = 0
    failed_fetches: int = 0  # fetches that raised after the client's retries
    last_gap_end: float = _NEG_INF  # the last instant some host held no valid credentials
    invalid_host_seconds: float = 0.0
    lapses: int = 0  # times a host's credentials expired before it had new ones
    unrecovered_hosts: int = 0  # hosts without valid credentials when the run ended
    # Invariants of this project's engine (counted for both models, asserted for the engine).
    overlapping_flights: int = 0  # a fetch started while the host's previous one was in flight
    calls_with_two_fetches: int = 0  # one call made more than one fetch
    fetches_in_backoff: int = 0  # a fetch before the shortest backoff the policy allows ended
    expired_outside_backoff: int = 0  # expired credentials served without a recent failure


class HostState:
    """One host's bookkeeping, kept by the simulation beside the policy's own state."""

    __slots__ = (
        "failure_at",
        "failure_left",
        "fetches",
        "flight_end",
        "flight_outcome",
        "pre_valid_until",
        "start",
        "valid_until",
    )

    def __init__(self, start: float) -> None:
        self.start = start
        self.valid_until = _NEG_INF  # simulated second the held credentials expire
        self.flight_end = _NEG_INF  # when the last fetch's answer arrived
        self.pre_valid_until = _NEG_INF  # valid_until when the last fetch started
        self.flight_outcome: Optional[float] = None  # expiry its caller was served (None: raised)
        self.fetches = 0
        self.failure_at: Optional[float] = None  # when the last fetch failed, if it did
        self.failure_left: Optional[float] = None  # credentials' time left then (None: none)


class Simulation:
    """The shared clock, STS, randomness and metrics, and the fetch every host makes."""

    def __init__(
        self,
        fleet: FleetSettings,
        sts: StsSettings,
        backoff: tuple[float, float] = (300.0, 600.0),
    ) -> None:
        self.fleet = fleet
        self.clock = SimClock()
        self.sts = SimulatedSts(sts, fleet.duration, self.clock)
        self.random = _random.Random(fleet.seed).random  # the policies' jitter and the SDK's
        self.metrics = Metrics()
        self.backoff = backoff  # the shortest and longest backoff the checked policy allows

    def fetch(self, host: HostState) -> float:
        """One refresh of ``host`` (the client with its retries): the new expiry, wall clock."""
        now = self.clock.now
        m = self.metrics
        if now < host.flight_end:
            m.overlapping_flights += 1
        if host.failure_at is not None and host.failure_left is not None:
            low = self.backoff[0]
            floor = min(low, host.failure_left) if host.failure_left > 0 else low
            if now < host.failure_at + floor - 1e-6:
                m.fetches_in_backoff += 1
        host.pre_valid_until = host.valid_until
        host.fetches += 1
        m.fetches += 1
        try:
            expiration = self.sts.assume_role(self.random)
        except Exception:
            m.failed_fetches += 1
            end = self.clock.now
            host.flight_end = end
            host.failure_at = end
            host.failure_left = host.valid_until - end if host.valid_until > _NEG_INF else None
            raise
        end = self.clock.now
        host.flight_end = end
        host.failure_at = host.failure_left = None
        if host.valid_until < end:  # the host held no valid credentials until now
            if host.valid_until > _NEG_INF:
                m.lapses += 1
            m.invalid_host_seconds += end - max(host.valid_until, host.start)
            m.last_gap_end = max(m.last_gap_end, end)
        host.valid_until = expiration - EPOCH
        return expiration

    def served(self, host: HostState, at: float, expiry: Optional[float]) -> None:
        """Count one call served credentials expiring at ``expiry`` (None: it raised)."""
        m = self.metrics
        m.calls += 1
        if expiry is None:
            m.failed_calls += 1
            m.failed_raised += 1
        elif expiry <= at:
            m.failed_calls += 1  # the AWS request made with them is rejected
            recent = host.failure_at is not None and at - host.failure_at <= self.backoff[1] + 1e-6
            if not recent:
                m.expired_outside_backoff += 1

    def skip(
        self, host: HostState, next_call: float, quiet_until: float, served_until: float
    ) -> float:
        """Count a thread's calls before ``quiet_until`` (served credentials valid until
        ``served_until``) without simulating them; the time of its first call after."""
        quiet_until = min(quiet_until, self.fleet.duration)
        if next_call >= quiet_until:
            return next_call
        period = self.fleet.think_time

        def calls_before(instant: float) -> int:
            return min(max(math.ceil((instant - next_call) / period), 0), count)

        count = math.ceil((quiet_until - next_call) / period)
        m = self.metrics
        m.calls += count
        m.failed_calls += count - calls_before(served_until)
        # Expired credentials may be served only inside a backoff after a failure.
        failure_at = host.failure_at
        backoff_ends = failure_at + self.backoff[1] + 1e-6 if failure_at is not None else -math.inf
        m.expired_outside_backoff += count - calls_before(max(served_until, backoff_ends))
        return next_call + count * period

    def finish(self, hosts: Sequence[HostState]) -> None:
        """Close the gaps of hosts that ended the run without valid credentials."""
        end = self.fleet.duration
        for host in hosts:
            if host.valid_until < end:
                self.metrics.unrecovered_hosts += 1
                self.metrics.invalid_host_seconds += end - max(host.valid_until, host.start)


class Host(Protocol):
    """A host model: its policy's state, and what one application call does."""

    state: HostState

    def call(self, at: float) -> float:
        """Carry out one call at ``at`` (the clock is there); the thread's next call time."""


def run(sim: Simulation, hosts: Sequence[Host], layout_seed: int) -> Metrics:
    """Run every host's threads until the scenario's end; the metrics."""
    fleet = sim.fleet
    layout = _random.Random(layout_seed)
    sequence = itertools.count()
    heap: list[tuple[float, int, int]] = []
    for index, host in enumerate(hosts):
        for _ in range(fleet.threads):
            first = host.state.start + layout.random() * fleet.think_time
            heap.append((first, next(sequence), index))
    heapq.heapify(heap)
    clock = sim.clock
    duration = fleet.duration
    while heap:
        at, _, index = heap[0]
        if at >= duration:
            break
        clock.now = at
        heapq.heapreplace(heap, (hosts[index].call(at), next(sequence), index))
    sim.finish([host.state for host in hosts])
    return sim.metrics
