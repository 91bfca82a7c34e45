"""aiobotocore and s3fs applications, each a separate process on "B's instance", through every
way in: zero-code activation, install(), register(AioSession), and none."""

from __future__ import annotations

import pytest

pytest.importorskip("aiobotocore", reason="the async tests run in their own venv: ci/async-tests")

from aio_apps import READ_SECRET, run_app, world_args, zero_code_available
from provider_state import moto_role_of
from testbed import TestBed

SESSION_NAME = "async-app"

APP = (
    READ_SECRET
    + """
import asyncio, json, sys
import aiobotocore.session

mode, table, item_name, attribute = sys.argv[1:5]

async def main():
    other = None
    if mode == "install":
        import assume_provider
        assume_provider.install()
    session = aiobotocore.session.AioSession()
    if mode == "register":
        import assume_provider
        assume_provider.register(session)
        other = aiobotocore.session.AioSession()
    result = await read_secret(session, table, item_name, attribute)
    if other is not None:
        async with other.create_client("sts") as sts:
            result["other_arn"] = (await sts.get_caller_identity())["Arn"]
    print(json.dumps(result))

asyncio.run(main())
"""
)


@pytest.mark.parametrize("mode", ["zero-code", "install", "register"])
def test_aiobotocore_app_reads_and_decrypts_account_a_secret(
    aws_env: TestBed, subprocess_env: dict[str, str], mode: str
) -> None:
    if mode == "zero-code" and not zero_code_available():
        pytest.fail("the start-up .pth is not installed in this venv (pip install -e .)")
    world = aws_env.world
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = world.target_role_arn
    subprocess_env["ASSUME_PROVIDER_SESSION_NAME"] = SESSION_NAME
    if mode != "zero-code":
        subprocess_env["ASSUME_PROVIDER_ENABLE"] = "0"  # only the call in the script activates

    result = run_app(APP, subprocess_env, mode, *world_args(aws_env))

    assert result["arn"] == world.assumed_role_arn(world.target_role_arn, SESSION_NAME)
    assert world.table_name in result["tables"]
    assert result["secret"] == world.secret_plaintext
    assert aws_env.proxy.count(action="AssumeRole") == 1
    if mode == "register":  # that session only: another AioSession stays B
        assert result["other_arn"] == world.instance_session_arn


@pytest.mark.parametrize("mode", ["zero-code", "install"])
def test_without_the_role_variable_aiobotocore_still_works_as_b(
    aws_env: TestBed, subprocess_env: dict[str, str], mode: str
) -> None:
    """No role configured: the provider is inactive, aiobotocore's own chain answers (IMDS)."""
    world = aws_env.world
    if mode == "zero-code":
        subprocess_env["ASSUME_PROVIDER_ENABLE"] = "1"  # the hook runs; no role anywhere

    result = run_app(APP, subprocess_env, mode, *world_args(aws_env))

    assert result["arn"] == world.instance_session_arn
    assert world.table_name not in result["tables"]
    assert aws_env.proxy.count(action="AssumeRole") == 0


S3FS_APP = """
import json, sys
import s3fs

bucket, key = sys.argv[1:3]
fs = s3fs.S3FileSystem()
print(json.dumps({"body": fs.cat(f"{bucket}/{key}").decode(), "ls": fs.ls(bucket)}))
"""


def test_s3fs_reads_an_object_from_account_a_with_zero_code_activation_only(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    world = aws_env.world
    s3 = aws_env.client("s3", world.target_role_arn)  # a bucket of account A
    bucket = "account-a-data"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"region,total\neu,42\n")
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = world.target_role_arn

    result = run_app(S3FS_APP, subprocess_env, bucket, "report.csv")

    assert result["body"] == "region,total\neu,42\n"
    assert result["ls"] == [f"{bucket}/report.csv"]
    assert aws_env.proxy.count(action="AssumeRole") == 1
    # moto's S3 lets any account read any bucket: check who signed instead.
    signers = {call.access_key_id for call in aws_env.proxy.calls(service="s3")}
    assert signers and {moto_role_of(key) for key in signers} == {world.target_role_arn}
