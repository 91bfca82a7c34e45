"""Messages a user can act on: --version, what the source tried, whoami --json errors, the
capped-duration warning, and options named as the user wrote them."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from cli_support import run_tool, write_config
from fake_time import FakeClock
from testbed import TestBed
from testbed.imds import CREDENTIALS_LIST_PATH, ImdsFault

import assume_provider
from assume_provider import ConfigError
from assume_provider.credentials.imds import IMDS_MIN_ATTEMPTS

ERROR = "assume-provider: error: "
WARNING = "assume-provider: warning: "
AUTO_PLACES = ["environment", "shared files", "container endpoint", "instance metadata"]


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a failed run, without its prefix (and without a traceback)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0][len(ERROR) :]


def no_role_attached(bed: TestBed) -> None:
    """IMDS answers, but lists no instance role (404), as on an instance without a profile
    (to each of the source's attempts: botocore's fetcher cannot tell a 404 from a 5xx)."""
    bed.imds.inject(
        ImdsFault.http_status(404), path=CREDENTIALS_LIST_PATH, times=IMDS_MIN_ATTEMPTS
    )


# -- --version ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["assume-provider"], [sys.executable, "-m", "assume_provider"]],
    ids=["console script", "python -m"],
)
def test_version_prints_the_package_version(
    command: list[str], subprocess_env: dict[str, str]
) -> None:
    if command == ["assume-provider"]:
        command = [str(Path(sys.executable).parent / "assume-provider")]
    result = subprocess.run(
        [*command, "--version"], env=subprocess_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"assume-provider {assume_provider.__version__}\n"
    assert result.stderr == ""


# -- no source credentials: what was tried ------------------------------------------------


def test_source_auto_with_nothing_lists_every_place_in_order_and_the_setting(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    no_role_attached(aws_env)
    env = dict(subprocess_env, ASSUME_PROVIDER_ROLE_ARN=aws_env.world.target_role_arn)

    result = run_tool(["credential-process", "--no-cache"], env)

    assert result.returncode == 1 and result.stdout == ""
    message = error_line(result)
    assert message.startswith("no source credentials found (source auto); tried, in botocore's")
    expected = [
        "1. environment: AWS_ACCESS_KEY_ID is not set",
        f"2. shared files: profile 'default' is in neither the credentials file "
        f"{env['AWS_SHARED_CREDENTIALS_FILE']} nor the config file {env['AWS_CONFIG_FILE']}",
        "3. container endpoint: neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
        "AWS_CONTAINER_CREDENTIALS_FULL_URI is set",
        f"4. instance metadata: no credentials from IMDS at {aws_env.imds.url}",
        "set --source or ASSUME_PROVIDER_SOURCE (source= in Python) to instance-metadata, "
        "container, environment, web-identity or profile:NAME",
    ]
    positions = [message.find(part) for part in expected]
    assert -1 not in positions, message
    assert positions == sorted(positions)
    # botocore's fetcher asked IMDS for the role once per attempt; nothing reached STS.
    assert aws_env.imds.count(CREDENTIALS_LIST_PATH) == IMDS_MIN_ATTEMPTS
    assert aws_env.proxy.count() == 0


def test_profile_without_keys_and_disabled_metadata_say_so(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    write_config(subprocess_env, "[default]\nregion = eu-west-1\n")
    env = dict(
        subprocess_env,
        ASSUME_PROVIDER_ROLE_ARN=aws_env.world.target_role_arn,
        AWS_EC2_METADATA_DISABLED="true",
    )

    message = error_line(run_tool(["credential-process", "--no-cache"], env))

    # Which keys are listed follows the providers of the installed botocore (1.37 has no
    # login provider); the ones every supported botocore has:
    match = re.search(r"profile 'default' has no ([^;]*) in the credentials file", message)
    assert match, message
    for key in ("role_arn", "web_identity_token_file", "aws_access_key_id", "credential_process"):
        assert key in match.group(1)
    assert "4. instance metadata: disabled by AWS_EC2_METADATA_DISABLED=true" in message
    assert aws_env.imds.request_count == 0 and aws_env.proxy.count() == 0


def test_whoami_json_prints_the_error_object_on_stdout(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    no_role_attached(aws_env)
    result = run_tool(["whoami", "--json", "--role-arn", aws_env.world.target_role_arn],
                      subprocess_env)

    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert set(document) == {"error"}
    error = document["error"]
    assert set(error) == {"code", "message", "exit_status", "tried"}
    assert error["code"] == "no_source_credentials"
    assert error["exit_status"] == 1
    assert error["message"] == error_line(result)
    assert [attempt["place"] for attempt in error["tried"]] == AUTO_PLACES
    assert error["tried"][0] == {"place": "environment", "reason": "AWS_ACCESS_KEY_ID is not set"}


def test_whoami_json_error_for_a_config_error_has_exit_status_2(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    result = run_tool(["whoami", "--json"], subprocess_env)  # no role configured anywhere

    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error == {
        "code": "invalid_configuration",
        "message": error_line(result),
        "exit_status": 2,
    }
    assert error["message"].startswith("no role to assume: give --role-arn")


def test_single_source_lists_only_that_place_and_hides_exported_keys(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    instance = aws_env.imds.credentials
    env = dict(
        subprocess_env,
        AWS_ACCESS_KEY_ID=instance.access_key_id,
        AWS_SECRET_ACCESS_KEY=instance.secret_access_key,
        AWS_SESSION_TOKEN=instance.token,
        ASSUME_PROVIDER_EXPORTED_KEY_ID=instance.access_key_id,  # as `env` exports it
    )
    target = aws_env.world.target_role_arn
    result = run_tool(["whoami", "--json", "--source", "environment", "--role-arn", target], env)

    assert result.returncode == 1
    message = error_line(result)
    assert message.startswith(
        "no source credentials found (source environment); tried, in botocore's order: "
        "1. environment: AWS_ACCESS_KEY_ID is hidden: it is the key that assume-provider "
        "env/exec exported (ASSUME_PROVIDER_EXPORTED_KEY_ID), never a source. "
    )
    assert "2." not in message
    others = "auto, instance-metadata, container, web-identity or profile:NAME"
    assert f"to another source: {others}" in message
    assert [a["place"] for a in json.loads(result.stdout)["error"]["tried"]] == ["environment"]
    for secret in (instance.secret_access_key, instance.token):
        assert secret not in result.stderr and secret not in result.stdout
    assert aws_env.imds.request_count == 0 and aws_env.proxy.count() == 0


def test_source_instance_metadata_without_a_role(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    no_role_attached(aws_env)
    result = run_tool(
        ["env", "--no-cache", "--source", "instance-metadata",
         "--role-arn", aws_env.world.target_role_arn],
        subprocess_env,
    )

    assert result.returncode == 1 and result.stdout == ""
    message = error_line(result)
    assert (
        "(source instance-metadata); tried, in botocore's order: 1. instance metadata: no "
        f"credentials from IMDS at {aws_env.imds.url}"
    ) in message
    assert "2." not in message and "environment:" not in message


def test_source_profile_names_the_profile_and_what_botocore_tried_after_it(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    write_config(subprocess_env, "[profile empty]\nregion = eu-west-1\n")
    env = dict(subprocess_env, AWS_EC2_METADATA_DISABLED="true")
    target = aws_env.world.target_role_arn
    result = run_tool(["whoami", "--json", "--source", "profile:empty", "--role-arn", target], env)

    assert result.returncode == 1
    message = error_line(result)
    assert (
        "(source profile:empty); tried, in botocore's order: "
        "1. shared files: profile 'empty' has no role_arn"
    ) in message
    # botocore's chain for a named profile goes on to the container and IMDS, never the
    # environment; its web identity provider ignores AWS_WEB_IDENTITY_TOKEN_FILE too.
    tried = json.loads(result.stdout)["error"]["tried"]
    assert [a["place"] for a in tried] == AUTO_PLACES[1:]
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" not in message


# -- the capped duration ------------------------------------------------------------------


def test_cli_warns_once_about_a_capped_duration_and_succeeds(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    world = aws_env.world
    result = run_tool(
        ["credential-process", "--no-cache", "--role-arn",
         f"{world.hop_role_arn},{world.target_role_arn}", "--duration-seconds", "7200"],
        subprocess_env,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Version"] == 1
    # The instance profile is a role session: both hops are role chaining.
    assert result.stderr.splitlines() == [
        f"{WARNING}duration_seconds 7200 capped at 3600 for hop(s) 1, 2: "
        "AWS limits role chaining to 1 hour"
    ]
    assert [call.params["DurationSeconds"] for call in aws_env.proxy.calls("AssumeRole")] == [
        "3600",
        "3600",
    ]


@pytest.mark.usefixtures("fresh_provider_state")
def test_library_warns_once_across_refreshes(
    aws_env: TestBed, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    world = aws_env.world
    # A chain and duration no other test of this process uses: the warning is once per process.
    assume_provider.install(
        role_arn=[world.hop_role_arn, world.target_role_arn], duration_seconds=5400
    )
    session = boto3.Session()
    with caplog.at_level(logging.DEBUG, logger="assume_provider.credentials.chain"):
        session.client("sts").get_caller_identity()
        fake_clock.advance(3600 - 30)  # into the blocking window: the next call refreshes
        session.client("sts").get_caller_identity()

    assert aws_env.proxy.count(action="AssumeRole") == 4  # two hops, fetched twice
    capped = [
        record
        for record in caplog.records
        if record.name == "assume_provider.credentials.chain" and "capped" in record.getMessage()
    ]
    assert [record.levelno for record in capped] == [logging.WARNING, logging.DEBUG]
    assert capped[0].getMessage() == (
        "duration_seconds 5400 capped at 3600 for hop(s) 1, 2: AWS limits role chaining to 1 hour"
    )


# -- options named as the user wrote them -------------------------------------------------

CLI_OPTIONS = [
    ("--role-arn", "arn:aws:iam::111111111111:user/alice"),
    ("--duration-seconds", "5"),
    ("--external-id", "x"),
    ("--session-name", "has spaces"),
    ("--source", "imds"),
    ("--cache-dir", " "),
]


@pytest.mark.parametrize(("option", "value"), CLI_OPTIONS, ids=[o for o, _ in CLI_OPTIONS])
def test_cli_errors_name_the_option_as_typed(
    aws_env: TestBed, subprocess_env: dict[str, str], option: str, value: str
) -> None:
    arguments = [f"{option}={value}"]
    if option != "--role-arn":
        arguments += ["--role-arn", aws_env.world.target_role_arn]

    result = run_tool(["credential-process", "--no-cache", *arguments], subprocess_env)

    assert result.returncode == 2
    message = error_line(result)
    assert f"(from option {option})" in message
    assert "argument" not in message
    assert aws_env.proxy.count() == 0 and aws_env.imds.request_count == 0


def test_cli_errors_name_the_variable_or_the_config_key(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    target = aws_env.world.target_role_arn
    env = dict(subprocess_env, ASSUME_PROVIDER_DURATION_SECONDS="5")
    message = error_line(run_tool(["credential-process", "--role-arn", target], env))
    assert "(from environment variable ASSUME_PROVIDER_DURATION_SECONDS)" in message

    write_config(subprocess_env, "[default]\nassume_provider_duration_seconds = 5\n")
    message = error_line(run_tool(["credential-process", "--role-arn", target], subprocess_env))
    assert (
        "(from key assume_provider_duration_seconds in profile 'default' of "
        f"{subprocess_env['AWS_CONFIG_FILE']})"
    ) in message


@pytest.mark.usefixtures("fresh_provider_state")
def test_library_errors_name_the_keyword_argument(aws_env: TestBed) -> None:
    with pytest.raises(ConfigError) as raised:
        assume_provider.install(role_arn=aws_env.world.target_role_arn, duration_seconds=5)
    message = str(raised.value)
    assert "(from argument duration_seconds)" in message
    assert "--duration-seconds" not in message



def test_a_reader_that_goes_away_gets_no_error_line() -> None:
    """`assume-provider whoami | head`: the reader is gone before the output is written (its
    end of the pipe closed first, so the write fails every time); no error line, no traceback."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "assume_provider",
                "template",
                "source-role",
                "--target-role-arn",
                "arn:aws:iam::111111111111:role/TargetRole",
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 1
