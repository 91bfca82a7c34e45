"""credential-process with the real AWS CLI v1 against the local test bed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from cli_support import (
    AWS,
    modules_the_tool_imports,
    run_aws,
    run_tool,
    tool_command_line,
    write_config,
)
from testbed import TestBed


def _app_profile(bed: TestBed, extra: str = "") -> str:
    return (
        "[profile app]\n"
        f"credential_process = {tool_command_line()} credential-process "
        f"--role-arn {bed.world.target_role_arn}{extra}\n"
    )


def test_aws_cli_uses_the_role_and_the_second_call_is_served_from_the_cache(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    bed = aws_env
    write_config(subprocess_env, _app_profile(bed))

    identity = run_aws(["--profile", "app", "sts", "get-caller-identity"], subprocess_env)
    assert identity.returncode == 0, identity.stderr
    document = json.loads(identity.stdout)
    assert document["Account"] == bed.world.account_a
    assert document["Arn"].startswith(
        f"arn:aws:sts::{bed.world.account_a}:assumed-role/TargetRole/"
    )
    assert bed.proxy.count(action="AssumeRole") == 1
    # The source was B's instance profile, served by the IMDS fake.
    (assume,) = bed.proxy.calls(action="AssumeRole")
    assert assume.params["RoleArn"] == bed.world.target_role_arn

    tables = run_aws(["--profile", "app", "dynamodb", "list-tables"], subprocess_env)
    assert tables.returncode == 0, tables.stderr
    assert bed.world.table_name in json.loads(tables.stdout)["TableNames"]
    assert bed.proxy.count(action="AssumeRole") == 1  # second aws call: no AssumeRole

    # The cache folder and its entry are private.
    folder = Path(subprocess_env["HOME"]) / ".aws" / "assume-provider" / "cache"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    entries = list(folder.glob("*.entry"))
    assert len(entries) == 1
    assert stat.S_IMODE(entries[0].stat().st_mode) == 0o600


def test_eight_concurrent_aws_calls_on_a_cold_cache_make_one_assume_role(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    bed = aws_env
    write_config(subprocess_env, _app_profile(bed))
    processes = [
        subprocess.Popen(
            [*AWS, "--profile", "app", "sts", "get-caller-identity", "--output", "json"],
            env=subprocess_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = [(p.communicate(timeout=120), p.returncode) for p in processes]
    for (stdout, stderr), returncode in results:
        assert returncode == 0, stderr
        assert json.loads(stdout)["Account"] == bed.world.account_a
    assert bed.proxy.count(action="AssumeRole") == 1
    assert bed.proxy.count(action="GetCallerIdentity") == 8


def test_no_cache_calls_sts_every_time(aws_env: TestBed, subprocess_env: dict[str, str]) -> None:
    args = ["credential-process", "--no-cache", "--role-arn", aws_env.world.target_role_arn]
    for _ in range(2):
        result = run_tool(args, subprocess_env)
        assert result.returncode == 0, result.stderr
    assert aws_env.proxy.count(action="AssumeRole") == 2


def test_output_is_the_credential_process_format(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    result = run_tool(
        ["credential-process", "--role-arn", aws_env.world.target_role_arn], subprocess_env
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {
        "Version",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    }
    assert document["Version"] == 1
    assert document["Expiration"].endswith("Z")
    assert document["SecretAccessKey"] not in result.stderr


def test_cache_hit_imports_neither_botocore_nor_boto3(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    args = ["credential-process", "--role-arn", aws_env.world.target_role_arn]
    assert run_tool(args, subprocess_env).returncode == 0  # warm the cache
    hit, imported = modules_the_tool_imports(args, subprocess_env)
    assert hit.returncode == 0, hit.stderr
    assert "assume_provider.diskcache.store" in imported  # the measurement really covers the tool
    assert not {name for name in imported if name.split(".")[0] in ("botocore", "boto3")}
    # Nor the command line's own heavier modules: a hit is answered before argparse.
    heavy = {"argparse", "json", "configparser", "typing", "assume_provider.config.settings"}
    assert not imported & heavy
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_a_credential_process_loop_ends_quickly_with_a_clear_error(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """The default profile's credential_process is a wrapper (so the name check in
    sources.py cannot see that it runs the tool): the environment marker stops the loop."""
    bed = aws_env
    counter = tmp_path / "tool-starts"
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"echo $$ >> '{counter}'\n"
        f"exec {tool_command_line()} credential-process --role-arn {bed.world.target_role_arn}\n"
    )
    wrapper.chmod(0o755)
    write_config(
        subprocess_env,
        f"[default]\ncredential_process = {wrapper}\n"
        f"[profile app]\ncredential_process = {wrapper}\n",
    )
    result = run_aws(["--profile", "app", "sts", "get-caller-identity"], subprocess_env, timeout=60)
    assert result.returncode != 0
    assert "credential loop" in result.stderr
    starts = counter.read_text().split()
    assert 2 <= len(starts) <= 4  # the loop was entered, and stopped at once
    assert bed.proxy.count(action="AssumeRole") == 0


def test_the_tool_in_its_own_default_profile_is_skipped_as_a_source(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    """A profile that names the tool directly is excluded from the source chain."""
    bed = aws_env
    write_config(
        subprocess_env,
        f"[default]\ncredential_process = {tool_command_line()} credential-process "
        f"--role-arn {bed.world.target_role_arn}\n",
    )
    result = run_aws(["sts", "get-caller-identity"], subprocess_env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Account"] == bed.world.account_a
    assert bed.proxy.count(action="AssumeRole") == 1


def test_missing_role_and_invalid_settings_exit_2_with_one_line(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    no_role = run_tool(["credential-process"], subprocess_env)
    assert no_role.returncode == 2
    assert no_role.stderr.startswith("assume-provider: error: no role to assume")
    assert len(no_role.stderr.splitlines()) == 1

    env = dict(subprocess_env, ASSUME_PROVIDER_DURATION_SECONDS="99")
    bad = run_tool(["credential-process", "--role-arn", aws_env.world.target_role_arn], env)
    assert bad.returncode == 2
    assert "ASSUME_PROVIDER_DURATION_SECONDS" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1

    missing = run_tool(
        ["credential-process", "--profile", "nope", "--role-arn", aws_env.world.target_role_arn],
        subprocess_env,
    )
    assert missing.returncode == 2
    assert "profile 'nope'" in missing.stderr
    assert aws_env.proxy.count() == 0


def test_aws_errors_exit_1_naming_role_and_code_and_debug_adds_a_redacted_traceback(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    from testbed import Fault

    bed = aws_env
    bed.proxy.inject(Fault.error("AccessDenied", 403, "not allowed"), action="AssumeRole")
    args = ["credential-process", "--role-arn", bed.world.target_role_arn]
    result = run_tool(args, subprocess_env)
    assert result.returncode == 1
    assert result.stderr.startswith("assume-provider: error: ")
    assert len(result.stderr.splitlines()) == 1
    assert "AccessDenied" in result.stderr and bed.world.target_role_arn in result.stderr

    bed.proxy.inject(Fault.error("AccessDenied", 403, "not allowed"), action="AssumeRole")
    debug = run_tool(["--debug", *args], subprocess_env)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "DEBUG" in debug.stderr
    # The instance profile's secret was handled (signed the STS call) but never printed.
    assert bed.imds.credentials.secret_access_key not in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("assume-provider: error: ")
    assert os.environ.get("ASSUME_PROVIDER_DEPTH") is None


def test_debug_after_the_subcommand_logs_without_any_secret(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    bed = aws_env
    result = run_tool(
        ["credential-process", "--debug", "--no-cache", "--role-arn", bed.world.target_role_arn],
        subprocess_env,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert "DEBUG" in result.stderr
    for secret in (
        document["SecretAccessKey"],
        document["SessionToken"],
        bed.imds.credentials.secret_access_key,
        bed.imds.credentials.token,
    ):
        assert secret not in result.stderr
