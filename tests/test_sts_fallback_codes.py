"""No fallback region after an error that retrying cannot fix, only after throttling, a 5xx
or a dropped or timed-out connection (found by a review: a deny-list of permanent codes let
every other 4xx, e.g. NotAuthorized or RequestExpired, go to the fallback regions)."""

from __future__ import annotations

import boto3
import pytest
from testbed import TestBed
from testbed.proxy import Fault

import assume_provider
from assume_provider.errors import AssumeRoleError

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

FALLBACK = "us-west-2"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("NotAuthorized", 403),  # STS common error: AccessDenied's kind
        ("OptInRequired", 403),
        ("IncompleteSignature", 400),
        ("MissingAuthenticationToken", 403),
        ("RequestExpired", 400),  # clock skew: no refresh fixes it (assume_role.py)
        ("InvalidParameterValue", 400),
    ],
)
def test_no_fallback_after_a_client_error_retrying_cannot_fix(
    aws_env: TestBed, code: str, status: int
) -> None:
    world = aws_env.world
    aws_env.proxy.inject(
        Fault.error(code, status), action="AssumeRole", region=world.region, times=None
    )
    assume_provider.install(role_arn=world.target_role_arn, sts_fallback_regions=[FALLBACK])
    try:
        boto3.Session().client("sts").get_caller_identity()
    except AssumeRoleError as exc:
        assert code in str(exc)
    regions = [call.region for call in aws_env.proxy.calls(action="AssumeRole")]
    assert FALLBACK not in regions, f"{code} was retried in the fallback region: {regions}"
