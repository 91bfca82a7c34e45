"""`aws sts get-caller-identity` given only the server's two variables, side by side with
static environment credentials and the warm `credential-process`.

Runs against the local test bed (moto + IMDS fake + proxy on 127.0.0.1), round-robin (one
run of each in turn, medians compared), because this machine is shared and noisy:

  static    AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN in the environment: the floor
  server    AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE of a
            running `assume-provider serve` (IMDS unreachable for the CLI)
  tool      credential_process = assume-provider credential-process, disk cache warm

    python benchmarks/server_cli.py [--runs 21]

Target: server at most 1.02x static.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_overhead import AWS, TOOL, round_robin
from server_processes import wait_warm
from server_support import client_env, serving
from testbed import TestBed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per scenario")
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
            medians = round_robin(scenarios, options.runs)
            assume_roles = bed.proxy.count(action="AssumeRole")
            code, err = server.stop()
        if code != 0:
            raise SystemExit(f"serve exited {code}: {err}")

    floor = medians["static"]
    print(f"aws sts get-caller-identity, median of {options.runs} runs, round-robin (ms):")
    print("| scenario | median ms | vs static | added ms |")
    print("|---|---:|---:|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:.1f} | {value / floor:.3f}x | {value - floor:+.1f} |")
    print(f"\nAssumeRole calls during the timed runs (incl. warm-up): {assume_roles}")
    ratio = medians["server"] / floor
    print(
        "\n"
        + json.dumps(
            {
                "server_vs_static": round(ratio, 3),
                "tool_vs_static": round(medians["tool"] / floor, 3),
                "target_ratio": 1.02,
                "met": ratio <= 1.02,
            }
        )
    )


if __name__ == "__main__":
    main()
