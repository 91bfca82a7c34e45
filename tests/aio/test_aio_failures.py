"""Async clients when STS fails after credentials are cached, when a service answers
ExpiredToken, and what aiobotocore's DEBUG logs show."""

from __future__ import annotations

import pytest

pytest.importorskip("aiobotocore", reason="the async tests run in their own venv: ci/async-tests")

from aio_apps import READ_SECRET, run_app_raw, world_args
from testbed import TestBed
from testbed.proxy import Fault

STORM = """
import asyncio, json, sys, time
import aiobotocore.session
import assume_provider.botocore.provider as provider

offset = 0.0  # time passing: both of the engine's clocks move
provider.clock = lambda: time.time() + offset
provider.monotonic = lambda: time.monotonic() + offset

async def storm(sts, count=32):
    results = await asyncio.gather(
        *(sts.get_caller_identity() for _ in range(count)), return_exceptions=True)
    return sum(isinstance(r, BaseException) for r in results)

async def main():
    global offset
    session = aiobotocore.session.AioSession()
    out = {}
    async with session.create_client("sts") as sts:
        await sts.get_caller_identity()
        credentials = await session.get_credentials()
        engine = credentials.engine
        expiry = engine.current.expiration
        print("READY", flush=True)
        sys.stdin.readline()  # the test arms STS failures now
        rounds = []
        # 30 s before expiry (the mandatory window): a refresh, which fails; its backoff ends
        # at expiry (never later than the cached credentials). 10 s before expiry: within
        # it. 5 s after expiry: a refresh, failing, and a 300-600 s backoff; 250 s later:
        # within it; 610 s after that: past it.
        for moved in (expiry - 30, expiry - 10, expiry + 5, expiry + 255, expiry + 615):
            offset = moved - time.time()
            failed = await storm(sts)
            rounds.append({"failed": failed, "fetches": engine.stats.fetches})
        out["rounds"] = rounds
    print(json.dumps(out))

asyncio.run(main())
"""


def test_sts_failing_after_credentials_are_cached_serves_them_with_one_attempt_per_backoff(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    import json
    import subprocess
    import sys
    import textwrap

    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = aws_env.world.target_role_arn
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(STORM)],
        env=subprocess_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline().strip() == "READY"
    aws_env.proxy.inject(Fault.server_error(503), action="AssumeRole", times=None)
    process.stdin.write("go\n")
    process.stdin.flush()
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr[-4000:]
    rounds = json.loads(stdout.strip().splitlines()[-1])["rounds"]

    # 32 tasks each time, none failed; the engine asked STS once per backoff period: once
    # when the credentials fell due, not again within the backoff, once after it.
    assert [r["failed"] for r in rounds] == [0] * 5
    assert [r["fetches"] for r in rounds] == [2, 2, 3, 3, 4]
    failed_attempts = aws_env.proxy.count(action="AssumeRole") - 1
    assert failed_attempts == 3 * 3  # three refreshes, each the STS client's 3 attempts


EXPIRED_APP = """
import asyncio, json, sys
import aiobotocore.session

table, item_name = sys.argv[1:3]

async def main():
    session = aiobotocore.session.AioSession()
    async with session.create_client("dynamodb") as dynamodb:
        await dynamodb.get_item(TableName=table, Key={"name": {"S": item_name}})
        print("READY", flush=True)
        sys.stdin.readline()
        item = await dynamodb.get_item(TableName=table, Key={"name": {"S": item_name}})
    print(json.dumps({"found": "Item" in item}))

asyncio.run(main())
"""


def test_an_expired_token_answer_to_an_async_client_is_retried_once_with_new_credentials(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    import json
    import subprocess
    import sys
    import textwrap

    world = aws_env.world
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = world.target_role_arn
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(EXPIRED_APP), world.table_name, world.secret_name],
        env=subprocess_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline().strip() == "READY"
    aws_env.proxy.inject(
        Fault.error("ExpiredTokenException", 400, "The security token is expired"),
        action="GetItem",
        times=1,
    )
    process.stdin.write("go\n")
    process.stdin.flush()
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr[-4000:]
    assert json.loads(stdout.strip().splitlines()[-1]) == {"found": True}

    calls = aws_env.proxy.calls(action="GetItem")
    assert [call.fault is not None for call in calls] == [False, True, False]
    assert calls[1].access_key_id == calls[0].access_key_id
    assert calls[2].access_key_id != calls[1].access_key_id  # signed after the refresh
    assert aws_env.proxy.count(action="AssumeRole") == 2


DEBUG_APP = (
    READ_SECRET
    + """
import asyncio, json, logging, sys
import aiobotocore.session

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

async def main():
    session = aiobotocore.session.AioSession()
    result = await read_secret(session, *sys.argv[1:4])
    frozen = await (await session.get_credentials()).get_frozen_credentials()
    result["secrets"] = [frozen.secret_key, frozen.token]
    print(json.dumps(result))

asyncio.run(main())
"""
)


def test_aiobotocore_debug_logs_show_no_secret(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    world = aws_env.world
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = world.target_role_arn
    completed = run_app_raw(DEBUG_APP, subprocess_env, *world_args(aws_env))
    assert completed.returncode == 0, completed.stderr[-4000:]
    import json

    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["secret"] == world.secret_plaintext
    logs = completed.stderr
    assert "aiobotocore" in logs and "AssumeRole" in logs  # the logs were on
    for secret in result["secrets"]:
        assert secret and secret not in logs
    assert "<SecretAccessKey>****</SecretAccessKey>" in logs  # STS's answer, masked
