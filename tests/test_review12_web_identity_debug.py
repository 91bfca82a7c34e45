"""Review of issue 12: the web identity token (a bearer credential) must not reach DEBUG logs."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from log_capture import Capture
from testbed import TestBed

import assume_provider

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXZpZXcxMiJ9.UmV2aWV3U2lnbmF0dXJlMTIzNDU2"


def test_review12_web_identity_token_is_not_logged_at_debug(
    aws_env: TestBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug_logs: Capture
) -> None:
    world = aws_env.world
    iam = aws_env.client("iam", f"arn:aws:iam::{world.account_b}:role/TestBedSeeder")
    provider = f"arn:aws:iam::{world.account_b}:oidc-provider/oidc.eks.example.com/id/R12"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    try:
        iam.create_role(RoleName="Review12WebRole", AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    token = tmp_path / "token"
    token.write_text(TOKEN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", f"arn:aws:iam::{world.account_b}:role/Review12WebRole")
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "pod")

    assume_provider.install(role_arn=world.target_role_arn, source="web-identity")
    arn = boto3.Session().client("sts").get_caller_identity()["Arn"]
    assert world.account_a in arn
    text = debug_logs.text
    assert "AssumeRoleWithWebIdentity" in text  # botocore did log the call
    assert TOKEN not in text, "the web identity token (a bearer credential) is in DEBUG logs"
    assert TOKEN.split(".")[2] not in text
