"""ASSUME_PROVIDER_ROLE_ARN set host-wide, and a profile the user chose that gets credentials
of its own (role_arn/source_profile, SSO, credential_process...): one WARNING line per
process says the profile's credentials become the chain's source and how to keep the profile
out (an empty `assume_provider_role_arn =` in it, which really does keep it out)."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest
from cli_support import write_config
from testbed import TestBed

from assume_provider.config import own_credentials
from assume_provider.config.inputs import SettingInputs
from assume_provider.config.profiles import ConfigFiles, ProfileChoice
from assume_provider.config.settings import resolve_settings

ROLE = "arn:aws:iam::111111111111:role/FromTheVariable"
ADMIN = {"role_arn": "arn:aws:iam::222222222222:role/Admin", "source_profile": "base"}
PROFILES: dict[str, dict[str, Any]] = {
    "admin": ADMIN,
    "sso": {"sso_session": "corp", "sso_account_id": "222222222222", "sso_role_name": "Dev"},
    "process": {"credential_process": "/usr/local/bin/get-creds"},
    "base": {"aws_access_key_id": "AKIDBASE", "aws_secret_access_key": "not-a-secret"},
    "plain": {"region": "eu-west-1"},
    "written-for-us": {**ADMIN, "assume_provider_source": "instance-metadata"},
    "kept-out": {**ADMIN, "assume_provider_role_arn": ""},
}


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(own_credentials, "_considered", set())


def _resolve(profile: str, arguments: dict[str, Any] | None = None) -> Any:
    inputs = SettingInputs(
        arguments or {},
        {"ASSUME_PROVIDER_ROLE_ARN": ROLE},
        ProfileChoice(profile, "environment variable AWS_PROFILE"),
        ConfigFiles.of_profiles(PROFILES, "/home/u/.aws/config"),
    )
    return resolve_settings(inputs)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("profile", "keys"),
    [
        ("admin", "role_arn, source_profile"),
        ("sso", "sso_session, sso_account_id, sso_role_name"),
        ("process", "credential_process"),
    ],
)
def test_one_line_names_the_profile_its_keys_and_the_way_out(
    profile: str, keys: str, fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="assume_provider"):
        settings = _resolve(profile)
        _resolve(profile)  # another session of the same process
    assert settings.role_arns == (ROLE,)  # behaviour unchanged: the variable still applies
    assert _warnings(caplog) == [
        f"profile '{profile}' of /home/u/.aws/config gets credentials of its own ({keys}), "
        "but ASSUME_PROVIDER_ROLE_ARN applies to it too: those credentials become the source "
        "of the role chain; to keep this profile out, add an empty 'assume_provider_role_arn "
        "=' line to it"
    ]


@pytest.mark.parametrize("profile", ["base", "plain", "written-for-us"])
def test_nothing_for_a_profile_without_credentials_of_its_own_or_written_for_this_tool(
    profile: str, fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="assume_provider"):
        assert _resolve(profile).role_arns == (ROLE,)
    assert _warnings(caplog) == []


def test_nothing_when_the_role_is_an_argument_not_the_variable(
    fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="assume_provider"):
        assert _resolve("admin", {"role_arn": ROLE}).role_arns == (ROLE,)
    assert _warnings(caplog) == []


def test_an_empty_role_key_keeps_the_profile_out_of_the_variable_not_of_an_argument(
    fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="assume_provider"):
        assert not _resolve("kept-out").active
        assert _resolve("kept-out", {"role_arn": ROLE}).role_arns == (ROLE,)
    assert _warnings(caplog) == []


# -- zero-code activation in a real process ------------------------------------------------

SESSIONS = (
    "import boto3\n"
    "for _ in range(3):\n"
    "    assert boto3.Session().get_credentials().method == 'assume-provider'\n"
    "print('ok')\n"
)


def _sessions(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SESSIONS], env=env, capture_output=True, text=True, timeout=120
    )


def test_zero_code_says_it_once_per_process_for_the_admin_profile(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    write_config(
        subprocess_env,
        "[profile admin]\n"
        f"role_arn = {aws_env.world.hop_role_arn}\n"
        "source_profile = base\n"
        "[profile base]\n"
        "aws_access_key_id = AKIDBASE\n"
        "aws_secret_access_key = not-a-secret\n",
    )
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = aws_env.world.target_role_arn
    for profile, expected in (("admin", 1), ("base", 0)):
        done = _sessions(dict(subprocess_env, AWS_PROFILE=profile))
        assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == expected, done.stderr
        if expected:
            assert lines[0].startswith("profile 'admin' of ")
            assert "add an empty 'assume_provider_role_arn =' line to it" in lines[0]
    assert aws_env.proxy.count() == 0  # resolving sessions makes no call
