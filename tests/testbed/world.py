"""The scenario, seeded into moto: a resource account A and a workload account B.

Account A (111111111111) owns a DynamoDB table of KMS-encrypted pipeline secrets, the KMS
key, and ``TargetRole``, which may read and write items and use the key. Account B
(222222222222) runs the EC2 instance: ``InstanceRole`` (the instance profile) may assume
A's TargetRole directly, or go through B's ``HopRole`` first.

How we act "as" an account while seeding: moto maps credentials returned by its STS
AssumeRole to the account in the role ARN (and never checks the trust policy of a role in
another account, or of a role that does not exist), so assuming
``arn:aws:iam::<account>:role/...`` yields credentials for that account. The
same mapping makes cross-account visibility a real check: B's credentials do not see
A's table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from testbed.imds import InstanceCredentials

ACCOUNT_A = "111111111111"  # resource account: table, key, TargetRole
ACCOUNT_B = "222222222222"  # workload account: the EC2 instance, InstanceRole, HopRole
# moto's default account; the test bed's own admin user lives here, outside the scenario.
TESTBED_ACCOUNT = "123456789012"

REGION = "us-east-1"
SECRET_PLAINTEXT = "correct-horse-battery-staple-db-password"

# DynamoDB item and query actions (never table administration), as the CLI template grants.
DYNAMODB_ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
]
KMS_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"]


@dataclass(frozen=True)
class World:
    """The facts a test needs about the seeded scenario."""

    account_a: str
    account_b: str
    region: str
    target_role_arn: str
    hop_role_arn: str
    instance_role_arn: str
    instance_profile_arn: str
    instance_id: str  # the session name EC2 uses for instance-profile sessions
    external_id: str  # required by TargetRole's trust policy
    table_name: str
    table_arn: str
    kms_key_arn: str
    secret_name: str  # value of the table's hash key "name" for the secret's item
    secret_attribute: str  # binary attribute holding the KMS ciphertext
    secret_plaintext: str

    @property
    def instance_session_arn(self) -> str:
        """get_caller_identity()["Arn"] for the instance-profile credentials."""
        return _session_arn(self.instance_role_arn, self.instance_id)

    @property
    def secret_item_key(self) -> dict[str, dict[str, str]]:
        """The secret's key for the low-level client: ``get_item(Key=world.secret_item_key)``."""
        return {"name": {"S": self.secret_name}}

    @staticmethod
    def assumed_role_arn(role_arn: str, session_name: str) -> str:
        """The STS ARN a session of ``role_arn`` named ``session_name`` reports."""
        return _session_arn(role_arn, session_name)


@dataclass(frozen=True)
class AdminCredentials:
    """An IAM user with ``*:*`` in the test bed's own account: it keeps working after
    moto's identity-policy checks are switched on, so the bed can still rotate IMDS
    credentials and inspect A's data."""

    access_key_id: str
    secret_access_key: str = field(repr=False)

    def client_kwargs(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
        }


def client(moto_url: str, service: str, credentials: dict[str, str]) -> Any:
    """A boto3 client aimed at moto with explicit credentials (the environment is ignored)."""
    return boto3.session.Session(region_name=REGION, **credentials).client(
        service, endpoint_url=moto_url
    )


def assume(
    moto_url: str,
    admin: AdminCredentials,
    role_arn: str,
    session_name: str = "testbed",
    duration_seconds: int = 3600,
) -> dict[str, Any]:
    """STS AssumeRole in moto as the admin; returns STS's ``Credentials`` structure."""
    sts = client(moto_url, "sts", admin.client_kwargs())
    response = sts.assume_role(
        RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=duration_seconds
    )
    credentials: dict[str, Any] = response["Credentials"]
    return credentials


def as_client_kwargs(credentials: dict[str, Any]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def instance_credentials(
    moto_url: str, admin: AdminCredentials, world: World
) -> InstanceCredentials:
    """What EC2 would serve from IMDS: a session of B's InstanceRole named after the instance."""
    credentials = assume(moto_url, admin, world.instance_role_arn, session_name=world.instance_id)
    return InstanceCredentials(
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        token=credentials["SessionToken"],
        expiration=credentials["Expiration"],
    )


def seed(moto_url: str) -> tuple[World, AdminCredentials]:
    """Create both accounts' resources in a fresh moto. Must run before policy enforcement."""
    admin = _create_admin(moto_url)
    account_a = as_client_kwargs(assume(moto_url, admin, _seeder_arn(ACCOUNT_A)))
    account_b = as_client_kwargs(assume(moto_url, admin, _seeder_arn(ACCOUNT_B)))

    target_role_arn = _role_arn(ACCOUNT_A, "TargetRole")
    hop_role_arn = _role_arn(ACCOUNT_B, "HopRole")
    instance_role_arn = _role_arn(ACCOUNT_B, "InstanceRole")
    external_id = "pipeline-7f3c"
    table_name = "pipeline-secrets"
    table_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_A}:table/{table_name}"

    kms_a = client(moto_url, "kms", account_a)
    key_arn = kms_a.create_key(Description="pipeline secrets")["KeyMetadata"]["Arn"]
    kms_a.create_alias(AliasName="alias/pipeline-secrets", TargetKeyId=key_arn)
    ciphertext = kms_a.encrypt(KeyId=key_arn, Plaintext=SECRET_PLAINTEXT.encode())["CiphertextBlob"]

    dynamodb_a = client(moto_url, "dynamodb", account_a)
    dynamodb_a.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb_a.put_item(
        TableName=table_name,
        Item={"name": {"S": "db-password"}, "ciphertext": {"B": ciphertext}},
    )

    iam_a = client(moto_url, "iam", account_a)
    _create_role(
        iam_a,
        "TargetRole",
        trust=_allow(
            "sts:AssumeRole",
            principal={"AWS": [instance_role_arn, hop_role_arn]},
            condition={"StringEquals": {"sts:ExternalId": external_id}},
        ),
        permissions=_policy(
            _statement(DYNAMODB_ITEM_ACTIONS, [table_arn, f"{table_arn}/index/*"]),
            _statement(KMS_ACTIONS, [key_arn]),
        ),
    )
    # moto artifact: with policy enforcement on, moto checks DynamoDB and KMS calls against
    # resource "*" only, so the scoped policy above alone would deny every call. The same
    # actions on "*" keep action-level checks meaningful (GetItem allowed, DeleteTable not).
    iam_a.put_role_policy(
        RoleName="TargetRole",
        PolicyName="MotoResourceWildcard",
        PolicyDocument=json.dumps(_policy(_statement(DYNAMODB_ITEM_ACTIONS + KMS_ACTIONS, ["*"]))),
    )

    iam_b = client(moto_url, "iam", account_b)
    _create_role(
        iam_b,
        "InstanceRole",
        trust=_allow("sts:AssumeRole", principal={"Service": "ec2.amazonaws.com"}),
        permissions=_policy(_statement(["sts:AssumeRole"], [target_role_arn, hop_role_arn])),
    )
    instance_id = "i-0123456789abcdef0"
    _create_role(
        iam_b,
        "HopRole",
        # The session ARN is a moto artifact: with enforcement on, moto checks trust
        # policies of same-account roles (cross-account ones not at all) by comparing the
        # caller's ARN literally, so the role ARN alone would not admit its own sessions.
        trust=_allow(
            "sts:AssumeRole",
            principal={"AWS": [instance_role_arn, _session_arn(instance_role_arn, instance_id)]},
        ),
        permissions=_policy(_statement(["sts:AssumeRole"], [target_role_arn])),
    )
    profile = iam_b.create_instance_profile(InstanceProfileName="InstanceProfile")
    iam_b.add_role_to_instance_profile(
        InstanceProfileName="InstanceProfile", RoleName="InstanceRole"
    )

    world = World(
        account_a=ACCOUNT_A,
        account_b=ACCOUNT_B,
        region=REGION,
        target_role_arn=target_role_arn,
        hop_role_arn=hop_role_arn,
        instance_role_arn=instance_role_arn,
        instance_profile_arn=profile["InstanceProfile"]["Arn"],
        instance_id=instance_id,
        external_id=external_id,
        table_name=table_name,
        table_arn=table_arn,
        kms_key_arn=key_arn,
        secret_name="db-password",
        secret_attribute="ciphertext",
        secret_plaintext=SECRET_PLAINTEXT,
    )
    return world, admin


def _create_admin(moto_url: str) -> AdminCredentials:
    # Before enforcement moto accepts any signature, so dummy keys bootstrap the admin.
    iam = client(
        moto_url, "iam", {"aws_access_key_id": "AKIATESTBEDBOOTSTRAP", "aws_secret_access_key": "x"}
    )
    iam.create_user(UserName="testbed-admin")
    iam.put_user_policy(
        UserName="testbed-admin",
        PolicyName="everything",
        PolicyDocument=json.dumps(_policy(_statement(["*"], ["*"]))),
    )
    key = iam.create_access_key(UserName="testbed-admin")["AccessKey"]
    return AdminCredentials(key["AccessKeyId"], key["SecretAccessKey"])


def _session_arn(role_arn: str, session_name: str) -> str:
    account = role_arn.split(":")[4]
    role_name = role_arn.rsplit("/", 1)[-1]
    return f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"


def _seeder_arn(account: str) -> str:
    # Need not exist: moto's AssumeRole only maps the credentials to this account.
    return _role_arn(account, "TestBedSeeder")


def _role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def _create_role(iam: Any, name: str, trust: dict[str, Any], permissions: dict[str, Any]) -> None:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=name, PolicyName=f"{name}Permissions", PolicyDocument=json.dumps(permissions)
    )


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _statement(actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def _allow(
    action: str, principal: dict[str, Any], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": action}
    if condition:
        statement["Condition"] = condition
    return _policy(statement)
