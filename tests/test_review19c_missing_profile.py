"""A profile that is in neither file, under install(): code around botocore catches botocore's
``ProfileNotFound`` for it, and must go on catching it.

The AWS CLI v1 creates a profile with ``aws --profile NEW configure set KEY VALUE``: at every
command it gives botocore's assume-role provider a disk cache
(``awscli/customizations/assumerole.py``), reaching into the session's credential chain, and
skips that when the profile is not found. Under zero-code activation the chain raised a
ConfigError that is not a ProfileNotFound, so the command failed where plain botocore works.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

import botocore.exceptions
import botocore.session
import pytest
from testbed import TestBed

import assume_provider

pytestmark = pytest.mark.usefixtures("fresh_provider_state")


def test_a_missing_profile_is_botocores_profile_not_found_and_our_config_error(
    aws_env: TestBed,
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    try:
        session = botocore.session.Session(profile="new")
        # Where botocore's own chain raises it, and the AWS CLI v1 catches it.
        with pytest.raises(botocore.exceptions.ProfileNotFound) as raised:
            session.get_component("credential_provider")
        assert isinstance(raised.value, assume_provider.ConfigError)
        assert "profile 'new' (named by the session)" in str(raised.value)
        with pytest.raises(botocore.exceptions.ProfileNotFound):
            botocore.session.Session(profile="new").get_credentials()
    finally:
        assume_provider.uninstall()


def test_aws_cli_creates_a_profile_under_zero_code_activation(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    if not (Path(sysconfig.get_path("purelib")) / "assume_provider_startup.pth").exists():
        pytest.fail("the start-up .pth is not installed in this venv (pip install -e .)")
    aws = Path(sysconfig.get_path("scripts")) / "aws"
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = aws_env.world.target_role_arn
    done = subprocess.run(
        [str(aws), "--profile", "new", "configure", "set", "region", "eu-west-3"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "[profile new]" in Path(os.environ["AWS_CONFIG_FILE"]).read_text()
