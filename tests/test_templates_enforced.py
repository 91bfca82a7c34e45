"""The generated source-role policy, enforced by moto, exercised through the provider.

B's instance role is created in the local moto server from
``source_role_trust_policy()`` and ``source_role_permissions_policy([TargetRole])``, its
session is served by the IMDS fake, moto's identity-policy checks are switched on
(``POST /moto-api/reset-auth``), and the provider then shows that the role can assume A's
TargetRole and nothing else, and cannot touch DynamoDB or KMS directly.

What moto can and cannot prove here, and where the rest is proven instead:

- moto checks ``sts:AssumeRole`` against the real role ARN, so "exactly the named target
  role" in B's policy is a real check below.
- moto evaluates DynamoDB and KMS permissions against resource ``*`` only, so it cannot
  tell a table-scoped policy from a broad one. The target role's resource scoping (named
  tables and their indexes, named keys, no admin actions, no ``*``) is proven offline by
  the statement walk and the parliament/cfn-lint checks in ``tests/test_templates.py``.
- moto does not check cross-account trust policies or ExternalId: A's TargetRole would
  let any B role in. The trust parameters are proven by the AssumeRole request recorded at
  the proxy (ExternalId and RoleSessionName as configured, signed by the instance role)
  and, for the trust document itself, by the statement walk in ``tests/test_templates.py``.

A control role with a broad inline policy (``sts:AssumeRole``, DynamoDB and KMS on
``*``) runs the same calls and is *not* denied, so the denials below come from the
generated policy and not from the test bed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from provider_state import moto_role_of
from testbed import InstanceCredentials, TestBed, World
from testbed.world import client

import assume_provider
from assume_provider.errors import AssumeRoleError
from assume_provider.templates.iam_policies import (
    source_role_permissions_policy,
    source_role_trust_policy,
    validate_role_arn,
)

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

GENERATED_ROLE = "GeneratedInstanceRole"  # policy from source_role_permissions_policy()
BROAD_ROLE = "BroadInstanceRole"  # control: what users copy from broad examples
OTHER_A_ROLE = "OtherRole"  # a second role in A that trusts both B roles
SESSION_NAME = "generated-policy-test"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@dataclass(frozen=True)
class Roles:
    generated_arn: str
    broad_arn: str
    other_a_arn: str  # exists, trusts both B roles: only B's own policy can stop the hop


def _seeder(bed: TestBed, account: str, service: str) -> Any:
    # moto maps AssumeRole credentials to the account in the role ARN; the role need not
    # exist (see tests/testbed/world.py), so this acts "as" the account.
    return bed.client(service, role_arn=f"arn:aws:iam::{account}:role/TestBedSeeder")


def _put_role(iam: Any, name: str, trust: dict[str, Any], permissions: dict[str, Any]) -> str:
    """Create (or, on a rerun in one moto, update) a role with one inline policy."""
    try:
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        role = iam.get_role(RoleName=name)["Role"]
    iam.put_role_policy(
        RoleName=name, PolicyName=f"{name}Permissions", PolicyDocument=json.dumps(permissions)
    )
    return str(role["Arn"])


@pytest.fixture(scope="module")
def roles(testbed: TestBed) -> Roles:
    """The roles of this module, created before any enforcement (as the bed's seeding is)."""
    world = testbed.world
    testbed.enforce_iam_policies(False)
    iam_b = _seeder(testbed, world.account_b, "iam")
    generated_policy = source_role_permissions_policy([world.target_role_arn])
    generated_arn = _put_role(iam_b, GENERATED_ROLE, source_role_trust_policy(), generated_policy)
    broad_arn = _put_role(
        iam_b,
        BROAD_ROLE,
        source_role_trust_policy(),
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["sts:AssumeRole", "dynamodb:*", "kms:*"],
                    "Resource": "*",
                }
            ],
        },
    )
    iam_a = _seeder(testbed, world.account_a, "iam")
    other_a_arn = _put_role(
        iam_a,
        OTHER_A_ROLE,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [generated_arn, broad_arn]},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}],
        },
    )
    return Roles(generated_arn, broad_arn, other_a_arn)


def _instance_credentials(bed: TestBed, role_arn: str) -> InstanceCredentials:
    """What EC2 would serve for an instance profile holding ``role_arn``."""
    credentials = bed.assume(role_arn, session_name=bed.world.instance_id)
    return InstanceCredentials(
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        token=credentials["SessionToken"],
        expiration=credentials["Expiration"],
    )


@pytest.fixture
def instance_as(aws_env: TestBed) -> Iterator[Callable[[str], InstanceCredentials]]:
    """Serve a given B role from IMDS, then turn enforcement on.

    Afterwards, even on failure: enforcement off (first, so the bed's admin can work
    freely) and IMDS back to the bed's own InstanceRole.
    """

    def serve(role_arn: str) -> InstanceCredentials:
        credentials = _instance_credentials(aws_env, role_arn)  # before enforcement
        aws_env.imds.set_credentials(credentials)
        aws_env.enforce_iam_policies(True)
        return credentials

    try:
        yield serve
    finally:
        aws_env.enforce_iam_policies(False)
        aws_env.imds.rotate()


def _provider_session(world: World, role_arn: str) -> boto3.Session:
    session = boto3.Session()
    assume_provider.register(
        session,
        role_arn=role_arn,
        source="instance-metadata",
        external_id=world.external_id,
        session_name=SESSION_NAME,
    )
    return session


def _caller_arn(session: boto3.Session) -> str:
    return str(session.client("sts", config=NO_RETRIES).get_caller_identity()["Arn"])


def _client_kwargs(credentials: InstanceCredentials) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "aws_session_token": credentials.token,
    }


def _direct_calls(bed: TestBed, credentials: InstanceCredentials) -> dict[str, Callable[[], Any]]:
    """DynamoDB and KMS calls signed with the instance role's own credentials (no provider):
    reading A's secret directly, and the least an attacker would try."""
    world = bed.world
    kwargs = _client_kwargs(credentials)
    dynamodb = boto3.Session(region_name=world.region, **kwargs).client(
        "dynamodb", endpoint_url=bed.proxy.url, config=NO_RETRIES
    )
    kms = boto3.Session(region_name=world.region, **kwargs).client(
        "kms", endpoint_url=bed.proxy.url, config=NO_RETRIES
    )
    return {
        "dynamodb:GetItem": lambda: dynamodb.get_item(
            TableName=world.table_name, Key=world.secret_item_key
        ),
        "dynamodb:ListTables": dynamodb.list_tables,
        "kms:DescribeKey": lambda: kms.describe_key(KeyId=world.kms_key_arn),
        "kms:ListKeys": kms.list_keys,
    }


def _denied_by_iam(call: Callable[[], Any]) -> bool:
    """True when moto's policy check refused the call.

    moto answers a denied DynamoDB/KMS call with an XML 403 that botocore's JSON parser
    reports as error code "403"; any other outcome (success, or the service's own error
    such as "table not found in B") means the policy let the call through.
    """
    try:
        call()
    except ClientError as error:
        return bool(error.response["ResponseMetadata"]["HTTPStatusCode"] == 403)
    return False


def _denials(bed: TestBed, credentials: InstanceCredentials) -> dict[str, bool]:
    """For each direct call: was it denied by moto's policy check?"""
    return {name: _denied_by_iam(call) for name, call in _direct_calls(bed, credentials).items()}


def test_generated_source_role_assumes_the_target_role_with_the_configured_trust_parameters(
    aws_env: TestBed, roles: Roles, instance_as: Callable[[str], InstanceCredentials]
) -> None:
    world = aws_env.world
    instance = instance_as(roles.generated_arn)
    session = _provider_session(world, world.target_role_arn)

    assert _caller_arn(session) == world.assumed_role_arn(world.target_role_arn, SESSION_NAME)
    # End to end under enforcement: the provider's credentials read A's secret.
    item = session.client("dynamodb", config=NO_RETRIES).get_item(
        TableName=world.table_name, Key=world.secret_item_key
    )
    assert world.secret_attribute in item["Item"]

    # moto does not check cross-account trust or ExternalId (A's TargetRole would admit
    # any B role), so the trust parameters are proven by what reached STS.
    (call,) = aws_env.proxy.calls(action="AssumeRole")
    assert call.params["RoleArn"] == world.target_role_arn
    assert call.params["ExternalId"] == world.external_id
    assert call.params["RoleSessionName"] == SESSION_NAME
    assert call.access_key_id == instance.access_key_id  # signed by the generated role
    assert moto_role_of(instance.access_key_id) == roles.generated_arn
    identity = aws_env.proxy.calls(action="GetCallerIdentity")[-1]
    assert moto_role_of(identity.access_key_id) == world.target_role_arn


def _other_role_arns(world: World, roles: Roles) -> list[str]:
    return [
        roles.other_a_arn,  # exists in A and trusts the generated role
        world.hop_role_arn,  # B's own hop role
        world.target_role_arn + "2",  # a look-alike: the policy ARN is not a prefix
        f"arn:aws:iam::{world.account_a}:role/path/TargetRole",  # same name, other path
    ]


def test_generated_source_role_may_assume_no_other_role(
    aws_env: TestBed, roles: Roles, instance_as: Callable[[str], InstanceCredentials]
) -> None:
    world = aws_env.world
    instance = instance_as(roles.generated_arn)

    for other in _other_role_arns(world, roles):
        validate_role_arn(other, "test")  # a well-formed ARN: STS, not our settings, refuses
        session = _provider_session(world, other)
        with pytest.raises(BotoCoreError) as raised:
            _caller_arn(session)
        error = raised.value
        assert isinstance(error, AssumeRoleError), repr(error)
        assert error.role_arn == other and error.error_code == "AccessDenied"
        message = str(error)
        assert other in message and "AccessDenied" in message and "hop 1" in message
        assert instance.secret_access_key not in message and instance.token not in message

    attempts = aws_env.proxy.calls(action="AssumeRole")
    assert [a.params["RoleArn"] for a in attempts] == _other_role_arns(world, roles)
    assert {a.access_key_id for a in attempts} == {instance.access_key_id}


def test_generated_source_role_cannot_call_dynamodb_or_kms_directly(
    aws_env: TestBed, roles: Roles, instance_as: Callable[[str], InstanceCredentials]
) -> None:
    instance = instance_as(roles.generated_arn)

    outcomes = _denials(aws_env, instance)

    assert outcomes == dict.fromkeys(outcomes, True)


def test_control_a_broad_source_policy_is_not_denied(
    aws_env: TestBed, roles: Roles, instance_as: Callable[[str], InstanceCredentials]
) -> None:
    """The same checks against a role with ``*`` policies: nothing is denied, so the tests
    above fail if the generated policy were broad (or if enforcement were not on)."""
    world = aws_env.world
    instance = instance_as(roles.broad_arn)

    session = _provider_session(world, roles.other_a_arn)
    assert _caller_arn(session) == world.assumed_role_arn(roles.other_a_arn, SESSION_NAME)
    outcomes = _denials(aws_env, instance)
    assert outcomes == dict.fromkeys(outcomes, False)

    # And enforcement is really on: a call the broad policy does not grant is still denied.
    iam = client(aws_env.proxy.url, "iam", _client_kwargs(instance))
    with pytest.raises(ClientError) as denied:
        iam.list_roles()
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
