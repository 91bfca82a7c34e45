"""assume-provider's async view against aiobotocore's own assume-role credentials, side by side.

    ci/async-tests is not needed: run with the async venv's interpreter,
    .venv-aio/bin/python benchmarks/aio_refresh.py

Both assume the test bed's TargetRole (moto behind the counting proxy, the IMDSv2 fake), in
this one process and one event loop:

  aiobotocore      a config profile with ``role_arn`` + ``source_profile`` (static keys):
                   aiobotocore's AioAssumeRoleProvider, an AioDeferredRefreshableCredentials
  assume-provider  ``assume_provider.register(AioSession(), role_arn=...)``

Scenarios
  hot path  ns per ``await get_frozen_credentials()`` on valid credentials, interleaved
            repeats, medians.
  storm     each side's clock moved to 30 s before its credentials expire (inside both
            blocking windows), every AssumeRole answered HTTP 500, and 32 tasks await
            ``get_frozen_credentials()`` at once: AssumeRole attempts at the proxy (the
            STS clients make up to 3 attempts per call: AWS_RETRY_MODE=standard) and tasks
            that got an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from testbed import TestBed
from testbed.proxy import Fault

CALLS = 2000
REPEATS = 15
TASKS = 32


async def per_call_ns(credentials: Any) -> float:
    get = credentials.get_frozen_credentials
    started = time.perf_counter()
    for _ in range(CALLS):
        await get()
    return (time.perf_counter() - started) / CALLS * 1e9


async def storm(credentials: Any) -> int:
    results = await asyncio.gather(
        *(credentials.get_frozen_credentials() for _ in range(TASKS)), return_exceptions=True
    )
    return sum(isinstance(result, BaseException) for result in results)


async def main(bed: TestBed) -> None:
    import aiobotocore.session

    import assume_provider
    import assume_provider.credentials.fetcher as fetcher

    world = bed.world
    native_session = aiobotocore.session.AioSession(profile="native")
    ours_session = aiobotocore.session.AioSession()
    assume_provider.register(ours_session, role_arn=world.target_role_arn)
    native = await native_session.get_credentials()
    ours = await ours_session.get_credentials()
    await native.get_frozen_credentials()
    await ours.get_frozen_credentials()
    print(f"aiobotocore: {type(native).__name__}; assume-provider: {type(ours).__name__}")

    timings: dict[str, list[float]] = {"aiobotocore": [], "assume-provider": []}
    for _ in range(REPEATS):
        timings["aiobotocore"].append(await per_call_ns(native))
        timings["assume-provider"].append(await per_call_ns(ours))
    native_ns = statistics.median(timings["aiobotocore"])
    ours_ns = statistics.median(timings["assume-provider"])
    print(f"\nhot path, ns per await get_frozen_credentials() ({REPEATS} x {CALLS}, medians)")
    print(f"  aiobotocore      {native_ns:9.0f}")
    print(f"  assume-provider  {ours_ns:9.0f}   ratio {ours_ns / native_ns:.3f}x")

    # Both sides log each failed refresh with a traceback or a line; 32 of them are noise here.
    logging.getLogger("aiobotocore").setLevel(logging.CRITICAL)
    logging.getLogger("assume_provider").setLevel(logging.CRITICAL)
    print(f"\nstorm: {TASKS} tasks, every AssumeRole answered 500, 30 s before expiry")
    bed.proxy.inject(Fault.server_error(500), action="AssumeRole", times=None)
    import botocore.credentials

    # aiobotocore's clocks: the credentials object's, and its fetcher cache's (botocore's
    # module-level _local_now), or the cache would answer without asking STS.
    moved = native._expiry_time - _30s()
    native._time_fetcher = lambda: moved
    botocore.credentials._local_now = lambda: moved
    before = bed.proxy.count(action="AssumeRole")
    failed = await storm(native)
    attempts = bed.proxy.count(action="AssumeRole") - before
    print(f"  aiobotocore      STS attempts {attempts:4d}   failed tasks {failed:2d}/{TASKS}")
    expiry = ours.engine.current.expiration
    fetcher.clock = lambda: expiry - 30
    before = bed.proxy.count(action="AssumeRole")
    failed = await storm(ours)
    attempts = bed.proxy.count(action="AssumeRole") - before
    refreshes = ours.engine.stats.fetches - 1
    print(
        f"  assume-provider  STS attempts {attempts:4d}   failed tasks {failed:2d}/{TASKS}"
        f"   (refreshes: {refreshes})"
    )
    bed.proxy.clear_faults()


def _30s() -> Any:
    import datetime

    return datetime.timedelta(seconds=30)


def run() -> None:
    with TestBed() as bed, tempfile.TemporaryDirectory() as folder:
        env = bed.env(Path(folder))
        os.environ.update(env)
        os.environ["AWS_RETRY_MODE"] = "standard"
        os.environ["AWS_MAX_ATTEMPTS"] = "3"
        admin = bed.admin.client_kwargs()
        Path(env["AWS_CONFIG_FILE"]).write_text(
            "[profile native]\n"
            f"role_arn = {bed.world.target_role_arn}\n"
            "source_profile = source\n"
            "[profile source]\n"
            f"aws_access_key_id = {admin['aws_access_key_id']}\n"
            f"aws_secret_access_key = {admin['aws_secret_access_key']}\n"
        )
        asyncio.run(main(bed))


if __name__ == "__main__":
    run()
