"""The credential_process profile forms the README gives, each with the real `aws --profile X`
and `boto3.Session(profile_name=X)`; and the form that cannot work (the role kept in
assume_provider_role_arn, no --profile on the line), whose error names the line to write.

The AWS CLI and the SDKs run a profile's credential_process without telling it the profile
(only an inherited AWS_PROFILE does): the line itself must name the profile or the role."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_support import run_aws, tool_command_line, write_config
from testbed import TestBed

PROFILE = "account-a"
BOTO3_IDENTITY = (
    "import sys, boto3; session = boto3.Session(profile_name=sys.argv[1]); "
    "print(session.client('sts').get_caller_identity()['Arn'])"
)


def _profile_naming_itself(bed: TestBed) -> str:
    return (
        f"[profile {PROFILE}]\n"
        f"credential_process = {tool_command_line()} credential-process --profile {PROFILE}\n"
        f"assume_provider_role_arn = {bed.world.target_role_arn}\n"
    )


def _profile_with_the_role_on_the_line(bed: TestBed) -> str:
    return (
        f"[profile {PROFILE}]\n"
        f"credential_process = {tool_command_line()} credential-process "
        f"--role-arn {bed.world.target_role_arn}\n"
    )


def _profile_without_its_name(bed: TestBed) -> str:
    return (
        f"[profile {PROFILE}]\n"
        f"credential_process = {tool_command_line()} credential-process\n"
        f"assume_provider_role_arn = {bed.world.target_role_arn}\n"
    )


def _boto3(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BOTO3_IDENTITY, PROFILE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assumed(bed: TestBed, arn: str) -> bool:
    return arn.startswith(f"arn:aws:sts::{bed.world.account_a}:assumed-role/TargetRole/")


@pytest.mark.parametrize(
    "profile",
    [_profile_naming_itself, _profile_with_the_role_on_the_line],
    ids=["--profile-on-the-line", "--role-arn-on-the-line"],
)
def test_the_documented_forms_work_with_aws_profile_and_boto3_profile_name(
    profile: object, aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    assert callable(profile)
    write_config(subprocess_env, profile(aws_env))

    done = run_aws(["--profile", PROFILE, "sts", "get-caller-identity"], subprocess_env)
    assert done.returncode == 0, done.stderr
    assert _assumed(aws_env, json.loads(done.stdout)["Arn"])

    session = _boto3(subprocess_env)
    assert session.returncode == 0, session.stderr
    assert _assumed(aws_env, session.stdout.strip())
    assert aws_env.proxy.count(action="AssumeRole") == 1  # one chain, then the disk cache

    # The same profile chosen by AWS_PROFILE, as a shell user would.
    by_variable = run_aws(["sts", "get-caller-identity"], dict(subprocess_env, AWS_PROFILE=PROFILE))
    assert by_variable.returncode == 0, by_variable.stderr
    assert _assumed(aws_env, json.loads(by_variable.stdout)["Arn"])


def test_the_role_kept_in_the_profile_without_its_name_on_the_line_names_the_line_to_write(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    write_config(subprocess_env, _profile_without_its_name(aws_env))
    line = f"credential_process = assume-provider credential-process --profile {PROFILE}"

    done = run_aws(["--profile", PROFILE, "sts", "get-caller-identity"], subprocess_env)
    assert done.returncode != 0
    assert line in done.stderr
    assert "set assume_provider_role_arn in profile 'default'" not in done.stderr

    session = _boto3(subprocess_env)
    assert session.returncode != 0
    assert line in session.stderr
    assert aws_env.proxy.count(action="AssumeRole") == 0

    # Why it is easy to miss: with AWS_PROFILE the same profile works.
    by_variable = run_aws(["sts", "get-caller-identity"], dict(subprocess_env, AWS_PROFILE=PROFILE))
    assert by_variable.returncode == 0, by_variable.stderr
