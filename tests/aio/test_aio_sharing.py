"""One engine for sync and async callers, off the loop: counts at the proxy, ticks of a task on
the same loop, several loops, asyncio.run() twice, fork, STS failing, ExpiredToken."""

from __future__ import annotations

import pytest

pytest.importorskip("aiobotocore", reason="the async tests run in their own venv: ci/async-tests")

from aio_apps import run_app
from testbed import TestBed
from testbed.proxy import Fault

SCENARIOS = """
import asyncio, json, os, sys, threading, time
import boto3
import aiobotocore.session

scenario = sys.argv[1]

async def caller_arn(session):
    async with session.create_client("sts") as sts:
        return (await sts.get_caller_identity())["Arn"]

async def many(count):
    session = aiobotocore.session.AioSession()
    async with session.create_client("sts") as sts:
        # the client exists before any credentials are fetched: all tasks start cold
        return [r["Arn"] for r in await asyncio.gather(
            *(sts.get_caller_identity() for _ in range(count)))]

out = {}
if scenario == "mixed":
    arns = [boto3.Session().client("sts").get_caller_identity()["Arn"] for _ in range(5)]
    async def five():
        return [await caller_arn(aiobotocore.session.AioSession()) for _ in range(5)]
    arns += asyncio.run(five())
    out["arns"] = sorted(set(arns))
elif scenario == "cold50":
    out["arns"] = sorted(set(asyncio.run(many(50))))
elif scenario == "ticker":
    async def main():
        ticks, gaps = 0, []
        done = asyncio.Event()
        async def ticker():
            nonlocal ticks
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.05)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
                ticks += 1
        task = asyncio.create_task(ticker())
        started = time.monotonic()
        arns = await many(10)
        elapsed = time.monotonic() - started
        done.set()
        await task
        return {"arns": sorted(set(arns)), "ticks": ticks, "max_gap": max(gaps),
                "elapsed": elapsed}
    out = asyncio.run(main())
elif scenario == "loops":
    results = []
    def in_thread():
        results.extend(asyncio.run(many(5)))
    threads = [threading.Thread(target=in_thread) for _ in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    results += asyncio.run(many(3))  # asyncio.run() again, in the main thread
    results += asyncio.run(many(3))
    out["arns"] = sorted(set(results))
    out["calls"] = len(results)
elif scenario == "fork":
    parent = asyncio.run(many(2))
    pid = os.fork()
    if pid == 0:
        try:
            child = asyncio.run(many(5))
            os._exit(0 if set(child) == set(parent) else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    out["arns"] = sorted(set(parent))
    out["child_status"] = os.waitstatus_to_exitcode(status)
print(json.dumps(out))
"""


def arn_of(bed: TestBed, session_name: str = "async-share") -> str:
    return bed.world.assumed_role_arn(bed.world.target_role_arn, session_name)


@pytest.fixture
def app_env(aws_env: TestBed, subprocess_env: dict[str, str]) -> dict[str, str]:
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = aws_env.world.target_role_arn
    subprocess_env["ASSUME_PROVIDER_SESSION_NAME"] = "async-share"
    return subprocess_env


def test_five_boto3_and_five_aiobotocore_sessions_cost_one_assume_role(
    aws_env: TestBed, app_env: dict[str, str]
) -> None:
    result = run_app(SCENARIOS, app_env, "mixed")
    assert result["arns"] == [arn_of(aws_env)]
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_fifty_concurrent_tasks_on_a_cold_start_cost_one_assume_role(
    aws_env: TestBed, app_env: dict[str, str]
) -> None:
    result = run_app(SCENARIOS, app_env, "cold50")
    assert result["arns"] == [arn_of(aws_env)]
    assert aws_env.proxy.count(action="AssumeRole") == 1
    assert aws_env.proxy.count(action="GetCallerIdentity") == 50


def test_the_loop_keeps_ticking_while_assume_role_takes_1_5_s(
    aws_env: TestBed, app_env: dict[str, str]
) -> None:
    aws_env.proxy.inject(Fault.delay(1.5), action="AssumeRole", times=1)
    result = run_app(SCENARIOS, app_env, "ticker")
    print(f"ticks={result['ticks']} max_gap={result['max_gap']:.3f}s "
          f"elapsed={result['elapsed']:.3f}s")
    assert result["arns"] == [arn_of(aws_env)]
    assert aws_env.proxy.count(action="AssumeRole") == 1
    # Every 50 ms through 1.5 s: about 30 ticks. A loop blocked on STS would tick at most once.
    assert result["ticks"] >= 20


def test_several_loops_in_threads_and_asyncio_run_twice_share_one_assume_role(
    aws_env: TestBed, app_env: dict[str, str]
) -> None:
    aws_env.proxy.inject(Fault.delay(0.5), action="AssumeRole", times=1)  # all start cold
    result = run_app(SCENARIOS, app_env, "loops")
    assert result == {"arns": [arn_of(aws_env)], "calls": 26}
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_a_forked_child_uses_the_inherited_credentials_on_its_own_loop(
    aws_env: TestBed, app_env: dict[str, str]
) -> None:
    result = run_app(SCENARIOS, app_env, "fork")
    assert result == {"arns": [arn_of(aws_env)], "child_status": 0}
    assert aws_env.proxy.count(action="AssumeRole") == 1
