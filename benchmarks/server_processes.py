"""50 short-lived `python` processes, one DynamoDB call each: what each way of getting A's
role costs, side by side.

Runs against the local test bed (moto + IMDS fake + counting proxy on 127.0.0.1). Each batch
starts the 50 processes one after another, the way cron jobs and scripts arrive (or with
--together all at once, the way a worker pool or a fleet of cron jobs starts); each does a
GetItem of A's secret item and exits. Because this machine is shared and noisy, the
contenders take turns process by process (the order rotating), so that a burst of load slows
all of them alike, and a batch's wall time is the sum of its 50 processes' (--together: the
batches take turns, each timed until its last process ends); the figures are medians over
the rounds:

  static     AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN of the role, fetched beforehand: the floor
             (no credential work at all), what no way of getting credentials can beat
  native     botocore's own profile: role_arn + credential_source = Ec2InstanceMetadata
  zero-code  ASSUME_PROVIDER_ROLE_ARN with the installed start-up hook (no code change)
  server     `assume-provider serve` on loopback; the processes get only its two variables
             (IMDS unreachable for them)

AssumeRole and IMDS requests are counted by the bed's proxy and IMDS fake around each
contender's own processes. A fresh server is started for every round; its own AssumeRole and
IMDS requests count in the server's batch, but its start is not timed: a host server is
already running when a script starts, so the batch is timed once it is warm.

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


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        _, err = process.communicate(timeout=300)
        if process.returncode != 0:
            raise SystemExit(f"a process failed ({process.returncode}): {err.decode().strip()}")


class Tally:
    """Wall seconds, AssumeRole and IMDS requests per contender in one round, each counted as
    the difference around the contender's own processes (only they run at that moment)."""

    def __init__(self, bed: TestBed) -> None:
        self.bed = bed
        self.wall = dict.fromkeys(CONTENDERS, 0.0)
        self.assume = dict.fromkeys(CONTENDERS, 0)
        self.imds = dict.fromkeys(CONTENDERS, 0)

    def counts(self) -> tuple[int, int]:
        return self.bed.proxy.count(action="AssumeRole"), self.bed.imds.request_count

    def add(self, name: str, seconds: float, before: tuple[int, int]) -> None:
        after = self.counts()
        self.wall[name] += seconds
        self.assume[name] += after[0] - before[0]
        self.imds[name] += after[1] - before[1]

    def timed(self, name: str, command: list[str], env: dict[str, str], processes: int) -> None:
        """``processes`` runs of ``command`` started all at once, timed until the last ends."""
        before, began = self.counts(), time.perf_counter()
        wait_all([start(command, env) for _ in range(processes)])
        self.add(name, time.perf_counter() - began, before)


def one_round(
    tally: Tally,
    command: list[str],
    envs: dict[str, dict[str, str]],
    options: argparse.Namespace,
    shift: int,
) -> None:
    """Every contender's batch: all at once, a batch after another (``--together``), or one
    after another, interleaved process by process (the order rotating), so that a burst of
    load on this shared machine slows every contender alike instead of one batch."""
    for step in range(1 if options.together else options.processes):
        turn = (shift + step) % len(CONTENDERS)
        for name in CONTENDERS[turn:] + CONTENDERS[:turn]:
            tally.timed(name, command, envs[name], options.processes if options.together else 1)


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
            bed.reset()
            if options.sts_delay:
                bed.proxy.inject(Fault.delay(options.sts_delay), action="AssumeRole", times=None)
            tally = Tally(bed)
            token = Path(home) / f"token-{round_}"
            with serving(base, server_args, token) as server:
                wait_warm(server)
                tally.add("server", 0.0, (0, 0))  # its own AssumeRole and IMDS requests
                round_envs = dict(envs, server=client_env(base, server))
                one_round(tally, command, round_envs, options, round_)
                code, err = server.stop()
            if code != 0:
                raise SystemExit(f"serve exited {code}: {err}")
            for name in CONTENDERS:
                walls[name].append(tally.wall[name])
                assume[name].append(tally.assume[name])
                imds[name].append(tally.imds[name])
                print(
                    f"round {round_ + 1} {name:9}: {tally.wall[name]:6.2f} s, "
                    f"AssumeRole {tally.assume[name]}, IMDS {tally.imds[name]}",
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
        f"{median['server'] / median['static']:.2f}x static ("
        f"{(median['server'] - median['static']) / n * 1000:+.0f} ms a process)."
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
