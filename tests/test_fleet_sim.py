"""The fleet simulation (benchmarks/fleet_sim.py) on a small fleet: this engine's invariants
hold on every host, and botocore's policy stampedes a browning-out STS where it does not.

Deterministic: a seeded simulated clock, no threads, counts only. The plot is the one
part that needs matplotlib; only that test is skipped without it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import fleet_sim
from fleetsim.hosts import EngineHost
from fleetsim.loop import Metrics, Simulation, run
from fleetsim.scenarios import Scenario, run_one, scenarios

HOSTS = 300
# STS's throttle scaled with the fleet: 600 requests/s for 10,000 hosts.
THROTTLE = 18


@pytest.fixture(autouse=True)
def quiet_policies() -> Iterator[None]:
    """Both policies warn on every failed refresh; hundreds of hosts would flood the capture."""
    loggers = [logging.getLogger(name) for name in ("assume_provider", "botocore")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def small(name: str) -> Scenario:
    """One scenario of the benchmark for a fleet of ``HOSTS`` (the steady day cut to 3 h)."""
    chosen = next(s for s in scenarios(HOSTS, 4, 1.0, THROTTLE, seed=7) if s.name == name)
    if name == "steady-day":
        chosen = replace(chosen, fleet=replace(chosen.fleet, duration=3 * 3600.0))
    return chosen


def long_brownout() -> Scenario:
    """The brownout scenario with a 20-minute brownout, so that some hosts' credentials
    expire inside it whatever their jitter (a 10-minute one may spare a small fleet)."""
    scenario = small("brownout")
    start = 2 * 3600.0
    sts = replace(scenario.sts, brownout=(start, start + 1200.0))
    return replace(scenario, sts=sts, recovery_from=start + 1200.0)


def assert_engine_invariants(metrics: Metrics) -> None:
    # Zero by construction (calls inside a flight are decided by the model, not the engine):
    # a guard on the model; the engine's single flight is tested with threads elsewhere.
    assert metrics.overlapping_flights == 0
    assert metrics.calls_with_two_fetches == 0
    assert metrics.fetches_in_backoff == 0  # nobody asks STS during its backoff
    assert metrics.expired_outside_backoff == 0  # expired credentials only inside a backoff


@pytest.mark.parametrize("name", ["restart", "steady-day", "brownout"])
def test_engine_invariants_hold_on_every_host(name: str) -> None:
    result = run_one(small(name), "assume-provider")
    assert_engine_invariants(result.metrics)
    assert result.metrics.fetches >= HOSTS  # every host fetched
    assert result.metrics.unrecovered_hosts == 0


def test_brownout_exercises_the_backoff() -> None:
    """The invariants above were put to the test: refreshes failed with credentials cached,
    and expired credentials were served (inside a backoff) to calls that then failed."""
    metrics = run_one(long_brownout(), "assume-provider").metrics
    assert metrics.failed_fetches > 0
    assert metrics.failed_calls > 0
    assert_engine_invariants(metrics)


def test_restart_exercises_throttling_and_single_flight() -> None:
    result = run_one(small("restart"), "assume-provider")
    assert result.throttled > 0
    assert result.metrics.failed_fetches > 0
    assert_engine_invariants(result.metrics)


def test_a_slow_brownout_fails_no_call() -> None:
    """STS answering in 5 s instead of failing: refreshes take longer, nothing fails, and
    every host asks once per refresh (the calls meanwhile wait or get the cache)."""
    scenario = long_brownout()
    scenario = replace(scenario, sts=replace(scenario.sts, brownout_mode="slow"))
    result = run_one(scenario, "assume-provider")
    assert result.metrics.failed_fetches == 0
    assert result.metrics.failed_calls == 0
    assert result.metrics.fetches == result.requests
    assert_engine_invariants(result.metrics)


def _starts(scenario: Scenario) -> list[float]:
    """Hosts started evenly over the scenario's start-up."""
    fleet = scenario.fleet
    return [index * fleet.start_spread / fleet.hosts for index in range(fleet.hosts)]


def _engine_fleet(scenario: Scenario, engine_backoff: tuple[float, float]) -> Simulation:
    """A simulation whose engines back off ``engine_backoff``, checked against 300-600 s."""
    sim = Simulation(scenario.fleet, scenario.sts, backoff=engine_backoff)
    hosts = [EngineHost(sim, index, start) for index, start in enumerate(_starts(scenario))]
    sim.backoff = (300.0, 600.0)
    run(sim, hosts, layout_seed=3)
    return sim


def test_the_checks_catch_a_policy_that_does_not_back_off() -> None:
    """The invariant checks can fail: engines backing off 1-2 s ask STS inside 300 s."""
    metrics = _engine_fleet(long_brownout(), (1.0, 2.0)).metrics
    assert metrics.fetches_in_backoff > 0


def test_the_checks_catch_expired_credentials_served_after_the_backoff() -> None:
    """The invariant checks can fail: a check that allows at most 1 s of backoff sees the
    engine's 300-600 s backoff serve expired credentials after it."""
    scenario = long_brownout()
    sim = Simulation(scenario.fleet, scenario.sts)
    hosts = [EngineHost(sim, index, start) for index, start in enumerate(_starts(scenario))]
    sim.backoff = (1.0, 1.0)
    run(sim, hosts, layout_seed=3)
    assert sim.metrics.expired_outside_backoff > 0


def test_botocore_stampedes_a_browning_out_sts_and_the_engine_does_not() -> None:
    scenario = small("brownout")
    ours = run_one(scenario, "assume-provider")
    theirs = run_one(scenario, "botocore")
    start, end = (int(t) for t in scenario.sts.brownout or (0, 0))
    ours_during = sum(ours.requests_per_second[start:end])
    theirs_during = sum(theirs.requests_per_second[start:end])
    assert theirs_during > 10 * ours_during
    assert theirs.throttled > 10 * max(ours.throttled, 1)
    assert theirs.metrics.fetches_in_backoff > 0  # botocore has no backoff to respect


def test_same_seed_same_run() -> None:
    first = run_one(small("restart"), "botocore")
    second = run_one(small("restart"), "botocore")
    assert first.requests_per_second == second.requests_per_second
    assert first.metrics == second.metrics


def test_table_gives_botocore_as_a_ratio_to_the_engine() -> None:
    scenario = small("restart")
    text = fleet_sim.table([run_one(scenario, p) for p in ("assume-provider", "botocore")])
    assert "| restart | botocore / assume-provider |" in text


def test_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    scenario = small("restart")
    path = tmp_path / "fleet.png"
    assert fleet_sim.plot([run_one(scenario, "assume-provider")], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
