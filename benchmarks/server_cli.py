"""`aws sts get-caller-identity` given only the server's two variables, side by side with
static environment credentials and the warm `credential-process`.

Runs against the local test bed (moto + IMDS fake + proxy on 127.0.0.1), round-robin (one
run of each in turn), because this machine is shared and noisy. Besides each scenario's
median, the ratio of each run to the static run of the same round is taken (a burst of load
then slows both sides of the pair), and their median is the figure compared with the target,
with the middle 90% of those ratios by bootstrap, so one run shows whether a difference is
bigger than the noise:

  static    AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN in the environment: the floor
  server    AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE of a
            running `assume-provider serve` (IMDS unreachable for the CLI)
  tool      credential_process = assume-provider credential-process, disk cache warm

    python benchmarks/server_cli.py [--runs 41]

Target: server at most 1.02x static.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_overhead import AWS, TOOL, round_robin_samples
from server_processes import wait_warm
from server_support import client_env, serving
from testbed import TestBed


def paired_ratio(samples: list[float], floor: list[float]) -> tuple[float, float, float]:
    """Median of sample/floor ratios taken round by round, and a 90% bootstrap interval."""
    ratios = [a / b for a, b in zip(samples, floor, strict=True)]
    draw = random.Random(7)  # the same interval for the same samples
    medians = sorted(statistics.median(draw.choices(ratios, k=len(ratios))) for _ in range(2000))
    return statistics.median(ratios), medians[100], medians[1899]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=41, help="runs per scenario")
    options = parser.parse_args()

    with TestBed() as bed, tempfile.TemporaryDirectory() as home:
        world = bed.world
        base = {"PATH": os.environ.get("PATH", ""), "HOME": home, "LANG": "C.UTF-8"}
        base.update(bed.env(Path(home) / "aws"))
        Path(base["AWS_CONFIG_FILE"]).write_text(
            "[profile tool]\n"
            f"credential_process = {TOOL} credential-process --role-arn {world.target_role_arn}\n"
        )
        static = bed.assume(world.target_role_arn, "static")
        static_env = dict(
            base,
            AWS_ACCESS_KEY_ID=static["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=static["SecretAccessKey"],
            AWS_SESSION_TOKEN=static["SessionToken"],
        )
        call = [str(AWS), "sts", "get-caller-identity", "--output", "json"]
        with serving(base, ["--role-arn", world.target_role_arn], Path(home) / "token") as server:
            wait_warm(server)
            scenarios = {
                "static": (call, static_env),
                "server": (call, client_env(base, server)),
                "tool": ([*call, "--profile", "tool"], base),
            }
            bed.reset()
            samples = round_robin_samples(scenarios, options.runs)
            assume_roles = bed.proxy.count(action="AssumeRole")
            code, err = server.stop()
        if code != 0:
            raise SystemExit(f"serve exited {code}: {err}")

    medians = {name: statistics.median(values) for name, values in samples.items()}
    paired = {name: paired_ratio(values, samples["static"]) for name, values in samples.items()}
    floor = medians["static"]
    print(f"aws sts get-caller-identity, {options.runs} runs each, round-robin (ms):")
    print("| scenario | median ms | added ms | vs static, paired | 90% interval |")
    print("|---|---:|---:|---:|---|")
    for name, value in medians.items():
        ratio, low, high = paired[name]
        print(
            f"| {name} | {value:.1f} | {value - floor:+.1f} | {ratio:.3f}x "
            f"| {low:.3f}x to {high:.3f}x |"
        )
    print(f"\nAssumeRole calls during the timed runs (incl. warm-up): {assume_roles}")
    ratio = paired["server"][0]
    print(
        "\n"
        + json.dumps(
            {
                "server_vs_static": round(ratio, 3),
                "server_vs_static_interval": [round(x, 3) for x in paired["server"][1:]],
                "tool_vs_static": round(paired["tool"][0], 3),
                "target_ratio": 1.02,
                "met": ratio <= 1.02,
            }
        )
    )


if __name__ == "__main__":
    main()
