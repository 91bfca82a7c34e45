"""What `assume-provider credential-process` adds to an `aws` command, side by side.

Runs against the local test bed (moto + IMDS fake + proxy on 127.0.0.1), so it measures
the client side only. Every scenario is timed in the same run, round-robin (one run of each
in turn), and medians are compared, because this machine is shared and noisy.

    python benchmarks/cli_overhead.py [--runs 15] [--bare-runs 41]

Scenarios for `aws sts get-caller-identity`:
  static    credentials in the environment: the floor
  native    botocore's own role_arn + credential_source profile, CLI cache warm
  shim      a naive boto3 credential_process script (AssumeRole on every call)
  cat       credential_process = cat of a JSON file: what any credential_process costs
  tool      credential_process = assume-provider credential-process, disk cache warm
And the bare command, warm, against `python -c pass`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testbed import TestBed

BIN = Path(sys.executable).parent
TOOL = BIN / "assume-provider"
AWS = BIN / "aws"

SHIM = """\
import json, sys
import boto3
response = boto3.client("sts").assume_role(RoleArn=sys.argv[1], RoleSessionName="shim")
c = response["Credentials"]
print(json.dumps({"Version": 1, "AccessKeyId": c["AccessKeyId"],
                  "SecretAccessKey": c["SecretAccessKey"], "SessionToken": c["SessionToken"],
                  "Expiration": c["Expiration"].isoformat()}))
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command} failed: {result.stderr.strip()}")
    return elapsed * 1000.0


Scenarios = dict[str, tuple[list[str], dict[str, str]]]


def round_robin_samples(scenarios: Scenarios, runs: int) -> dict[str, list[float]]:
    """Milliseconds of every run of every scenario; run i of each scenario share round i."""
    samples: dict[str, list[float]] = {name: [] for name in scenarios}
    for command, env in scenarios.values():  # warm-up: fills every cache
        timed(command, env)
    for _ in range(runs):
        for name, (command, env) in scenarios.items():
            samples[name].append(timed(command, env))
    return samples


def round_robin(scenarios: Scenarios, runs: int) -> dict[str, float]:
    samples = round_robin_samples(scenarios, runs)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per aws scenario")
    parser.add_argument("--bare-runs", type=int, default=41, help="runs of the bare command")
    options = parser.parse_args()

    with TestBed() as bed, tempfile.TemporaryDirectory() as home:
        world = bed.world
        base = {"PATH": os.environ.get("PATH", ""), "HOME": home, "LANG": "C.UTF-8"}
        base.update(bed.env(Path(home) / "aws"))
        shim = Path(home) / "shim.py"
        shim.write_text(SHIM)
        Path(base["AWS_CONFIG_FILE"]).write_text(
            "[profile native]\n"
            f"role_arn = {world.target_role_arn}\n"
            "credential_source = Ec2InstanceMetadata\n"
            "[profile shim]\n"
            f"credential_process = {sys.executable} {shim} {world.target_role_arn}\n"
            "[profile tool]\n"
            f"credential_process = {TOOL} credential-process --role-arn {world.target_role_arn}\n"
        )
        static = bed.assume(world.target_role_arn, "static")
        canned = Path(home) / "canned.json"
        canned.write_text(
            json.dumps(
                {
                    "Version": 1,
                    "AccessKeyId": static["AccessKeyId"],
                    "SecretAccessKey": static["SecretAccessKey"],
                    "SessionToken": static["SessionToken"],
                    "Expiration": static["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
        )
        with Path(base["AWS_CONFIG_FILE"]).open("a") as config:
            config.write(f"[profile cat]\ncredential_process = cat {canned}\n")
        static_env = dict(
            base,
            AWS_ACCESS_KEY_ID=static["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=static["SecretAccessKey"],
            AWS_SESSION_TOKEN=static["SessionToken"],
        )
        call = [str(AWS), "sts", "get-caller-identity", "--output", "json"]
        scenarios = {
            "static": (call, static_env),
            "native": ([*call, "--profile", "native"], base),
            "shim": ([*call, "--profile", "shim"], base),
            "cat": ([*call, "--profile", "cat"], base),
            "tool": ([*call, "--profile", "tool"], base),
        }
        bed.proxy.reset()
        aws = round_robin(scenarios, options.runs)
        assume_roles = bed.proxy.count(action="AssumeRole")

        bare = {
            "python -c pass": ([sys.executable, "-c", "pass"], base),
            "assume-provider credential-process (warm)": (
                [str(TOOL), "credential-process", "--role-arn", world.target_role_arn],
                base,
            ),
        }
        bare_medians = round_robin(bare, options.bare_runs)

    floor = aws["static"]
    print(f"aws sts get-caller-identity, median of {options.runs} runs (ms):")
    print("| scenario | median ms | vs static | added ms |")
    print("|---|---:|---:|---:|")
    for name, value in aws.items():
        print(f"| {name} | {value:.1f} | {value / floor:.2f}x | {value - floor:+.1f} |")
    print(f"\nAssumeRole calls during the timed aws runs (incl. warm-up): {assume_roles}")
    python_pass = bare_medians["python -c pass"]
    print(f"\nbare command, median of {options.bare_runs} runs (ms):")
    print("| command | median ms | vs python -c pass |")
    print("|---|---:|---:|")
    for name, value in bare_medians.items():
        print(f"| {name} | {value:.1f} | {value / python_pass:.2f}x |")
    added = aws["tool"] - aws["cat"]
    ratio = bare_medians["assume-provider credential-process (warm)"] / python_pass
    print(
        "\n"
        + json.dumps(
            {
                "tool_adds_ms_over_cat": round(added, 1),
                "tool_adds_ms_over_static": round(aws["tool"] - floor, 1),
                "tool_adds_ms_over_native": round(aws["tool"] - aws["native"], 1),
                "target_adds_ms": 10,
                "bare_ratio": round(ratio, 2),
                "target_ratio": 1.5,
            }
        )
    )


if __name__ == "__main__":
    main()
