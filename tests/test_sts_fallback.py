"""STS fallback regions: a hop whose STS region keeps failing is tried in each fallback region.

Faults are injected at the proxy by signing region: requests signed for the STS region fail,
those signed for a fallback region reach moto.
"""

from __future__ import annotations

import json
import logging

import boto3
import pytest
from cli_support import run_tool
from testbed import TestBed
from testbed.proxy import Fault

import assume_provider
from assume_provider.errors import AssumeRoleError

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

FALLBACK = "us-west-2"
SECOND_FALLBACK = "eu-central-1"
CLIENT_ATTEMPTS = 3  # the STS client's own standard retries (credentials/sts.py)


def caller_arn(session: boto3.Session | None = None) -> str:
    return str((session or boto3.Session()).client("sts").get_caller_identity()["Arn"])


def regions_of_assume_roles(bed: TestBed) -> list[str | None]:
    return [call.region for call in bed.proxy.calls(action="AssumeRole")]


@pytest.mark.parametrize(
    "fault",
    [Fault.server_error(500), Fault.server_error(503), Fault.throttle(), Fault.drop()],
    ids=["500", "503", "throttling", "dropped"],
)
def test_a_failing_sts_region_falls_back_and_the_application_sees_no_error(
    aws_env: TestBed, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    world = aws_env.world
    aws_env.proxy.inject(fault, action="AssumeRole", region=world.region, times=None)
    assume_provider.install(role_arn=world.target_role_arn, sts_fallback_regions=[FALLBACK])

    with caplog.at_level(logging.WARNING, logger="assume_provider"):
        assert caller_arn().startswith(f"arn:aws:sts::{world.account_a}:assumed-role/TargetRole/")

    # The client's own retries in the STS region first, then once in the fallback region.
    assert regions_of_assume_roles(aws_env) == [world.region] * CLIENT_ATTEMPTS + [FALLBACK]
    served = aws_env.proxy.calls(action="AssumeRole")[-1]
    assert served.fault is None
    assert served.access_key_id == aws_env.imds.credentials.access_key_id
    assert f"served by fallback region {FALLBACK}" in caplog.text
    # One refresh: later calls use the credentials it got.
    caller_arn()
    assert aws_env.proxy.count(action="AssumeRole") == CLIENT_ATTEMPTS + 1


def test_fallback_regions_are_tried_in_order(aws_env: TestBed) -> None:
    world = aws_env.world
    for region in (world.region, FALLBACK):
        aws_env.proxy.inject(
            Fault.server_error(500), action="AssumeRole", region=region, times=None
        )
    assume_provider.install(
        role_arn=world.target_role_arn, sts_fallback_regions=[FALLBACK, SECOND_FALLBACK]
    )
    assert world.account_a in caller_arn()
    assert regions_of_assume_roles(aws_env) == (
        [world.region] * CLIENT_ATTEMPTS + [FALLBACK] * CLIENT_ATTEMPTS + [SECOND_FALLBACK]
    )


def test_each_hop_of_a_chain_falls_back_signed_for_the_fallback_region(aws_env: TestBed) -> None:
    world = aws_env.world
    aws_env.proxy.inject(
        Fault.server_error(500), action="AssumeRole", region=world.region, times=None
    )
    assume_provider.install(
        role_arn=[world.hop_role_arn, world.target_role_arn], sts_fallback_regions=[FALLBACK]
    )
    assert world.account_a in caller_arn()
    served = [c for c in aws_env.proxy.calls(action="AssumeRole") if c.fault is None]
    assert [(c.params["RoleArn"], c.region) for c in served] == [
        (world.hop_role_arn, FALLBACK),
        (world.target_role_arn, FALLBACK),
    ]


@pytest.mark.parametrize("code", ["AccessDenied", "ValidationError"])
def test_never_after_an_error_retrying_cannot_fix(aws_env: TestBed, code: str) -> None:
    world = aws_env.world
    aws_env.proxy.inject(
        Fault.error(code, 403 if code == "AccessDenied" else 400),
        action="AssumeRole",
        region=world.region,
        times=None,
    )
    assume_provider.install(role_arn=world.target_role_arn, sts_fallback_regions=[FALLBACK])
    with pytest.raises(AssumeRoleError, match=code):
        caller_arn()
    assert FALLBACK not in regions_of_assume_roles(aws_env)
    assert regions_of_assume_roles(aws_env) == [world.region]


def test_without_fallback_regions_the_failure_is_the_applications(aws_env: TestBed) -> None:
    world = aws_env.world
    aws_env.proxy.inject(Fault.server_error(500), action="AssumeRole", times=None)
    assume_provider.install(role_arn=world.target_role_arn)
    with pytest.raises(AssumeRoleError):
        caller_arn()
    assert regions_of_assume_roles(aws_env) == [world.region] * CLIENT_ATTEMPTS


def test_when_every_region_fails_the_error_names_the_regions_tried(aws_env: TestBed) -> None:
    world = aws_env.world
    aws_env.proxy.inject(Fault.server_error(500), action="AssumeRole", times=None)
    assume_provider.install(
        role_arn=world.target_role_arn, sts_fallback_regions=[world.region, FALLBACK]
    )
    with pytest.raises(AssumeRoleError, match=f"fallback regions tried: {FALLBACK}"):
        caller_arn()
    # The STS region itself, listed as a fallback, is not tried twice.
    assert regions_of_assume_roles(aws_env) == (
        [world.region] * CLIENT_ATTEMPTS + [FALLBACK] * CLIENT_ATTEMPTS
    )


def test_cli_flag_falls_back_and_whoami_says_which_region_served(
    subprocess_env: dict[str, str], aws_env: TestBed
) -> None:
    world = aws_env.world
    aws_env.proxy.inject(
        Fault.server_error(500), action="AssumeRole", region=world.region, times=None
    )
    args = ["--role-arn", world.target_role_arn, "--sts-fallback-region", FALLBACK]
    done = run_tool(["credential-process", "--no-cache", *args], subprocess_env)
    assert done.returncode == 0, done.stderr
    assert f"served by fallback region {FALLBACK}" in done.stderr
    assert regions_of_assume_roles(aws_env)[-1] == FALLBACK
    report = run_tool(["whoami", "--json", *args], subprocess_env)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["hops"][0]["fallback_region"] == FALLBACK
