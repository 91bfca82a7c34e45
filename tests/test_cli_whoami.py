"""`whoami`: the chain hop by hop, and which hop failed as whom."""

from __future__ import annotations

import json

from cli_support import run_tool
from testbed import Fault, TestBed


def test_whoami_json_reports_source_and_every_hop(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    world = aws_env.world
    result = run_tool(
        ["whoami", "--json", "--role-arn", f"{world.hop_role_arn},{world.target_role_arn}",
         "--session-name", "whoami-test"],
        subprocess_env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"source", "hops"}
    assert report["source"] == {"arn": world.instance_session_arn, "account": world.account_b}
    assert [set(hop) for hop in report["hops"]] == [
        {"role_arn", "arn", "account", "expiration"}
    ] * 2
    first, second = report["hops"]
    assert first["role_arn"] == world.hop_role_arn
    assert first["arn"] == world.assumed_role_arn(world.hop_role_arn, "whoami-test")
    assert first["account"] == world.account_b
    assert second["role_arn"] == world.target_role_arn
    assert second["arn"] == world.assumed_role_arn(world.target_role_arn, "whoami-test")
    assert second["account"] == world.account_a
    assert second["expiration"].endswith("Z")
    assert aws_env.proxy.count(action="AssumeRole") == 2
    assert aws_env.proxy.count(action="GetCallerIdentity") == 3


def test_whoami_text_names_where_settings_came_from(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    env = dict(subprocess_env, ASSUME_PROVIDER_ROLE_ARN=aws_env.world.target_role_arn)
    with open(env["AWS_CONFIG_FILE"], "w", encoding="utf-8") as handle:
        handle.write("[default]\nassume_provider_duration_seconds = 1800\n")
    result = run_tool(["whoami", "--source", "instance-metadata"], env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "environment variable ASSUME_PROVIDER_ROLE_ARN" in out
    assert "option --source" in out
    assert "key assume_provider_duration_seconds in profile 'default'" in out
    assert aws_env.world.instance_session_arn in out
    assert f"account: {aws_env.world.account_a}" in out


def test_whoami_names_the_denied_hop_the_role_the_caller_and_the_code(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    world = aws_env.world
    forbidden = f"arn:aws:iam::{world.account_a}:role/NotTrusted"
    aws_env.enforce_iam_policies()  # HopRole may assume TargetRole only
    result = run_tool(
        ["whoami", "--json", "--role-arn", f"{world.hop_role_arn},{forbidden}",
         "--session-name", "diag"],
        subprocess_env,
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("assume-provider: error: hop 2 of 2 failed")
    assert forbidden in line
    assert world.assumed_role_arn(world.hop_role_arn, "diag") in line  # the calling identity
    assert "AccessDenied" in line
    # --json: the same failure as a JSON error object on stdout, and nothing else there.
    error = json.loads(result.stdout)["error"]
    assert error == {
        "code": "assume_role_failed",
        "message": line[len("assume-provider: error: ") :],
        "exit_status": 1,
        "hop": 2,
        "role_arn": forbidden,
        "aws_error_code": "AccessDenied",
    }


def test_whoami_first_hop_denied_by_sts(aws_env: TestBed, subprocess_env: dict[str, str]) -> None:
    world = aws_env.world
    aws_env.proxy.inject(Fault.error("AccessDenied", 403, "trust policy"), action="AssumeRole")
    result = run_tool(["whoami", "--role-arn", world.target_role_arn], subprocess_env)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("assume-provider: error: hop 1 of 1 failed")
    assert world.instance_session_arn in last and "AccessDenied" in last
    assert world.instance_session_arn in result.stdout  # the source line was printed first
