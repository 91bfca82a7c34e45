"""A fleet of hosts against a throttling, browning-out STS: this engine against botocore.

Runs each scenario (a fleet-wide restart, a steady day with 1-hour credentials, a 10-minute
STS brownout) once with this project's engine and once with botocore's own refreshable
credentials on every host, both the real policy code on a simulated clock (see
``benchmarks/fleetsim/``), and prints per scenario and policy: peak and mean STS requests
per second, throttled requests, application calls that failed, and the time until every
host held valid credentials again, with botocore's figures as a ratio to this engine's.
The model and its guessed parameters are in docs/performance.md.

    python benchmarks/fleet_sim.py [--hosts 10000] [--scenario restart ...] [--plot docs/fleet.png]

The plot needs matplotlib (``pip install -e '.[bench]'``); without it the table is printed
and the plot is skipped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetsim.scenarios import POLICIES, Result, run_one, scenarios


def _recovery_text(seconds: Optional[float]) -> str:
    return "not within the run" if seconds is None else f"{seconds:.0f} s"


def _ratio(theirs: float, ours: float) -> str:
    if ours == 0:
        return "-" if theirs == 0 else "inf"
    return f"{theirs / ours:.2f}x"


def table(results: list[Result]) -> str:
    """The markdown table, one row per scenario and policy, botocore's ratios to ours."""
    lines = [
        "| scenario | policy | peak STS req/s | peak after 10 min | mean STS req/s "
        "| STS requests | throttled | app calls failed (raised / expired) "
        "| all hosts valid again after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_scenario: dict[str, dict[str, Result]] = {}
    for result in results:
        by_scenario.setdefault(result.scenario.name, {})[result.policy] = result
    for name, pair in by_scenario.items():
        for policy, r in pair.items():
            m = r.metrics
            expired = m.failed_calls - m.failed_raised
            failed = f"{m.failed_calls:,} of {m.calls:,} ({m.failed_raised:,} / {expired:,})"
            lines.append(
                f"| {name} | {policy} | {r.peak:,} | {r.later_peak:,} | {r.mean:.2f} | "
                f"{r.requests:,} | "
                f"{r.throttled:,} | {failed} | {_recovery_text(r.recovery)} |"
            )
        ours, theirs = pair.get("assume-provider"), pair.get("botocore")
        if ours is not None and theirs is not None:
            recovery = "-"  # a ratio of two sub-second figures would mean nothing
            if ours.recovery is not None and theirs.recovery is not None:
                if max(ours.recovery, theirs.recovery) >= 1:
                    recovery = _ratio(theirs.recovery, ours.recovery)
            lines.append(
                f"| {name} | botocore / assume-provider | {_ratio(theirs.peak, ours.peak)} | "
                f"{_ratio(theirs.later_peak, ours.later_peak)} | "
                f"{_ratio(theirs.mean, ours.mean)} | {_ratio(theirs.requests, ours.requests)} | "
                f"{_ratio(theirs.throttled, ours.throttled)} | "
                f"{_ratio(theirs.metrics.failed_calls, ours.metrics.failed_calls)} | {recovery} |"
            )
    return "\n".join(lines)


def plot(results: list[Result], path: Path) -> bool:
    """STS requests per second over time, one panel per scenario; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = list(dict.fromkeys(r.scenario.name for r in results))
    figure, axes = plt.subplots(len(names), 1, figsize=(9, 3.2 * len(names)), squeeze=False)
    for axis, name in zip(axes[:, 0], names, strict=True):
        for r in (r for r in results if r.scenario.name == name):
            # Long runs in one-minute means, or a day of seconds is a solid block.
            step = 60 if len(r.requests_per_second) > 4 * 3600 else 1
            series = r.requests_per_second
            rates = [sum(series[i : i + step]) / step for i in range(0, len(series), step)]
            minutes = [i * step / 60 for i in range(len(rates))]
            axis.plot(minutes, rates, label=r.policy, linewidth=0.7)
            throttle = r.scenario.sts.throttle_per_second
        axis.axhline(throttle, color="grey", linestyle="--", linewidth=0.7, label="STS throttle")
        brownout = next(r for r in results if r.scenario.name == name).scenario.sts.brownout
        if brownout is not None:
            axis.axvspan(brownout[0] / 60, brownout[1] / 60, color="orange", alpha=0.2)
        axis.set_yscale("symlog", linthresh=10)
        axis.set_ylim(bottom=0)
        axis.set_title(next(r for r in results if r.scenario.name == name).scenario.title)
        axis.set_xlabel("simulated minutes")
        axis.set_ylabel("STS requests / s" + (" (1-min mean)" if step > 1 else ""))
        axis.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4, help="application threads per host")
    parser.add_argument(
        "--think-time", type=float, default=1.0, help="seconds between a thread's calls"
    )
    parser.add_argument("--throttle", type=int, default=600, help="STS requests per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scenario", action="append", help="restart, steady-day or brownout (repeatable)"
    )
    parser.add_argument("--plot", type=Path, default=Path("docs/fleet.png"))
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    # The policies warn on every failed refresh; thousands of hosts would flood stderr.
    for name in ("assume_provider", "botocore"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    chosen = scenarios(args.hosts, args.threads, args.think_time, args.throttle, args.seed)
    if args.scenario:
        chosen = [s for s in chosen if s.name in args.scenario]
    results = []
    for scenario in chosen:
        for policy in POLICIES:
            result = run_one(scenario, policy)
            m = result.metrics
            print(
                f"{scenario.name} / {policy}: {result.seconds:.1f} s real, {m.fetches:,} fetches; "
                f"invariants: {m.overlapping_flights} overlapping flights, "
                f"{m.calls_with_two_fetches} calls with two fetches, {m.fetches_in_backoff} "
                f"fetches inside a 300 s backoff, {m.expired_outside_backoff} expired "
                f"credentials served outside a backoff; {m.lapses} times credentials expired "
                f"before a refresh, {m.invalid_host_seconds:,.0f} host-seconds without valid ones",
                file=sys.stderr,
            )
            results.append(result)
    print(table(results))
    if not args.no_plot:
        if plot(results, args.plot):
            print(f"plot written to {args.plot}")
        else:
            print("matplotlib is not installed: no plot (pip install -e '.[bench]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
