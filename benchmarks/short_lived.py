"""Short-lived Python processes (cron jobs, scripts, CI steps), each `import boto3` and one
`sts get-caller-identity`: what each way of getting the role costs, side by side in one run.

Runs against the local test bed (moto + IMDS fake + counting proxy on 127.0.0.1). A batch is
N processes (default 24) started through a pool of P (default 8) at a time, timed from the
first start to the last exit. Because this machine is shared and noisy, the contenders take
turns batch by batch, round after round, the order rotating each round (as
``server_processes.py`` does), and each batch is compared with the botocore and the static
batch of the same round (a burst of load then slows both sides of the pair); the figures are
the medians of those per-round ratios with a 90% bootstrap interval (``server_cli.py``'s
``paired_ratio``):

  native      botocore's own profile: role_arn + credential_source = Ec2InstanceMetadata
  zero-code   ASSUME_PROVIDER_ROLE_ARN with the installed start-up hook (no code change)
  share-disk  the same with ASSUME_PROVIDER_SHARE=disk (a fresh cache folder every round, so
              the first process of each batch fetches and the others read its entry);
              skipped, saying so, if the installed package has no ``share`` setting
  static      the target role's keys in AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN, fetched
              beforehand: the floor, no credential work at all
  server      `assume-provider serve` on loopback, started once before the rounds and warm;
              the processes get only its two variables (IMDS unreachable for them)

AssumeRole and IMDS requests are counted at the bed's proxy and IMDS fake around each batch
(only that batch runs then); the server's own fetch at start is reported beside its row. The
CPU seconds (user + system) of each batch's processes are reported too, paired the same way:
with the 2 cores saturated, wall time follows them, but they move less with the machine's
other load (the server's own CPU is not in them: it is no child that has exited).

The processes run the package as users install it: a venv built from this checkout's wheel
and boto3 (``--venvs DIR`` builds it there once and reuses it; ``--python`` uses a given
interpreter, which must have the package installed with its start-up .pth file).

    python benchmarks/short_lived.py [--processes 24] [--parallel 8] [--rounds 7]

Targets (issue 19): zero-code at most 1.05x native; share-disk one AssumeRole per batch and
at most 1.10x static.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from project_copy import copy_project  # noqa: E402
from server_cli import paired_ratio  # noqa: E402
from server_processes import wait_warm  # noqa: E402
from server_support import client_env, serving  # noqa: E402
from testbed import TestBed  # noqa: E402

CONTENDERS = ("native", "zero-code", "share-disk", "static", "server")
CHILD = "import boto3; boto3.client('sts').get_caller_identity()"
HAS_SHARE = (
    "import sys; from assume_provider.config.inputs import SETTING_NAMES; "
    "sys.exit(0 if 'share' in SETTING_NAMES else 1)"
)


def build_venv(folder: Path) -> str:
    """A venv with boto3 (the versions of ci/constraints.txt) and this checkout's wheel;
    reused when ``folder`` already has one."""
    python = folder / "venv" / "bin" / "python"
    if python.exists():
        return str(python)
    source = folder / "src"
    shutil.rmtree(source, ignore_errors=True)
    copy_project(source)
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(folder / "dist"), str(source)], check=True
    )
    wheel = next((folder / "dist").glob("assume_provider-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True
    )
    constraints = ["-c", str(ROOT / "ci" / "constraints.txt")]
    subprocess.run(
        [*pip, "--python", str(python), "install", *constraints, "boto3", str(wheel)],
        check=True,
    )
    return str(python)


def contender_envs(bed: TestBed, home: Path) -> dict[str, dict[str, str]]:
    """Each contender's environment (and ``base``, what they all share), on ``bed``; writes
    the ``native`` profile into a config file under ``home``."""
    world = bed.world
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8"}
    base.update(bed.env(home / "aws"))
    Path(base["AWS_CONFIG_FILE"]).write_text(
        "[profile native]\n"
        f"role_arn = {world.target_role_arn}\n"
        "credential_source = Ec2InstanceMetadata\n"
    )
    static = bed.assume(world.target_role_arn, "static")  # straight from moto, uncounted
    zero_code = dict(base, ASSUME_PROVIDER_ROLE_ARN=world.target_role_arn)
    return {
        "base": base,
        "native": dict(base, AWS_PROFILE="native"),
        "zero-code": zero_code,
        "share-disk": dict(zero_code, ASSUME_PROVIDER_SHARE="disk"),
        "static": dict(
            base,
            AWS_ACCESS_KEY_ID=static["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=static["SecretAccessKey"],
            AWS_SESSION_TOKEN=static["SessionToken"],
        ),
    }


def run_one(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"a process failed ({done.returncode}): {done.stderr.strip()}")


def timed_batch(
    command: list[str], env: dict[str, str], processes: int, parallel: int
) -> tuple[float, float]:
    """``processes`` runs of ``command``, at most ``parallel`` at once: seconds until the last
    exits, and the CPU seconds (user + system) the processes used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for future in [pool.submit(run_one, command, env) for _ in range(processes)]:
            future.result()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=24, help="processes per batch")
    parser.add_argument("--parallel", type=int, default=8, help="processes running at once")
    parser.add_argument("--rounds", type=int, default=7, help="batches per contender")
    parser.add_argument("--venvs", type=Path, help="folder to build (or reuse) the venv in")
    parser.add_argument("--python", help="the interpreter to run the processes with")
    options = parser.parse_args()
    # A stopped run (kill PID) still stops the bed and the server it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))

    with TestBed() as bed, tempfile.TemporaryDirectory(prefix="short-lived-") as home:
        python = options.python or build_venv(options.venvs or Path(home) / "build")
        envs = contender_envs(bed, Path(home))
        base = envs["base"]
        world = bed.world
        envs.pop("base")
        contenders = list(CONTENDERS)
        if subprocess.run([python, "-c", HAS_SHARE], env=base, check=False).returncode != 0:
            contenders.remove("share-disk")
            print("share-disk: SKIPPED, the installed package has no `share` setting", flush=True)
        command = [python, "-c", CHILD]
        walls: dict[str, list[float]] = {name: [] for name in contenders}
        cpus: dict[str, list[float]] = {name: [] for name in contenders}
        assume: dict[str, list[int]] = {name: [] for name in contenders}
        imds: dict[str, list[int]] = {name: [] for name in contenders}
        load_before = os.getloadavg()
        with serving(base, ["--role-arn", world.target_role_arn], Path(home) / "token") as server:
            wait_warm(server)
            server_start = (bed.proxy.count(action="AssumeRole"), bed.imds.request_count)
            envs["server"] = client_env(base, server)
            for env in envs.values():  # warm-up: page cache, .pyc files
                run_one(command, dict(env, ASSUME_PROVIDER_CACHE_DIR=str(Path(home) / "warm")))
            for round_ in range(options.rounds):
                envs["share-disk"]["ASSUME_PROVIDER_CACHE_DIR"] = str(Path(home) / f"c{round_}")
                turn = round_ % len(contenders)
                for name in contenders[turn:] + contenders[:turn]:
                    counts = (bed.proxy.count(action="AssumeRole"), bed.imds.request_count)
                    batch = (command, envs[name], options.processes, options.parallel)
                    wall, cpu = timed_batch(*batch)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
                    assume[name].append(bed.proxy.count(action="AssumeRole") - counts[0])
                    imds[name].append(bed.imds.request_count - counts[1])
                print(
                    f"round {round_ + 1}: "
                    + ", ".join(f"{name} {walls[name][-1]:.2f} s" for name in contenders),
                    flush=True,
                )
            code, err = server.stop()
        if code != 0:
            raise SystemExit(f"serve exited {code}: {err}")
        load_after = os.getloadavg()

    report(
        options, contenders, walls, cpus, assume, imds, server_start, (load_before, load_after)
    )


def report(
    options: argparse.Namespace,
    contenders: list[str],
    walls: dict[str, list[float]],
    cpus: dict[str, list[float]],
    assume: dict[str, list[int]],
    imds: dict[str, list[int]],
    server_start: tuple[int, int],
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> None:
    n = options.processes
    vs_native = {name: paired_ratio(walls[name], walls["native"]) for name in contenders}
    vs_static = {name: paired_ratio(walls[name], walls["static"]) for name in contenders}
    cpu_vs_native = {name: paired_ratio(cpus[name], cpus["native"]) for name in contenders}
    print(
        f"\n{n} processes per batch, {options.parallel} at a time, on {os.cpu_count()} CPUs; "
        f"{options.rounds} rounds, contenders taking turns; load average "
        f"{load[0][0]:.1f} before, {load[1][0]:.1f} after:"
    )
    print(
        "| contender | wall s per batch (median) | vs native, paired (90% interval) "
        "| vs static, paired (90% interval) | AssumeRole per batch | IMDS requests per batch "
        "| CPU s per batch (median) | CPU vs native, paired |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in contenders:
        ratio, low, high = vs_native[name]
        floor, floor_low, floor_high = vs_static[name]
        counts_a = "/".join(str(c) for c in sorted(set(assume[name])))
        counts_i = "/".join(str(c) for c in sorted(set(imds[name])))
        if name == "server":
            counts_a += f" (+{server_start[0]} at its start)"
            counts_i += f" (+{server_start[1]} at its start)"
        cpu_ratio, cpu_low, cpu_high = cpu_vs_native[name]
        print(
            f"| {name} | {statistics.median(walls[name]):.2f} "
            f"| {ratio:.3f}x ({low:.3f}-{high:.3f}) "
            f"| {floor:.3f}x ({floor_low:.3f}-{floor_high:.3f}) | {counts_a} | {counts_i} "
            f"| {statistics.median(cpus[name]):.2f} "
            f"| {cpu_ratio:.3f}x ({cpu_low:.3f}-{cpu_high:.3f}) |"
        )
    summary: dict[str, object] = {
        "zero_code_vs_native": round(vs_native["zero-code"][0], 3),
        "zero_code_vs_native_interval": [round(x, 3) for x in vs_native["zero-code"][1:]],
        "zero_code_target": 1.05,
        "zero_code_met": vs_native["zero-code"][0] <= 1.05,
        "zero_code_cpu_vs_native": round(cpu_vs_native["zero-code"][0], 3),
    }
    if "share-disk" in contenders:
        one_each = all(count == 1 for count in assume["share-disk"])
        summary.update(
            share_disk_vs_static=round(vs_static["share-disk"][0], 3),
            share_disk_vs_static_interval=[round(x, 3) for x in vs_static["share-disk"][1:]],
            share_disk_assume_role_per_batch=sorted(set(assume["share-disk"])),
            share_disk_target=1.10,
            share_disk_met=one_each and vs_static["share-disk"][0] <= 1.10,
        )
    else:
        summary["share_disk"] = "skipped: the installed package has no share setting"
    print("\n" + json.dumps(summary))


if __name__ == "__main__":
    main()
