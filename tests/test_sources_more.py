"""More sources: web identity (EKS IRSA), the container endpoint (ECS, EKS Pod Identity),
and IMDS retrying a transient failure with backoff (INTERFACE.md "Sources")."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from log_capture import Capture
from provider_state import moto_role_of
from testbed import TestBed
from testbed.imds import ImdsFault
from testbed.local_http import BackgroundServer, QuietHandler

import assume_provider
from assume_provider.errors import NoSourceCredentialsError

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

WEB_ROLE_NAME = "WebIdentityRole"
# A bearer credential as far as logs are concerned: it must never appear in them.
WEB_IDENTITY_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLW9mLXRva2Vu"


def caller_arn(session: boto3.Session | None = None) -> str:
    return str((session or boto3.Session()).client("sts").get_caller_identity()["Arn"])


# -- IMDS retries ----------------------------------------------------------------------------


@pytest.mark.parametrize("failures", [1, 2])
@pytest.mark.parametrize("source", ["instance-metadata", "auto"])
def test_consecutive_imds_500s_on_the_credential_fetch_still_succeed(
    aws_env: TestBed, source: str, failures: int
) -> None:
    world = aws_env.world
    aws_env.imds.inject(ImdsFault.http_status(500), times=failures)
    assume_provider.install(role_arn=world.target_role_arn, source=source)

    assert world.account_a in caller_arn()
    assert aws_env.imds.credential_request_count == failures + 1
    (call,) = aws_env.proxy.calls(action="AssumeRole")
    assert call.access_key_id == aws_env.imds.credentials.access_key_id


@pytest.mark.timeout(15)
@pytest.mark.parametrize("source", ["instance-metadata", "auto"])
def test_a_permanently_failing_imds_gives_a_clear_error_after_three_attempts(
    aws_env: TestBed, source: str
) -> None:
    aws_env.imds.inject(ImdsFault.http_status(500), times=50)
    assume_provider.install(role_arn=aws_env.world.target_role_arn, source=source)
    with pytest.raises(NoSourceCredentialsError) as raised:
        caller_arn()
    assert "instance metadata" in str(raised.value)
    assert "3 tries with backoff" in str(raised.value)
    assert aws_env.imds.credential_request_count == 3
    assert aws_env.proxy.count(action="AssumeRole") == 0


# -- web identity (EKS IAM roles for service accounts) ---------------------------------------


@pytest.fixture
def web_identity(aws_env: TestBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A role of B trusting an OIDC provider, and the IRSA environment pointing at it."""
    world = aws_env.world
    iam = aws_env.client("iam", f"arn:aws:iam::{world.account_b}:role/TestBedSeeder")
    provider = f"arn:aws:iam::{world.account_b}:oidc-provider/oidc.eks.example.com/id/EXAMPLE"
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
        iam.create_role(RoleName=WEB_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    role_arn = f"arn:aws:iam::{world.account_b}:role/{WEB_ROLE_NAME}"
    token = tmp_path / "token"
    token.write_text(WEB_IDENTITY_TOKEN)  # moto does not check it
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", role_arn)
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "pod")
    return role_arn


def test_the_web_identity_token_never_reaches_debug_logs(
    aws_env: TestBed, web_identity: str, debug_logs: Capture
) -> None:
    """Found by a review: botocore logs AssumeRoleWithWebIdentity's parameters at DEBUG."""
    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn, source="web-identity")
    arn = boto3.Session().client("sts").get_caller_identity()["Arn"]
    assert world.account_a in arn
    assert "AssumeRoleWithWebIdentity" in debug_logs.text  # botocore did log the call
    assert WEB_IDENTITY_TOKEN not in debug_logs.text
    assert WEB_IDENTITY_TOKEN.split(".")[2] not in debug_logs.text


@pytest.mark.parametrize("source", ["web-identity", "auto"])
def test_web_identity_source_signs_the_first_hop(
    aws_env: TestBed, web_identity: str, source: str
) -> None:
    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn, source=source)

    assert world.account_a in caller_arn()
    first = aws_env.proxy.records[0]  # the first request of all: unsigned, to STS
    assert first.action == "AssumeRoleWithWebIdentity"
    assert first.params["RoleArn"] == web_identity
    (hop,) = aws_env.proxy.calls(action="AssumeRole")
    assert moto_role_of(hop.access_key_id) == web_identity
    assert aws_env.imds.credential_request_count == 0


def test_web_identity_source_without_a_token_file_says_so(aws_env: TestBed) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn, source="web-identity")
    with pytest.raises(NoSourceCredentialsError, match="AWS_WEB_IDENTITY_TOKEN_FILE"):
        caller_arn()
    assert aws_env.proxy.records == []


# -- container endpoint (ECS task roles, EKS Pod Identity) -----------------------------------


class _ContainerHandler(QuietHandler):
    def __init__(self, *args: Any, endpoint: ContainerEndpoint, **kwargs: Any) -> None:
        self.endpoint = endpoint
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self.endpoint.requests.append(self.headers.get("Authorization"))
        with self.endpoint.lock:
            failing = self.endpoint.failures > 0
            self.endpoint.failures -= failing
        if failing:
            self.send_bytes(500, b"busy")
        elif self.headers.get("Authorization") != self.endpoint.token:
            self.send_bytes(401, b"unauthorized")
        else:
            self.send_bytes(200, json.dumps(self.endpoint.document).encode(), "application/json")


class ContainerEndpoint:
    """A loopback credentials endpoint as EKS Pod Identity's agent serves it."""

    def __init__(self, document: dict[str, str], token: str) -> None:
        self.document = document
        self.token = token
        self.failures = 0
        self.lock = threading.Lock()
        self.requests: list[str | None] = []
        self.server = BackgroundServer(partial(_ContainerHandler, endpoint=self), "container")


@pytest.fixture
def container_endpoint(
    aws_env: TestBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ContainerEndpoint]:
    credentials = aws_env.assume(aws_env.world.instance_role_arn, session_name="pod-identity")
    document = {
        "AccessKeyId": credentials["AccessKeyId"],
        "SecretAccessKey": credentials["SecretAccessKey"],
        "Token": credentials["SessionToken"],
        "Expiration": credentials["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    endpoint = ContainerEndpoint(document, "pod-identity-token")
    endpoint.server.start()
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(endpoint.token)
    monkeypatch.setenv(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{endpoint.server.url}/v1/credentials"
    )
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    yield endpoint
    endpoint.server.stop()


@pytest.mark.parametrize("source", ["container", "auto"])
@pytest.mark.parametrize("failures", [0, 1])
def test_container_endpoint_with_a_token_file_is_the_source(
    aws_env: TestBed, container_endpoint: ContainerEndpoint, source: str, failures: int
) -> None:
    container_endpoint.failures = failures
    assume_provider.install(role_arn=aws_env.world.target_role_arn, source=source)

    assert aws_env.world.account_a in caller_arn()
    assert container_endpoint.requests == ["pod-identity-token"] * (failures + 1)
    (hop,) = aws_env.proxy.calls(action="AssumeRole")
    assert hop.access_key_id == container_endpoint.document["AccessKeyId"]
    assert aws_env.imds.credential_request_count == 0

