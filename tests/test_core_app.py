"""End to end, as an application runs: a separate Python process on "B's instance"."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from testbed import TestBed

APP = textwrap.dedent(
    """
    import json, sys
    import boto3
    import assume_provider

    mode, table, item_name, attribute = sys.argv[1:5]
    if mode == "install":
        assume_provider.install()
        session = boto3
    elif mode == "register":
        session = boto3.Session()
        assume_provider.register(session)
    else:
        session = boto3

    result = {"arn": session.client("sts").get_caller_identity()["Arn"]}
    dynamodb = session.client("dynamodb")
    result["tables"] = dynamodb.list_tables()["TableNames"]
    if table in result["tables"]:
        item = dynamodb.get_item(TableName=table, Key={"name": {"S": item_name}})["Item"]
        blob = item[attribute]["B"]
        result["secret"] = session.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"].decode()
    print(json.dumps(result))
    """
)


def run_app(mode: str, env: dict[str, str], bed: TestBed) -> dict[str, object]:
    world = bed.world
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            APP,
            mode,
            world.table_name,
            world.secret_name,
            world.secret_attribute,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["install", "register"])
def test_application_reads_and_decrypts_account_a_secret(
    aws_env: TestBed, subprocess_env: dict[str, str], mode: str
) -> None:
    world = aws_env.world
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = world.target_role_arn
    subprocess_env["ASSUME_PROVIDER_SESSION_NAME"] = "pipeline-app"

    result = run_app(mode, subprocess_env, aws_env)

    assert result["arn"] == world.assumed_role_arn(world.target_role_arn, "pipeline-app")
    assert world.table_name in result["tables"]  # type: ignore[operator]
    assert result["secret"] == world.secret_plaintext
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_without_registration_the_same_application_is_b_and_sees_no_table(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    world = aws_env.world

    result = run_app("none", subprocess_env, aws_env)

    assert result["arn"] == world.instance_session_arn
    assert result["tables"] == []
    assert "secret" not in result
    assert aws_env.proxy.count(action="AssumeRole") == 0
