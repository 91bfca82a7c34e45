"""50 short-lived `python` processes, one DynamoDB call each: what each way of getting A's
role costs, side by side.

Runs against the local test bed (moto + IMDS fake + counting proxy on 127.0.0.1). Each batch
starts the 50 processes one after another, the way cron jobs and scripts arrive; each does a
GetItem of A's secret item and exits. Contenders, interleaved batch by batch (the order
rotates every round) because this machine is shared and noisy; wall times are medians:

  static     AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN of the role, fetched beforehand: the floor
             (no credential work at all), what no way of getting credentials can beat
  native     botocore's own profile: role_arn + credential_source = Ec2InstanceMetadata
  zero-code  ASSUME_PROVIDER_ROLE_ARN with the installed start-up hook (no code change)
  server     `assume-provider serve` on loopback; the processes get only its two variables
             (IMDS unreachable for them)

AssumeRole and IMDS requests are counted per batch by the bed's proxy and IMDS fake. For the
server a fresh one is started for every batch, inside the counting window (its own
AssumeRole and IMDS requests are in the batch's count) but outside the timed one: a host
server is already running when a script starts, so the batch is timed once it is warm.

    python benchmarks/server_processes.py [--processes 50] [--rounds 3] [--sts-delay 0] [--together]

moto answers AssumeRole in a few milliseconds on loopback; real STS takes tens to hundreds.
``--sts-delay SECONDS`` holds every AssumeRole at the proxy that long, to model that.
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
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from server_support import RunningServer, client_env, serving
from testbed import TestBed
from testbed.proxy import Fault

CONTENDERS = ("static", "native", "zero-code", "server")

CHILD = """\
import sys
import boto3
item = boto3.client("dynamodb").get_item(
    TableName=sys.argv[1], Key={"name": {"S": sys.argv[2]}}).get("Item")
sys.exit(0 if item else 3)
"""


def wait_warm(server: RunningServer, timeout: float = 60) -> None:
    """Until /healthz (no token, not a credential request) says the default route is served."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with opener.open(server.url + "healthz", timeout=5) as response:
            route = json.loads(response.read())["routes"].get("/", {})
        if route.get("expires_in"):
            return
        time.sleep(0.05)
    raise SystemExit("the server never fetched credentials")


def batch(command: list[str], env: dict[str, str], processes: int, together: bool) -> float:
    """Wall seconds for ``processes`` runs of ``command``: one after another, or all started
    at once (``together``: a worker pool or a fleet of cron jobs starting in the same minute)."""
    start = time.perf_counter()
    if together:
        running = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(processes)
        ]
        results = [(p, *p.communicate(timeout=300)) for p in running]
    else:
        results = []
        for _ in range(processes):
            p = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            results.append((p, *p.communicate(timeout=120)))
    elapsed = time.perf_counter() - start
    for process, _, err in results:
        if process.returncode != 0:
            raise SystemExit(f"a process failed ({process.returncode}): {err.decode().strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=50, help="processes per batch")
    parser.add_argument("--rounds", type=int, default=3, help="batches per contender")
    parser.add_argument(
        "--sts-delay", type=float, default=0.0, help="seconds added to every AssumeRole"
    )
    parser.add_argument(
        "--together", action="store_true", help="start each batch's processes all at once"
    )
    options = parser.parse_args()

    walls: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    assume: dict[str, list[int]] = {name: [] for name in CONTENDERS}
    imds: dict[str, list[int]] = {name: [] for name in CONTENDERS}
    with TestBed() as bed, tempfile.TemporaryDirectory() as home:
        world = bed.world
        base = {"PATH": os.environ.get("PATH", ""), "HOME": home, "LANG": "C.UTF-8"}
        base.update(bed.env(Path(home) / "aws"))
        Path(base["AWS_CONFIG_FILE"]).write_text(
            "[profile native]\n"
            f"role_arn = {world.target_role_arn}\n"
            "credential_source = Ec2InstanceMetadata\n"
        )
        command = [sys.executable, "-c", CHILD, world.table_name, world.secret_name]
        static = bed.assume(world.target_role_arn, "static")  # straight from moto, uncounted
        envs = {
            "static": dict(
                base,
                AWS_ACCESS_KEY_ID=static["AccessKeyId"],
                AWS_SECRET_ACCESS_KEY=static["SecretAccessKey"],
                AWS_SESSION_TOKEN=static["SessionToken"],
            ),
            "native": dict(base, AWS_PROFILE="native"),
            "zero-code": dict(base, ASSUME_PROVIDER_ROLE_ARN=world.target_role_arn),
        }
        server_args = ["--role-arn", world.target_role_arn]
        for env in envs.values():  # warm-up: page cache, .pyc files
            subprocess.run(command, env=env, check=True, capture_output=True)
        for round_ in range(options.rounds):
            shift = round_ % len(CONTENDERS)
            order = CONTENDERS[shift:] + CONTENDERS[:shift]
            for name in order:
                bed.reset()
                if options.sts_delay:
                    delay = Fault.delay(options.sts_delay)
                    bed.proxy.inject(delay, action="AssumeRole", times=None)
                if name == "server":
                    token = Path(home) / f"token-{round_}"
                    with serving(base, server_args, token) as server:
                        wait_warm(server)
                        wall = batch(
                            command, client_env(base, server), options.processes, options.together
                        )
                        code, err = server.stop()
                    if code != 0:
                        raise SystemExit(f"serve exited {code}: {err}")
                else:
                    wall = batch(command, envs[name], options.processes, options.together)
                walls[name].append(wall)
                assume[name].append(bed.proxy.count(action="AssumeRole"))
                imds[name].append(bed.imds.request_count)
                print(
                    f"round {round_ + 1} {name:9}: {wall:6.2f} s, "
                    f"AssumeRole {assume[name][-1]}, IMDS {imds[name][-1]}",
                    flush=True,
                )

    n = options.processes
    median = {name: statistics.median(values) for name, values in walls.items()}
    native = median["native"]
    print(
        f"\n{n} python processes, {'started together' if options.together else 'one after another'}"
        ", one DynamoDB GetItem each; "
        f"median of {options.rounds} batches per contender, interleaved; "
        f"AssumeRole delayed {options.sts_delay * 1000:.0f} ms at the proxy:"
    )
    print(
        "| contender | wall s for the batch | ms per process | vs native "
        "| AssumeRole per batch | IMDS requests per batch |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in CONTENDERS:
        counts_a = "/".join(str(c) for c in sorted(set(assume[name])))
        counts_i = "/".join(str(c) for c in sorted(set(imds[name])))
        print(
            f"| {name} | {median[name]:.2f} | {median[name] / n * 1000:.0f} "
            f"| {median[name] / native:.2f}x | {counts_a} | {counts_i} |"
        )
    ratio = median["server"] / native
    floor = median["static"] / native
    print(
        f"\nThe floor: static credentials take {floor:.2f}x native; the server is "
        f"{median['server'] / median['static']:.2f}x static (+"
        f"{(median['server'] - median['static']) / n * 1000:.0f} ms a process)."
    )
    print(
        "\n"
        + json.dumps(
            {
                "server_vs_native_wall": round(ratio, 2),
                "static_vs_native_wall": round(floor, 2),
                "target_ratio": 0.8,
                "server_assume_role_per_batch": max(assume["server"]),
                "target_assume_role": 1,
                "met": ratio <= 0.8 and max(assume["server"]) == 1,
            }
        )
    )


if __name__ == "__main__":
    main()
