"""The command line a newcomer types: settings before the subcommand mean what they mean after
it (every subcommand), a bare command prints the usage, each --help offers only the options its
subcommand uses, and `env --shell bash|zsh` prints what `--shell sh` prints."""

from __future__ import annotations

import argparse
import json
import shutil
import sys

import pytest
from cli_support import run_tool
from testbed import TestBed

from assume_provider.cli import argv, common
from assume_provider.cli.parser import build_parser, parse_arguments

ROLE = "arn:aws:iam::111111111111:role/First"
HOP = "arn:aws:iam::222222222222:role/Second"
# What each subcommand needs besides the settings, so that both orders parse.
TAILS = {
    "credential-process": [],
    "env": ["--shell", "fish"],
    "exec": ["--", "true"],
    "whoami": ["--json"],
    "serve": ["--port", "0"],
}
PRINT_KEY_ID = "import os; print(os.environ['AWS_ACCESS_KEY_ID'])"
SETTINGS = [
    "--role-arn",
    ROLE,
    "--role-arn",
    HOP,
    "--profile",
    "env",  # a profile named like a subcommand is still the option's value
    "--session-name=before",
    "--tag",
    "team=a",
    "--debug",
]


def _parsed(words: list[str]) -> dict[str, object]:
    values = vars(parse_arguments(words))
    values.pop("handler")
    return values


def _refusal(words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        parse_arguments(words)
    assert stopped.value.code == common.EXIT_USAGE
    return capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(TAILS))
def test_settings_before_the_subcommand_mean_what_they_mean_after_it(command: str) -> None:
    after = _parsed([command, *SETTINGS, *TAILS[command]])
    assert _parsed([*SETTINGS, command, *TAILS[command]]) == after
    assert after["role_arn"] == [ROLE, HOP] and after["profile"] == "env"
    assert after["debug"] is True
    # Split on both sides: the values of a repeated option keep command-line order.
    split = _parsed(["--role-arn", ROLE, command, "--role-arn", HOP, *TAILS[command]])
    assert split["role_arn"] == [ROLE, HOP]


def test_template_takes_debug_before_it_and_refuses_settings_on_either_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kind = ["source-role", "--target-role-arn", ROLE]
    assert _parsed(["--debug", "template", *kind]) == _parsed(["template", "--debug", *kind])
    assert "--role-arn" in _refusal(["template", *kind, "--role-arn", HOP], capsys)
    assert _refusal(["--role-arn", HOP, "template", *kind], capsys)


def test_template_refuses_a_setting_before_it_by_its_name_not_as_an_invalid_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before `template`, a setting is refused as it is after the kind: by its name, never
    with the setting's value read as the KIND ("invalid choice: 'arn:aws:iam::...'")."""
    kind = ["source-role", "--target-role-arn", ROLE]
    before = _refusal(["--role-arn", HOP, "template", *kind], capsys)
    after = _refusal(["template", *kind, "--role-arn", HOP], capsys)
    assert before == after
    assert "invalid choice" not in before


def test_template_target_role_options_named_like_settings_work_before_it_too() -> None:
    """`template target-role` takes --external-id, which is also a setting: given before
    `template` it means what it means after the kind."""
    kind = ["target-role", "--trusted-role-arn", HOP, "--table", "secrets"]
    before = _parsed(["--external-id", "pipeline-7f3c", "template", *kind])
    after = _parsed(["template", *kind, "--external-id", "pipeline-7f3c"])
    assert before == after and after["external_id"] == "pipeline-7f3c"


@pytest.mark.parametrize("command", ["whoami", "serve"])
def test_a_setting_the_subcommand_does_not_take_is_refused_before_it_too(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _refusal(["--cache-dir", "/tmp/x", command, *TAILS[command]], capsys)
    after = _refusal([command, "--cache-dir", "/tmp/x", *TAILS[command]], capsys)
    assert before == after
    assert "unrecognized arguments: --cache-dir /tmp/x" in after


def test_the_moving_table_knows_every_setting_and_whether_it_takes_a_value() -> None:
    """argv.py (no argparse, for the cache-hit path) against the parsers themselves."""
    parser = argparse.ArgumentParser()
    common.add_cache_options(parser)
    options = {}
    for source in (common.settings_parent_parser(), parser):
        for action in source._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help", "--no-cache"):
                    options[flag] = action.nargs != 0
    assert options == {
        **{flag: False for flag in argv.FLAGS},
        **{flag: True for flag in argv.SETTINGS_WITH_A_VALUE},
    }
    full = build_parser()
    commands = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(commands.choices) == sorted(argv.COMMANDS)
    # Each subcommand's own options (template's kinds aside: they follow the KIND).
    own = {}
    for name, command in commands.choices.items():
        for action in command._actions if name != "template" else ():
            for flag in action.option_strings:
                if flag not in options and flag not in ("-h", "--help"):
                    own[flag] = action.nargs != 0
    assert own == {
        **{flag: False for flag in argv.COMMAND_FLAGS},
        **{flag: True for flag in argv.COMMAND_OPTIONS_WITH_A_VALUE},
    }


def test_a_subcommands_own_options_before_it_mean_what_they_mean_after_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--shell bash env` is `env --shell bash`; `--port 0 whoami` is refused by name, as
    `whoami --port 0` is, not as "invalid choice: '0'"."""
    assert _parsed(["--shell", "bash", "--unset", "env"]) == _parsed(
        ["env", "--shell", "bash", "--unset"]
    )
    assert _parsed(["--port", "0", "--token-file=/tmp/t", "serve"]) == _parsed(
        ["serve", "--port", "0", "--token-file=/tmp/t"]
    )
    refused = _refusal(["--port", "0", "whoami"], capsys)
    assert refused == _refusal(["whoami", "--port", "0"], capsys)
    assert "invalid choice" not in refused


def test_unrecognised_words_before_the_subcommand_are_left_where_they_are() -> None:
    assert argv.subcommand_first(["--version"]) == ["--version"]
    assert argv.subcommand_first(["--no-such", "env"]) == ["--no-such", "env"]
    assert argv.subcommand_first(["--rol", ROLE, "env"]) == ["env", "--rol", ROLE]
    assert argv.subcommand_first(["--t", "x", "env"]) == ["--t", "x", "env"]  # ambiguous


def test_a_misspelt_command_after_settings_is_named_not_the_setting_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused = _refusal(["--role-arn", ROLE, "whoam"], capsys)
    assert "invalid choice: 'whoam'" in refused and ROLE not in refused


def test_a_double_dash_after_settings_is_named_not_the_setting_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--role-arn ARN -- exec CMD` is refused as `-- exec CMD` is: naming the `--`."""
    refused = _refusal(["--role-arn", ROLE, "--", "exec", "true"], capsys)
    assert "invalid choice: '--'" in refused and ROLE not in refused


def test_settings_without_a_command_print_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    refused = _refusal(["--role-arn", ROLE, "--debug"], capsys)
    assert refused.startswith("usage: assume-provider")
    assert refused.splitlines()[-1].endswith("no COMMAND given; choose one of those above")


# -- end to end, one run per subcommand -----------------------------------------------------


def test_credential_process_env_and_exec_with_the_role_before_the_subcommand(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    role = ["--role-arn", aws_env.world.target_role_arn]
    document = run_tool([*role, "credential-process"], subprocess_env)
    assert document.returncode == 0, document.stderr
    key = json.loads(document.stdout)["AccessKeyId"]

    exported = run_tool([*role, "env"], subprocess_env)
    assert exported.returncode == 0, exported.stderr
    assert f"export AWS_ACCESS_KEY_ID='{key}'" in exported.stdout.splitlines()

    printed = run_tool(
        [
            *role,
            "exec",
            "--",
            sys.executable,
            "-c",
            "import os; print(os.environ['AWS_ACCESS_KEY_ID'])",
        ],
        subprocess_env,
    )
    assert (printed.returncode, printed.stdout.strip()) == (0, key), printed.stderr
    assert aws_env.proxy.count(action="AssumeRole") == 1  # one chain: the same cache key


def test_whoami_with_the_role_before_the_subcommand(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    done = run_tool(
        ["--role-arn", aws_env.world.target_role_arn, "whoami", "--json"], subprocess_env
    )
    assert done.returncode == 0, done.stderr
    (hop,) = json.loads(done.stdout)["hops"]
    assert hop["role_arn"] == aws_env.world.target_role_arn
    assert hop["account"] == aws_env.world.account_a


def test_template_with_debug_before_the_subcommand(subprocess_env: dict[str, str]) -> None:
    done = run_tool(
        ["--debug", "template", "source-role", "--target-role-arn", ROLE], subprocess_env
    )
    assert done.returncode == 0, done.stderr
    assert "AWS::IAM::Role" in done.stdout
    # serve with the role before it: tests/test_cli_serve_start.py starts it that way.


# -- usage and help -------------------------------------------------------------------------


def test_a_bare_command_prints_the_usage_and_exits_2(subprocess_env: dict[str, str]) -> None:
    done = run_tool([], subprocess_env)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0].startswith("usage: assume-provider")
    for command in argv.COMMANDS:
        assert f"    {command}" in done.stderr
    assert lines[-1] == "assume-provider: error: no COMMAND given; choose one of those above"


def test_template_without_its_kind_prints_its_usage(subprocess_env: dict[str, str]) -> None:
    done = run_tool(["template"], subprocess_env)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: assume-provider template")
    assert "target-role" in done.stderr and "source-role" in done.stderr


@pytest.mark.parametrize(
    ("command", "uses_the_disk_cache"),
    [
        (["credential-process"], True),
        (["env"], True),
        (["exec"], True),
        (["whoami"], False),
        (["serve"], False),
    ],
)
def test_help_offers_only_the_options_the_subcommand_uses(
    command: list[str], uses_the_disk_cache: bool, subprocess_env: dict[str, str]
) -> None:
    done = run_tool([*command, "--help"], subprocess_env)
    assert done.returncode == 0, done.stderr
    for option in ("--cache-dir", "--no-cache"):
        assert (option in done.stdout) is uses_the_disk_cache, option
    for option in ("--role-arn", "--profile", "--debug"):
        assert option in done.stdout


# -- env --shell bash|zsh -------------------------------------------------------------------


@pytest.mark.parametrize("unset", [False, True], ids=["export", "unset"])
def test_env_shell_bash_and_zsh_print_what_sh_prints(
    unset: bool, aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    args = ["env", "--role-arn", aws_env.world.target_role_arn, *(["--unset"] if unset else [])]
    outputs = {}
    for shell in ("sh", "bash", "zsh"):
        done = run_tool([*args, "--shell", shell], subprocess_env)
        assert done.returncode == 0, done.stderr
        outputs[shell] = done.stdout
    assert outputs["bash"] == outputs["sh"] == outputs["zsh"]
    assert outputs["sh"].startswith("unset " if unset else "export ")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_env_output_for_bash_and_zsh_is_read_by_that_shell(
    shell: str, aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    program = shutil.which(shell)
    if program is None:
        pytest.skip(f"{shell} is not installed")
    import subprocess

    done = run_tool(
        ["env", "--shell", shell, "--role-arn", aws_env.world.target_role_arn], subprocess_env
    )
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [program, "-c", done.stdout + 'printf "%s" "$AWS_ACCESS_KEY_ID"'],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert shown.startswith("ASIA") and shown in done.stdout
