"""The cache-hit path of credential-process: the same answer as the full command line, and
the full command line whenever the hand-written option reader is unsure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_tool
from testbed import TestBed

from assume_provider.cli.cache.hit import parse_options
from assume_provider.cli.common import settings_arguments
from assume_provider.cli.parser import build_parser

ROLE = "arn:aws:iam::111111111111:role/TargetRole"
OTHER = "arn:aws:iam::111111111111:role/Other"


@pytest.mark.parametrize(
    "argv",
    [
        ["--role-arn", ROLE],
        [f"--role-arn={ROLE}"],
        ["--role-arn", ROLE, "--role-arn", OTHER, "--session-name", "s1"],
        ["--source", "instance-metadata", "--external-id", "x-1", "--duration-seconds", "900"],
        ["--profile", "p", "--cache-dir", "/tmp/c", "--session-name", "a", "--session-name=b"],
        [],
    ],
)
def test_hand_read_options_equal_argparse(argv: list[str]) -> None:
    options = parse_options(argv)
    assert options is not None
    parsed = build_parser("credential-process").parse_args(["credential-process", *argv])
    expected = settings_arguments(parsed)
    if parsed.profile is not None:
        expected["profile"] = parsed.profile
    assert options == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug"],
        ["--no-cache", "--role-arn", ROLE],
        ["--role", ROLE],  # an abbreviation argparse accepts
        ["--role-arn"],
        ["--role-arn", "-x"],
        ["extra"],
        ["-h"],
    ],
)
def test_anything_unsure_goes_to_the_full_command_line(argv: list[str]) -> None:
    assert parse_options(argv) is None


def test_cache_hit_prints_what_the_full_command_line_prints(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    args = ["credential-process", "--role-arn", aws_env.world.target_role_arn]
    first = run_tool(args, subprocess_env)  # a miss: argparse, STS, written to the cache
    fast = run_tool(args, subprocess_env)  # a hit on the cache-hit path
    full = run_tool(["--debug", *args], subprocess_env)  # a hit through argparse

    assert first.returncode == fast.returncode == full.returncode == 0, full.stderr
    assert json.loads(first.stdout) == json.loads(fast.stdout) == json.loads(full.stdout)
    assert fast.stdout == first.stdout
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_a_config_file_naming_the_cache_folder_is_honoured(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "configured-cache"
    with open(subprocess_env["AWS_CONFIG_FILE"], "w") as config:
        config.write(f"[default]\nassume_provider_cache_dir = {folder}\n")
    args = ["credential-process", "--role-arn", aws_env.world.target_role_arn]
    assert run_tool(args, subprocess_env).returncode == 0
    assert run_tool(args, subprocess_env).returncode == 0
    assert len(list(folder.glob("*.entry"))) == 1
    assert aws_env.proxy.count(action="AssumeRole") == 1
