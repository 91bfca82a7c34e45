"""A set but empty AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE or --profile
means to the CLI what it means to botocore and the library (found by an independent review)."""

from __future__ import annotations

import os
from pathlib import Path

import botocore.session
import pytest
from cli_support import run_tool
from testbed import TestBed

from assume_provider.botocore.provider import session_inputs
from assume_provider.config.inputs import SettingInputs
from assume_provider.config.profiles import ConfigFiles

ROLE = "arn:aws:iam::111111111111:role/FromHomeConfig"


@pytest.mark.parametrize("variable", ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"])
def test_an_empty_file_variable_means_no_file_for_cli_as_for_botocore_and_the_library(
    aws_env: TestBed, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # ~/.aws/config and ~/.aws/credentials both hold a role; the variable is set but empty.
    aws = Path(os.environ["HOME"]) / ".aws"
    aws.mkdir()
    for name in ("config", "credentials"):
        (aws / name).write_text(f"[default]\nassume_provider_role_arn = {ROLE}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", "")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "")
    if variable == "AWS_CONFIG_FILE":
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "nowhere"))
    else:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(aws / "nowhere"))

    botocore_profiles = botocore.session.Session().full_config["profiles"]
    library = session_inputs(botocore.session.Session(), {})
    cli = SettingInputs.from_environment({}, os.environ)

    assert botocore_profiles == {}  # botocore: a variable set to "" names no file
    assert library.raw("role_arn") is None  # the library agrees with botocore
    # and so does the CLI (and its cache-hit path): no fallback to ~/.aws/...
    assert cli.raw("role_arn") == library.raw("role_arn")
    assert ConfigFiles.from_environment(os.environ).profiles() == botocore_profiles


def test_cli_with_an_empty_aws_config_file_assumes_no_role_from_home_config(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    """End to end: the AWS CLI and boto3 would not read ~/.aws/config here; nor does the tool."""
    aws = Path(subprocess_env["HOME"]) / ".aws"
    aws.mkdir()
    (aws / "config").write_text(f"[default]\nassume_provider_role_arn = {ROLE}\n")
    subprocess_env["AWS_CONFIG_FILE"] = ""
    done = run_tool(["credential-process", "--no-cache"], subprocess_env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no role to assume" in done.stderr
    assert aws_env.proxy.count(action="AssumeRole") == 0


@pytest.mark.parametrize(
    ("extra_env", "args"),
    [({"AWS_PROFILE": ""}, []), ({}, ["--profile="])],
    ids=["AWS_PROFILE-empty", "--profile-empty"],
)
def test_an_empty_profile_name_is_a_usage_error_naming_it_not_botocores_raw_message(
    aws_env: TestBed, subprocess_env: dict[str, str], extra_env: dict[str, str], args: list[str]
) -> None:
    """botocore takes AWS_PROFILE='' as the profile named '' (ProfileNotFound); so does the
    resolver: exit 2 with its error naming what named the profile, before any request."""
    subprocess_env.update(extra_env)
    done = run_tool(
        ["credential-process", "--no-cache", "--role-arn", aws_env.world.target_role_arn, *args],
        subprocess_env,
    )
    assert done.returncode == 2, done.stderr
