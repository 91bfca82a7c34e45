"""assume-provider against botocore's own AssumeRoleProvider and two peers, side by side.

    python benchmarks/refresh_vs_peers.py [--peers-dir DIR] [--no-doc]

Contenders, each assuming the test bed's TargetRole from the EC2 instance profile (the
IMDSv2 fake), each in a fresh interpreter of its own:

  assume-provider       ``ASSUME_PROVIDER_ROLE_ARN`` + ``assume_provider.install()``,
                        then plain ``boto3.Session()``s
  botocore              a config profile with ``role_arn`` + ``credential_source =
                        Ec2InstanceMetadata`` (``AWS_PROFILE``), plain ``boto3.Session()``s
  aws-assume-role-lib   ``aws_assume_role_lib.assume_role(boto3.Session(), RoleArn)``
  boto3-refresh-session ``RefreshableSession(method="sts", assume_role_kwargs={...})``

The two peers are not dependencies of this project: the script runs
``pip install --no-deps --target DIR`` of pinned versions (they need only boto3/botocore,
already here, and boto3-refresh-session's small boto3-client-cache) into a throwaway folder
(a temporary directory, removed at the end, or ``--peers-dir`` to keep and reuse one) and
puts DIR on ``PYTHONPATH`` of the peer subprocesses only.

Everything runs against the local test bed (moto behind a counting proxy, an IMDSv2 fake):
request counts are read in this parent process from the proxy and the fake; AssumeRole
calls are attributed by RoleSessionName (each contender uses its own). Every child gets
``AWS_RETRY_MODE=standard`` and ``AWS_MAX_ATTEMPTS=3``: the same per-request retry policy
that assume-provider pins on its own STS client, so attempt counts compare like for like
(botocore's default "legacy" mode makes up to 5 attempts, and the peers' STS-failing storm
would not fit the time budget).

Scenarios
  sessions  20 ``boto3.Session()``s in a row, each creates a DynamoDB client and reads A's
            item: AssumeRole calls, STS requests, IMDS requests (all, and credential GETs).
  threads   32 threads, each with its own session, one DynamoDB read each: the same counts.
  hot path  ns per ``get_frozen_credentials()`` on valid credentials: all four credentials
            objects in one process (assume-provider installed last, so it touches no other
            contender's sessions), timeit medians of interleaved repeats.
  storm     the credentials are forced near expiry without patching anyone's code: the
            contender's first AssumeRole is answered (by the proxy) with real moto
            credentials whose Expiration is 9 s away, the same for every contender. At
            5 s before that expiry, which is inside every contender's blocking window
            (botocore: 10 min; assume-provider: 1 min, and past its no-refresh floor of a
            quarter of the lifetime), 32 threads call ``get_frozen_credentials()`` on the
            one credentials object of the process at once. Measured: AssumeRole attempts at
            the proxy, worst and median per-thread wall time of that call, callers that got
            an error, callers served fresh vs the old (cached) credentials. With STS up
            (3 interleaved rounds, medians), then with every AssumeRole answered HTTP 500
            (``times=None``, one round). The three botocore-based contenders'
            STS-failing storms run concurrently (their time is spent in the lock queue and
            retry back-off sleeps), assume-provider's on its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "refresh-benchmark.md"

PEER_PACKAGES = [
    "aws-assume-role-lib==2.10.0",
    "boto3-refresh-session==10.0.7",
    "boto3-client-cache==2.1.19",
]

OURS = "assume-provider"
NATIVE = "botocore"
AARL = "aws-assume-role-lib"
BRS = "boto3-refresh-session"
CONTENDERS = [OURS, NATIVE, AARL, BRS]
SESSION_NAMES = {
    OURS: "bench-assume-provider",
    NATIVE: "bench-botocore",
    AARL: "bench-aarl",
    BRS: "bench-brs",
}
NATIVE_PROFILE = "bench-native"

SESSIONS = 20
THREADS = 32
STORM_THREADS = 32
CRAFTED_LIFETIME = 9  # seconds from the crafted AssumeRole answer to its Expiration
STORM_AT = 5  # seconds before that Expiration when the storm starts
STORM_UP_ROUNDS = 3  # the STS-up storm is short: repeat it (interleaved) and quote medians
CHILD_MARK = "@@"


# =========================================================================== child side


def child_main(contender: str, scenario: str) -> None:
    role_arn = os.environ["BENCH_ROLE_ARN"]
    if contender == OURS or scenario == "hot":
        import assume_provider

        if scenario != "hot":
            assume_provider.install()  # role from ASSUME_PROVIDER_ROLE_ARN
    if scenario == "hot":
        result = child_hot(role_arn)
    elif scenario in ("sessions", "threads"):
        result = child_calls(contender, role_arn, scenario)
    else:
        result = child_storm(contender, role_arn)
    emit("RESULT", result)


def emit(tag: str, payload: Any = None) -> None:
    sys.stdout.write(f"{CHILD_MARK}{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


def wait_for(tag: str) -> Any:
    line = sys.stdin.readline()
    if not line.startswith(tag):
        raise SystemExit(f"expected {tag} from the parent, got {line!r}")
    return json.loads(line[len(tag) :])


def make_session(contender: str, role_arn: str, profile: Optional[str] = None) -> Any:
    """A boto3 session as the contender's documentation says to make one."""
    import boto3

    if contender in (OURS, NATIVE):
        return boto3.Session(profile_name=profile)
    if contender == AARL:
        import aws_assume_role_lib  # type: ignore[import-not-found]

        return aws_assume_role_lib.assume_role(
            boto3.Session(), role_arn, RoleSessionName=SESSION_NAMES[AARL]
        )
    if contender == BRS:
        import boto3_refresh_session  # type: ignore[import-not-found]

        return boto3_refresh_session.RefreshableSession(
            method="sts",
            assume_role_kwargs={"RoleArn": role_arn, "RoleSessionName": SESSION_NAMES[BRS]},
        )
    raise ValueError(contender)


def one_call(contender: str, role_arn: str) -> None:
    session = make_session(contender, role_arn)
    item = session.client("dynamodb").get_item(
        TableName=os.environ["BENCH_TABLE"], Key=json.loads(os.environ["BENCH_ITEM_KEY"])
    )
    if "Item" not in item:  # A's item is visible only with A's role: a real check
        raise RuntimeError(f"{contender}: A's item not found: not running as TargetRole")


def child_calls(contender: str, role_arn: str, scenario: str) -> dict[str, Any]:
    import boto3  # noqa: F401 - imported before timing starts

    errors: list[str] = []
    start = time.perf_counter()
    if scenario == "sessions":
        for _ in range(SESSIONS):
            one_call(contender, role_arn)
    else:
        barrier = threading.Barrier(THREADS)

        def work() -> None:
            barrier.wait()
            try:
                one_call(contender, role_arn)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return {"seconds": time.perf_counter() - start, "errors": errors[:3], "n_errors": len(errors)}


def credentials_of(contender: str, role_arn: str, profile: Optional[str] = None) -> Any:
    credentials = make_session(contender, role_arn, profile).get_credentials()
    if credentials is None:
        raise RuntimeError(f"{contender}: no credentials")
    return credentials


def child_hot(role_arn: str) -> dict[str, Any]:
    import assume_provider

    objects: dict[str, Any] = {
        NATIVE: credentials_of(NATIVE, role_arn, NATIVE_PROFILE),
        AARL: credentials_of(AARL, role_arn),
        BRS: credentials_of(BRS, role_arn),
    }
    # Installed last: sessions made before install() keep their own providers.
    assume_provider.install(role_arn=role_arn, session_name=SESSION_NAMES[OURS])
    objects[OURS] = credentials_of(OURS, role_arn)
    calls: dict[str, Callable[[], Any]] = {}
    for name, credentials in objects.items():
        frozen = credentials.get_frozen_credentials()  # fetch once; the rest is the hot path
        if not frozen.token or getattr(credentials, "method", "") in ("env", "iam-role"):
            raise RuntimeError(f"{name}: not assumed-role credentials ({credentials.method})")
        calls[name] = credentials.get_frozen_credentials
    number = int(os.environ.get("BENCH_HOT_NUMBER", "10000"))
    repeat = int(os.environ.get("BENCH_HOT_REPEAT", "15"))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):  # interleaved: drifts in machine load hit every contender
        for name, call in calls.items():
            samples[name].append(timeit.timeit(call, number=number) / number * 1e9)
    methods = {name: getattr(c, "method", "?") for name, c in objects.items()}
    return {
        "ns": {name: statistics.median(values) for name, values in samples.items()},
        "number": number,
        "repeat": repeat,
        "methods": methods,
    }


def child_storm(contender: str, role_arn: str) -> dict[str, Any]:
    credentials = credentials_of(contender, role_arn)
    emit("BUILT")
    crafted_key = wait_for("PRIME")
    primed = credentials.get_frozen_credentials()
    primed_at = time.time()
    if primed.access_key != crafted_key:
        raise RuntimeError(f"{contender}: first AssumeRole answer was not the crafted one")
    emit("PRIMED", {"at": primed_at})
    go_at = wait_for("GO")
    barrier = threading.Barrier(STORM_THREADS)
    stalls: list[float] = []
    keys: list[Optional[str]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def storm() -> None:
        barrier.wait()
        start = time.perf_counter()
        try:
            key: Optional[str] = credentials.get_frozen_credentials().access_key
            error = None
        except Exception as exc:
            key, error = None, f"{type(exc).__name__}: {exc}"[:200]
        elapsed = time.perf_counter() - start
        with lock:
            stalls.append(elapsed)
            keys.append(key)
            if error is not None:
                errors.append(error)

    threads = [threading.Thread(target=storm) for _ in range(STORM_THREADS)]
    time.sleep(max(0.0, go_at - time.time()))
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "started_left": None,  # filled by the parent, which knows the Expiration
        "started": started,
        "max": max(stalls),
        "median": statistics.median(stalls),
        "n_errors": len(errors),
        "errors": sorted(set(errors))[:2],
        "served_stale": sum(1 for k in keys if k == crafted_key),
        "served_fresh": sum(1 for k in keys if k is not None and k != crafted_key),
    }


# ========================================================================== parent side


class ScheduleMissed(RuntimeError):
    """The children primed too late to start the storm inside every blocking window."""


class Child:
    """One contender's interpreter, spoken to through stdin/stdout lines."""

    started = 0

    def __init__(self, contender: str, scenario: str, env: dict[str, str], logs: Path) -> None:
        self.contender = contender
        Child.started += 1
        self.stderr_path = logs / f"{Child.started:02d}-{contender}-{scenario}.stderr"
        self._stderr = open(self.stderr_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", contender, scenario],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def expect(self, tag: str) -> Any:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(CHILD_MARK + tag + " "):
                return json.loads(line[len(CHILD_MARK + tag) + 1 :])
        self.process.wait()
        self._stderr.close()
        tail = self.stderr_path.read_text()[-2000:]
        raise RuntimeError(f"{self.contender} child ended before {tag}:\n{tail}")

    def send(self, tag: str, payload: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{tag}{json.dumps(payload)}\n")
        self.process.stdin.flush()

    def close(self) -> None:
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


class Bench:
    def __init__(self, bed: Any, peers_dir: Path, home: Path) -> None:
        from testbed import Fault

        self.Fault = Fault
        self.bed = bed
        self.peers_dir = peers_dir
        self.logs = home / "logs"
        self.logs.mkdir()
        world = bed.world
        aws_dir = home / "aws"
        aws_dir.mkdir()
        (aws_dir / "config").write_text(
            f"[profile {NATIVE_PROFILE}]\n"
            f"role_arn = {world.target_role_arn}\n"
            "credential_source = Ec2InstanceMetadata\n"
            f"role_session_name = {SESSION_NAMES[NATIVE]}\n"
        )
        self.base = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            **bed.env(aws_dir),
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "3",
            "BENCH_ROLE_ARN": world.target_role_arn,
            "BENCH_TABLE": world.table_name,
            "BENCH_ITEM_KEY": json.dumps(world.secret_item_key),
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def env(self, contender: str) -> dict[str, str]:
        env = dict(self.base)
        paths = [str(ROOT / "tests")]  # the child imports nothing from it; harmless
        if contender == OURS:
            paths.insert(0, str(ROOT))
            env["ASSUME_PROVIDER_ROLE_ARN"] = self.bed.world.target_role_arn
            env["ASSUME_PROVIDER_SESSION_NAME"] = SESSION_NAMES[OURS]
        elif contender == "all":
            paths[:0] = [str(ROOT), str(self.peers_dir)]
        else:
            paths.insert(0, str(self.peers_dir))
            env["ASSUME_PROVIDER_ENABLE"] = "0"  # in case the zero-code hook is installed
        if contender == NATIVE:
            env["AWS_PROFILE"] = NATIVE_PROFILE
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def assume_role_calls(self, contender: str) -> int:
        name = SESSION_NAMES[contender]
        return sum(
            1
            for r in self.bed.proxy.calls(action="AssumeRole")
            if r.params.get("RoleSessionName") == name
        )

    # -- scenarios -----------------------------------------------------------------------

    def calls(self, contender: str, scenario: str) -> dict[str, Any]:
        self.bed.reset()
        child = Child(contender, scenario, self.env(contender), self.logs)
        result = dict(child.expect("RESULT"))
        child.close()
        result.update(
            assume_role=self.assume_role_calls(contender),
            sts=self.bed.proxy.count(service="sts"),
            imds=self.bed.imds.request_count,
            imds_credentials=self.bed.imds.credential_request_count,
        )
        return result

    def hot(self) -> dict[str, Any]:
        self.bed.reset()
        child = Child("all", "hot", self.env("all"), self.logs)
        result = child.expect("RESULT")
        child.close()
        return dict(result)

    def crafted_answer(self, expiration: float) -> tuple[str, bytes]:
        """Real moto credentials (fetched straight from moto, uncounted), near expiry."""
        return self.bed.assume_role_answer(expiration, "bench-crafted")

    def storm(self, contenders: Sequence[str], sts_failing: bool) -> dict[str, dict[str, Any]]:
        """One storm per contender, run together; tried again if the machine was too slow."""
        for _ in range(2):
            try:
                return self._storm(contenders, sts_failing)
            except ScheduleMissed as exc:
                print(f"  {exc}; trying again", flush=True)
        return self._storm(contenders, sts_failing)

    def _storm(self, contenders: Sequence[str], sts_failing: bool) -> dict[str, dict[str, Any]]:
        self.bed.reset()
        children = [Child(c, "storm", self.env(c), self.logs) for c in contenders]
        for child in children:
            child.expect("BUILT")
        expiration = float(math.ceil(time.time()) + CRAFTED_LIFETIME)
        key, body = self.crafted_answer(expiration)
        self.bed.proxy.inject(self.Fault.raw_body(body), action="AssumeRole", times=len(children))
        for child in children:
            child.send("PRIME", key)
        primed = [child.expect("PRIMED")["at"] for child in children]
        go_at = expiration - STORM_AT
        # assume-provider never refreshes in the first quarter of a lifetime it saw begin.
        latest_floor = max(at + 0.25 * (expiration - at) for at in primed)
        if latest_floor > go_at - 0.2 or time.time() > go_at - 0.2:
            for child in children:
                child.process.kill()
                child.close()
            raise ScheduleMissed("priming took too long for the storm schedule")
        self.bed.reset()  # forget the priming requests; count only the storm
        if sts_failing:
            self.bed.proxy.inject(self.Fault.server_error(500), action="AssumeRole", times=None)
        for child in children:
            child.send("GO", go_at)
        results = {}
        for contender, child in zip(contenders, children, strict=True):
            result = child.expect("RESULT")
            child.close()
            result["started_left"] = expiration - result["started"]
            results[contender] = result
        for contender in contenders:
            results[contender]["assume_role"] = self.assume_role_calls(contender)
        self.bed.proxy.clear_faults()
        return results


# ============================================================================== report


def combine(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several storms of one contender: medians of the per-round figures, sums of counts."""
    return {
        "rounds": len(rounds),
        "assume_role": statistics.median(r["assume_role"] for r in rounds),
        "assume_role_rounds": [r["assume_role"] for r in rounds],
        "max": statistics.median(r["max"] for r in rounds),
        "median": statistics.median(r["median"] for r in rounds),
        "n_errors": sum(r["n_errors"] for r in rounds),
        "served_fresh": sum(r["served_fresh"] for r in rounds),
        "served_stale": sum(r["served_stale"] for r in rounds),
        "started_left": statistics.median(r["started_left"] for r in rounds),
        "errors": sorted({e for r in rounds for e in r["errors"]})[:2],
    }


def ratio(value: float, base: float) -> str:
    if base == 0:
        return "n/a" if value == 0 else "inf"
    return f"{value / base:.2f}x"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
    return "\n".join(lines)


def report(results: dict[str, Any], meta: dict[str, Any]) -> str:
    out: list[str] = []
    for scenario, title in (
        ("sessions", f"{SESSIONS} `boto3.Session()`s in a row, one DynamoDB read each"),
        ("threads", f"{THREADS} threads, a session each, one DynamoDB read each"),
    ):
        base = results[scenario][OURS]
        rows = []
        for contender in CONTENDERS:
            r = results[scenario][contender]
            rows.append(
                [
                    contender,
                    r["assume_role"],
                    ratio(r["assume_role"], base["assume_role"]),
                    r["sts"],
                    r["imds"],
                    ratio(r["imds"], base["imds"]),
                    r["imds_credentials"],
                    r["n_errors"],
                    f"{r['seconds']:.2f}",
                ]
            )
        out.append(f"### {title}\n")
        out.append(
            table(
                [
                    "contender",
                    "AssumeRole",
                    "vs a-p",
                    "STS requests",
                    "IMDS requests",
                    "vs a-p",
                    "IMDS credential GETs",
                    "errors",
                    "wall s",
                ],
                rows,
            )
        )
        out.append("")

    hot = results["hot"]
    ours_ns = hot["ns"][OURS]
    out.append(
        f"### Hot path: ns per `get_frozen_credentials()` on valid credentials\n\n"
        f"Medians of {hot['repeat']} interleaved timings of {hot['number']} calls each, all "
        "four credentials objects in one process. Ratio = assume-provider / contender "
        "(<= 1.0: assume-provider is no slower).\n"
    )
    out.append(
        table(
            ["contender", "ns/call", "assume-provider / contender"],
            [[c, f"{hot['ns'][c]:.0f}", f"{ours_ns / hot['ns'][c]:.2f}"] for c in CONTENDERS],
        )
    )
    out.append("")

    for key, title in (
        ("storm_up", "Refresh storm, STS up"),
        ("storm_failing", "Refresh storm, every AssumeRole answered HTTP 500"),
    ):
        storm = results[key]
        base = storm[OURS]
        rounds = storm[OURS].get("rounds", 1)
        repeat = (
            f" Medians over {rounds} interleaved rounds (attempts per round in brackets); "
            "error and served counts summed over the rounds."
            if rounds > 1
            else " One round."
        )
        out.append(
            f"### {title}\n\n{STORM_THREADS} threads call `get_frozen_credentials()` at once "
            f"on credentials with ~{STORM_AT} s left (inside every contender's blocking "
            f"window). Stall = wall time of that one call in a thread.{repeat}\n"
        )
        rows = []
        for contender in CONTENDERS:
            r = storm[contender]
            attempts = f"{r['assume_role']:g}"
            if "assume_role_rounds" in r:
                attempts += " (" + ", ".join(map(str, r["assume_role_rounds"])) + ")"
            rows.append(
                [
                    contender,
                    attempts,
                    ratio(r["assume_role"], base["assume_role"]),
                    f"{r['max'] * 1000:.0f}",
                    ratio(r["max"], base["max"]),
                    f"{r['median'] * 1000:.0f}",
                    f"{r['n_errors']}/{STORM_THREADS * r.get('rounds', 1)}",
                    f"{r['served_fresh']}/{r['served_stale']}",
                    f"{r['started_left']:.1f}",
                ]
            )
        out.append(
            table(
                [
                    "contender",
                    "AssumeRole attempts",
                    "vs a-p",
                    "worst stall ms",
                    "vs a-p",
                    "median stall ms",
                    "callers with an error",
                    "served fresh/cached",
                    "s left at start",
                ],
                rows,
            )
        )
        errors = {c: storm[c]["errors"] for c in CONTENDERS if storm[c]["errors"]}
        if errors:
            out.append("\nErrors seen (first distinct ones):\n")
            for contender, texts in errors.items():
                for text in texts:
                    out.append(f"- {contender}: `{text}`")
        out.append("")
    out.append(
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + f". Python {meta['python']}, {meta['cpus']} CPUs, total run {meta['seconds']:.0f} s."
    )
    return "\n".join(out)


DOC_HEAD = """\
# assume-provider vs botocore and peers: sessions, threads, hot path, refresh storms

Measured by `python benchmarks/refresh_vs_peers.py` in one run against the local test bed
(moto behind a counting proxy, an IMDSv2 fake; everything on 127.0.0.1), each contender in
a fresh interpreter, counts read from the proxy and the fake. The machine is shared and
noisy: compare within one run, never across runs. "vs a-p" is the contender's figure
divided by assume-provider's. The script's docstring describes each scenario and how the
peers are installed (into a throwaway folder, never as dependencies).

Every child runs with `AWS_RETRY_MODE=standard` and `AWS_MAX_ATTEMPTS=3`, the per-request
retry policy assume-provider pins on its STS client, so STS attempts compare like for
like. The storm is set up without patching anyone's code: the contender's first AssumeRole
is answered (by the proxy) with real credentials whose Expiration is {lifetime} s away; the
storm starts {left} s before that Expiration, inside every contender's blocking window
(botocore's is the last 10 minutes, assume-provider's the last minute).

"""


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("botocore", "boto3", "moto"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    for pinned in PEER_PACKAGES[:2]:
        name, _, pinned_version = pinned.partition("==")
        found[name] = pinned_version
    return found


def install_peers(target: Path) -> None:
    if (target / "aws_assume_role_lib").is_dir() and (target / "boto3_refresh_session").is_dir():
        return
    print(f"installing the peers into {target} (benchmark only)", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--target",
            str(target),
            *PEER_PACKAGES,
        ],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-dir", type=Path, help="keep the peers installed here")
    parser.add_argument("--no-doc", action="store_true", help=f"do not write {DOC}")
    parser.add_argument(
        "--storm-rounds", type=int, default=STORM_UP_ROUNDS, help="rounds of the STS-up storm"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child_main(*options.child)
        return

    sys.path.insert(0, str(ROOT / "tests"))
    from testbed import TestBed

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="refresh-vs-peers-") as scratch:
        peers_dir = options.peers_dir or Path(scratch) / "peers"
        install_peers(peers_dir)
        home = Path(scratch) / "home"
        home.mkdir()
        with TestBed() as bed:
            bench = Bench(bed, peers_dir, home)
            results: dict[str, Any] = {"sessions": {}, "threads": {}}
            for scenario in ("sessions", "threads"):
                for contender in CONTENDERS:
                    print(f"{scenario}: {contender}", flush=True)
                    results[scenario][contender] = bench.calls(contender, scenario)
            print("hot path: all four, interleaved", flush=True)
            results["hot"] = bench.hot()
            rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
            for round_number in range(1, options.storm_rounds + 1):
                for contender in CONTENDERS:
                    print(f"storm, STS up, round {round_number}: {contender}", flush=True)
                    result = bench.storm([contender], sts_failing=False)[contender]
                    rounds[contender].append(result)
            results["storm_up"] = {c: combine(rounds[c]) for c in CONTENDERS}
            print(f"storm, STS failing: {OURS}", flush=True)
            results["storm_failing"] = bench.storm([OURS], sts_failing=True)
            print(f"storm, STS failing: {NATIVE}, {AARL}, {BRS} together", flush=True)
            results["storm_failing"].update(bench.storm([NATIVE, AARL, BRS], sts_failing=True))
    meta = {
        "versions": versions(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "seconds": time.perf_counter() - began,
    }
    text = report(results, meta)
    print()
    print(text)
    if not options.no_doc:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(DOC_HEAD.format(lifetime=CRAFTED_LIFETIME, left=STORM_AT) + text + "\n")
        print(f"\nwritten to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
