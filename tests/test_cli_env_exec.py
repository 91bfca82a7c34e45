"""`env` (eval'd by real shells) and `exec` (exit codes, stdin, nesting); `exec` and signals
are in test_cli_exec_signals.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import AWS, TOOL, run_aws, run_tool, tool_command_line
from testbed import TestBed

from assume_provider.cli.env_cmd import export_line, quote, unset_line

NASTY = [
    "plain",
    "it's",
    'dou"ble',
    "back\\slash\\",
    "$HOME `id` $(id) ${x}",
    "new\nline",
    "tab\tand space ",
    "semi;colon & pipe | star * ? [a]",
    "'",
    "\\'",
    "ünïcödé ✓",
    "",
]

VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_DEFAULT_REGION",
    "ASSUME_PROVIDER_EXPORTED_KEY_ID",
)


def _shell_roundtrip(shell: list[str], script: str) -> str:
    return subprocess.run(
        [*shell, script], capture_output=True, text=True, check=True, timeout=30
    ).stdout


@pytest.mark.parametrize("value", NASTY)
def test_sh_quoting_round_trips_any_value(value: str) -> None:
    script = export_line("sh", "V", value) + '\nprintf "%s" "$V"'
    assert _shell_roundtrip(["sh", "-c"], script) == value


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_quoting_round_trips_any_value() -> None:
    for value in NASTY:
        script = export_line("fish", "V", value) + '\nprintf "%s" "$V"'
        assert _shell_roundtrip(["fish", "--no-config", "-c"], script) == value, value


def test_powershell_lines() -> None:
    assert export_line("powershell", "V", "it's") == "$Env:V = 'it''s'"
    assert quote("powershell", "a\u2019b") == "'a\u2019\u2019b'"
    assert unset_line("powershell", "V") == "Remove-Item Env:V -ErrorAction SilentlyContinue"
    assert unset_line("fish", "V") == "set -e V;"


def _env_lines(bed: TestBed, env: dict[str, str], *extra: str) -> str:
    result = run_tool(["env", "--role-arn", bed.world.target_role_arn, *extra], env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_env_eval_in_sh_exports_everything_and_unset_removes_it(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    bed = aws_env
    lines = _env_lines(bed, subprocess_env)
    show = "; ".join(f'printf "%s=%s\\n" {name} "${{{name}-UNSET}}"' for name in VARIABLES)
    unset = run_tool(["env", "--unset"], subprocess_env)
    assert unset.returncode == 0, unset.stderr
    out = subprocess.run(
        ["sh", "-c", f"{lines}\n{show}\necho ---\n{unset.stdout}\n{show}"],
        capture_output=True, text=True, check=True, env=subprocess_env, timeout=30,
    ).stdout
    exported, removed = out.split("---\n")
    values = dict(line.split("=", 1) for line in exported.splitlines())
    assert values["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert values["AWS_SESSION_TOKEN"] == values["AWS_SECURITY_TOKEN"]
    assert values["AWS_CREDENTIAL_EXPIRATION"].endswith("Z")
    assert values["AWS_DEFAULT_REGION"] == bed.world.region
    assert values["ASSUME_PROVIDER_EXPORTED_KEY_ID"] == values["AWS_ACCESS_KEY_ID"]
    after = dict(line.split("=", 1) for line in removed.splitlines())
    for name in VARIABLES:
        if name != "AWS_DEFAULT_REGION":  # the user's own region is left alone
            assert after[name] == "UNSET", name


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_env_for_fish(aws_env: TestBed, subprocess_env: dict[str, str]) -> None:
    lines = _env_lines(aws_env, subprocess_env, "--shell", "fish")
    out = _shell_roundtrip(["fish", "--no-config", "-c"], lines + 'printf "%s" $AWS_ACCESS_KEY_ID')
    assert out.startswith("ASIA")


def test_env_twice_still_assumes_from_the_real_source(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    """The second run sees account A's exported credentials and must not use them."""
    bed = aws_env
    role = bed.world.target_role_arn
    tool = tool_command_line()
    script = (
        f'eval "$({tool} env --no-cache --role-arn {role})" && '
        f'eval "$({tool} env --no-cache --role-arn {role})" && '
        f'{tool} credential-process --no-cache --role-arn {role}'
    )
    result = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env=subprocess_env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    calls = bed.proxy.calls(action="AssumeRole")
    assert len(calls) == 3
    instance_key = bed.imds.credentials.access_key_id
    assert {call.access_key_id for call in calls} == {instance_key}

    # And with the cache: the second `env` is a hit, the shell still ends up as A.
    script = f'eval "$({tool} env --role-arn {role})"; eval "$({tool} env --role-arn {role})"'
    final = subprocess.run(
        ["sh", "-c", script + "; aws sts get-caller-identity --output json"],
        capture_output=True, text=True, timeout=60,
        env=dict(subprocess_env, PATH=f"{Path(sys.executable).parent}:{subprocess_env['PATH']}"),
    )
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["Account"] == bed.world.account_a
    assert bed.proxy.count(action="AssumeRole") == 4


def test_exec_passes_the_exit_status_and_the_variables(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    role = aws_env.world.target_role_arn
    result = run_tool(
        ["exec", "--role-arn", role, "--", "sh", "-c",
         'test -n "$AWS_SESSION_TOKEN" && echo "$ASSUME_PROVIDER_EXPORTED_KEY_ID"; exit 7'],
        subprocess_env,
    )
    assert result.returncode == 7, result.stderr
    assert result.stdout.startswith("ASIA")
    assert run_tool(["exec", "--role-arn", role, "--", "true"], subprocess_env).returncode == 0
    # stdin is passed through
    echoed = run_tool(["exec", "--role-arn", role, "--", "cat"], subprocess_env, input="hello")
    assert echoed.stdout == "hello"
    missing = run_tool(["exec", "--role-arn", role, "--", "no-such-command-xyz"], subprocess_env)
    assert missing.returncode == 1
    assert missing.stderr.startswith("assume-provider: error: cannot run 'no-such-command-xyz'")
    usage = run_tool(["exec", "--role-arn", role], subprocess_env)
    assert usage.returncode == 2
    assert aws_env.proxy.count(action="AssumeRole") == 1  # all but the first from the cache


def test_exec_runs_the_aws_cli_as_the_role_and_a_nested_provider_uses_the_real_source(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    bed = aws_env
    role = bed.world.target_role_arn
    result = run_tool(
        ["exec", "--role-arn", role, "--", *TOOL, "credential-process", "--no-cache",
         "--role-arn", role],
        subprocess_env,
    )
    assert result.returncode == 0, result.stderr
    calls = bed.proxy.calls(action="AssumeRole")
    assert len(calls) == 2
    assert {call.access_key_id for call in calls} == {bed.imds.credentials.access_key_id}
    inside = run_tool(
        ["exec", "--role-arn", role, "--", *AWS, "sts", "get-caller-identity", "--output", "json"],
        subprocess_env,
    )
    assert inside.returncode == 0, inside.stderr
    assert json.loads(inside.stdout)["Account"] == bed.world.account_a
    outside = run_aws(["sts", "get-caller-identity"], subprocess_env)  # the instance itself
    assert json.loads(outside.stdout)["Account"] == bed.world.account_b
