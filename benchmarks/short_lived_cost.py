"""What one short-lived process costs in CPU work, per way of getting the role: counted, so
that the figures do not move with the machine's load as wall time does.

The same contenders and child as ``short_lived.py`` (botocore's profile ``native``,
``zero-code``, ``share-disk`` with its entry already on disk, ``static`` keys: the floor),
one process at a time against the local test bed:

  instructions  valgrind's callgrind count of the whole process, in millions (``--no-valgrind``
                skips it); the same process twice gives the same count within ~0.1%
  syscalls      how many system calls the process made (``strace -f -c``; ``--strace``), the
                kernel's share of the work that an instruction count does not see
  CPU           user + system seconds of each process (``getrusage``), the median of
                ``--runs`` runs, the contenders taking turns: this one does move with load

Also, with ``--import-only``, the same for ``import boto3`` alone (the package is imported with
botocore when zero-code is on).

    python benchmarks/short_lived_cost.py [--python PY] [--runs 9] [--strace]

Without ``--python`` it builds a venv from this checkout's wheel (as ``short_lived.py``).
Prints a table and one JSON line with the ratios the targets of issue 19 name (zero-code vs
native, share-disk vs static).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from short_lived import CHILD, build_venv, contender_envs
from testbed import TestBed  # short_lived put tests/ on sys.path

CONTENDERS = ("native", "zero-code", "share-disk", "static")
IMPORT_ONLY = "import boto3"


def instructions(command: list[str], env: dict[str, str]) -> float:
    """Millions of instructions callgrind counts for ``command``."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        env=env, capture_output=True, text=True, check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"callgrind run failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1)) / 1e6


def syscalls(command: list[str], env: dict[str, str]) -> int:
    """How many system calls ``command`` made, its threads included."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        subprocess.run(
            ["strace", "-f", "-c", "-o", out.name, *command],
            env=env, capture_output=True, check=True,
        )
        total = [line for line in out.read().splitlines() if line.strip().endswith("total")]
    return int(total[-1].split()[3]) if total else 0


def cpu_seconds(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """User and system CPU seconds, and minor page faults, of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"a process failed ({done.returncode}): {done.stderr.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        after.ru_utime - before.ru_utime,
        after.ru_stime - before.ru_stime,
        after.ru_minflt - before.ru_minflt,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="interpreter with the package installed (.pth too)")
    parser.add_argument("--venvs", type=Path, help="folder to build (or reuse) the venv in")
    parser.add_argument("--runs", type=int, default=9, help="CPU-time runs per contender")
    parser.add_argument("--strace", action="store_true", help="count system calls too")
    parser.add_argument("--no-valgrind", action="store_true", help="skip instruction counts")
    parser.add_argument("--import-only", action="store_true", help="`import boto3` rows too")
    options = parser.parse_args()
    if not options.no_valgrind and not shutil.which("valgrind"):
        raise SystemExit("valgrind not found (apt-get install valgrind), or pass --no-valgrind")

    with TestBed() as bed, tempfile.TemporaryDirectory(prefix="short-lived-cost-") as home:
        python = options.python or build_venv(options.venvs or Path(home) / "build")
        envs = contender_envs(bed, Path(home))
        del envs["base"]
        for env in envs.values():
            env["PYTHONHASHSEED"] = "0"  # the same dict layouts, so the same counts
        envs["share-disk"]["ASSUME_PROVIDER_CACHE_DIR"] = str(Path(home) / "shared")
        children = {"process": CHILD}
        if options.import_only:
            children["import boto3"] = IMPORT_ONLY
        rows: dict[tuple[str, str], dict[str, float]] = {}
        for child_name, child in children.items():
            command = [python, "-c", child]
            for name in CONTENDERS:  # warm-up: .pyc files, page cache, share-disk's entry
                cpu_seconds(command, envs[name])
            for name in CONTENDERS:
                row = rows.setdefault((child_name, name), {})
                if not options.no_valgrind:
                    row["instructions"] = instructions(command, envs[name])
                if options.strace:
                    row["syscalls"] = syscalls(command, envs[name])
            samples: dict[str, list[tuple[float, float, int]]] = {n: [] for n in CONTENDERS}
            for run in range(options.runs):
                turn = run % len(CONTENDERS)
                for name in CONTENDERS[turn:] + CONTENDERS[:turn]:
                    samples[name].append(cpu_seconds(command, envs[name]))
            for name in CONTENDERS:
                user, system, faults = zip(*samples[name], strict=True)
                row = rows[(child_name, name)]
                total = [u + s for u, s in zip(user, system, strict=True)]
                row["cpu_ms"] = 1000 * statistics.median(total)
                row["sys_ms"] = 1000 * statistics.median(system)
                row["page_faults"] = statistics.median(faults)
    report(rows, options)


def report(rows: dict[tuple[str, str], dict[str, float]], options: argparse.Namespace) -> None:
    names = ("instructions", "syscalls", "page_faults", "cpu_ms", "sys_ms")
    columns = [c for c in names if c in next(iter(rows.values()))]
    titles = {
        "instructions": "M instructions",
        "syscalls": "syscalls",
        "page_faults": "page faults",
        "cpu_ms": "CPU ms (median)",
        "sys_ms": "of which system",
    }
    print(f"load average {os.getloadavg()[0]:.1f}; CPU over {options.runs} runs each")
    print("| child | contender | " + " | ".join(titles[c] for c in columns) + " |")
    print("|---|---|" + "---:|" * len(columns))
    for (child, name), row in rows.items():
        cells = " | ".join(
            f"{row[c]:,.0f}" if c in ("syscalls", "page_faults") else f"{row[c]:,.1f}"
            for c in columns
        )
        print(f"| {child} | {name} | {cells} |")
    summary: dict[str, float] = {}
    for column in columns:
        summary[f"zero_code_vs_native_{column}"] = round(
            rows[("process", "zero-code")][column] / rows[("process", "native")][column], 3
        )
        summary[f"share_disk_vs_static_{column}"] = round(
            rows[("process", "share-disk")][column] / rows[("process", "static")][column], 3
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
