"""One engine for sync and async callers, off the loop: counts at the proxy, a loop that answers
pings while STS is held, several loops, asyncio.run() twice, fork, STS failing, ExpiredToken."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import textwrap
import threading

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

async def many(count, config=None):
    session = aiobotocore.session.AioSession()
    if config is not None:  # the STS calls made for the session honour it too
        session.set_default_client_config(config)
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
        # The loop answers each "ping" line on stdin with a "pong" line, from a reader
        # callback: a loop blocked on STS would answer none until STS did.
        loop, pongs = asyncio.get_running_loop(), 0
        def answer():
            nonlocal pongs
            data = os.read(0, 100)
            if not data:
                loop.remove_reader(0)
                return
            for _ in range(data.count(b"\\n")):
                pongs += 1
                print("pong", flush=True)
        loop.add_reader(0, answer)
        # A read timeout beyond the hold's limit: the held AssumeRole is not given up on
        # (and asked again) however long the test takes to see its pongs.
        from aiobotocore.config import AioConfig
        arns = await many(10, AioConfig(read_timeout=600))
        loop.remove_reader(0)
        return {"arns": sorted(set(arns)), "pongs": pongs}
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


def test_the_loop_keeps_answering_while_assume_role_is_held(
    aws_env: TestBed, app_env: dict[str, str]
) -> None:
    """The AssumeRole is held at the proxy until the app's loop has answered three pings on
    its own (a loop blocked on STS answers none: the hold outlasts every wait here)."""
    gate = threading.Event()
    aws_env.proxy.inject(Fault.hold(gate, limit=300), action="AssumeRole", times=1)
    app = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCENARIOS), "ticker"],
        env=app_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert app.stdin is not None and app.stdout is not None
    try:
        assert aws_env.proxy.wait_for_count(1, action="AssumeRole")  # held from now on
        for _ in range(3):
            app.stdin.write(b"ping\n")
            app.stdin.flush()
            ready, _, _ = select.select([app.stdout], [], [], 60)  # failure-only bound
            assert ready, "the loop did not answer while AssumeRole was held"
            assert app.stdout.readline() == b"pong\n"
        assert aws_env.proxy.count(action="AssumeRole") == 1  # still the held one
    finally:
        gate.set()
        try:  # communicate() closes the app's stdin: its reader stops on that end of file
            out, err = app.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            app.kill()
            out, err = app.communicate()
    assert app.returncode == 0, err[-4000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["arns"] == [arn_of(aws_env)]
    assert result["pongs"] == 3
    assert aws_env.proxy.count(action="AssumeRole") == 1


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
