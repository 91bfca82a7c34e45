"""The scenarios, one run of each policy through them, and the figures a run reports."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Optional

from .hosts import BotocoreHost, EngineHost, fast_expiry_parsing
from .loop import FleetSettings, Host, Metrics, Simulation, run
from .sts import StsSettings

POLICIES: dict[str, Callable[[Simulation, int, float], Host]] = {
    "assume-provider": EngineHost,
    "botocore": BotocoreHost,
}


#: Where ``later_peak`` starts (seconds): past a restart's own stampede.
LATER = 600


@dataclass(frozen=True)
class Scenario:
    """A fleet, an STS, and the instant from which recovery is measured."""

    name: str
    fleet: FleetSettings
    sts: StsSettings
    recovery_from: float  # the restart, the end of the start-up, or the brownout's end
    title: str


def scenarios(
    hosts: int, threads: int, think_time: float, throttle: int, seed: int
) -> list[Scenario]:
    """The three scenarios of issue 19 for a fleet of ``hosts``."""
    fleet = FleetSettings(hosts=hosts, threads=threads, think_time=think_time, seed=seed)
    sts = StsSettings(throttle_per_second=throttle)
    hour = 3600.0
    return [
        Scenario(
            "restart",
            replace(fleet, start_spread=10.0, duration=2 * hour),
            sts,
            0.0,
            "fleet-wide restart (all hosts within 10 s), 2 h",
        ),
        Scenario(
            "steady-day",
            replace(fleet, start_spread=hour, duration=25 * hour),
            sts,
            hour,
            "steady day, 1-hour credentials (hosts started over the first hour), 25 h",
        ),
        Scenario(
            "brownout",
            replace(fleet, start_spread=hour, duration=3 * hour),
            replace(sts, brownout=(2 * hour, 2 * hour + 600.0)),
            2 * hour + 600.0,
            "10-minute STS brownout (5xx) at 2 h, fleet started over the first hour, 3 h",
        ),
    ]


@dataclass(frozen=True)
class Result:
    """One policy through one scenario."""

    scenario: Scenario
    policy: str
    metrics: Metrics
    requests_per_second: list[int]
    throttled: int
    seconds: float  # real time the run took

    @property
    def peak(self) -> int:
        return max(self.requests_per_second)

    @property
    def later_peak(self) -> int:
        """The peak after the first 10 minutes: the refresh waves after a restart, the
        steady state, the brownout and what follows it."""
        return max(self.requests_per_second[LATER:], default=0)

    @property
    def mean(self) -> float:
        return sum(self.requests_per_second) / len(self.requests_per_second)

    @property
    def requests(self) -> int:
        return sum(self.requests_per_second)

    @property
    def recovery(self) -> Optional[float]:
        """Seconds from ``recovery_from`` until every host held valid credentials (None:
        some host still held none when the run ended)."""
        if self.metrics.unrecovered_hosts:
            return None
        return max(0.0, self.metrics.last_gap_end - self.scenario.recovery_from)


def run_one(scenario: Scenario, policy: str) -> Result:
    """Build the fleet for ``policy`` (same start times for every policy) and run it."""
    started = time.perf_counter()
    sim = Simulation(scenario.fleet, scenario.sts)
    fleet = scenario.fleet
    layout = _layout(fleet)
    make = POLICIES[policy]
    hosts = [make(sim, index, start) for index, start in enumerate(layout)]
    speedup = fast_expiry_parsing() if policy == "botocore" else contextlib.nullcontext()
    with speedup:
        metrics = run(sim, hosts, layout_seed=fleet.seed + 2)
    seconds = int(fleet.duration)
    return Result(
        scenario,
        policy,
        metrics,
        list(sim.sts.requests[:seconds]),
        sum(sim.sts.throttled[:seconds]),
        time.perf_counter() - started,
    )


def _layout(fleet: FleetSettings) -> list[float]:
    """The hosts' start times: uniform within the spread, the same for both policies."""
    draw = random.Random(fleet.seed + 1).random
    return [draw() * fleet.start_spread for _ in range(fleet.hosts)]
