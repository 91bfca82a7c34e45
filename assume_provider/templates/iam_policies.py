"""Least-privilege IAM policy documents for the two roles of a cross-account setup.

Account A (resources) holds the *target role*: trusted only by one workload role, allowed
only item-level DynamoDB calls on named tables and data-key KMS calls on named keys.
Account B (workload) holds the *source role* of the EC2 instance: trusted by EC2, allowed
only ``sts:AssumeRole`` on the named target roles.

Every public function validates its input and raises ``ConfigError`` naming the command
line option, so the CLI and library callers report bad input the same way. Table names
become ``Fn::Sub`` ARNs in the account and region the template is deployed to; everything
else is used exactly as given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional, Union

from ..config.arns import PARTITIONS, role_arn_problem
from ..config.settings import is_external_id
from ..errors import ConfigError

POLICY_VERSION = "2012-10-17"


# A policy Resource value: a literal ARN, or a CloudFormation ``{"Fn::Sub": "..."}``.
Resource = Union[str, dict[str, str]]
PolicyDocument = dict[str, Any]

# --- Action lists -------------------------------------------------------------------------
# Only item-level data-plane actions: nothing that describes, creates, changes or deletes a
# table, its streams, backups or TTL. A secret store reads one item, reads a few (batch),
# lists a partition (Query) and lists every secret (Scan).

DYNAMODB_TABLE_READ_ACTIONS: tuple[str, ...] = (
    "dynamodb:GetItem",  # read one secret
    "dynamodb:BatchGetItem",  # read several secrets in one round trip
    "dynamodb:Query",  # read the versions of one secret (one partition)
    "dynamodb:Scan",  # list the stored secrets
)
# GetItem/BatchGetItem do not apply to indexes: only Query and Scan are granted there.
DYNAMODB_INDEX_READ_ACTIONS: tuple[str, ...] = (
    "dynamodb:Query",
    "dynamodb:Scan",
)
DYNAMODB_TABLE_WRITE_ACTIONS: tuple[str, ...] = (
    "dynamodb:PutItem",  # store a secret (conditional put for a new version)
    "dynamodb:UpdateItem",  # change one attribute (e.g. metadata) in place
    "dynamodb:DeleteItem",  # delete one secret version
    "dynamodb:BatchWriteItem",  # delete or store several versions in one round trip
)

# Envelope encryption: reads need Decrypt of the stored data key; DescribeKey lets clients
# check the key (state, usage) before use, and exposes no key material.
KMS_READ_ACTIONS: tuple[str, ...] = (
    "kms:Decrypt",
    "kms:DescribeKey",
)
# Writes need a fresh data key. ``kms:GenerateDataKey*`` is the one wildcard action granted:
# it covers exactly GenerateDataKey, GenerateDataKeyWithoutPlaintext and the two
# GenerateDataKeyPair variants, all of which only create data keys under the named key.
KMS_WRITE_ACTIONS: tuple[str, ...] = (
    "kms:Encrypt",
    "kms:GenerateDataKey*",
)
KMS_ALLOWED_WILDCARD_ACTION = "kms:GenerateDataKey*"

# Administration actions that no generated policy may ever contain (checked by the tests).
DYNAMODB_ADMIN_ACTIONS: tuple[str, ...] = (
    "dynamodb:CreateTable",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:CreateBackup",
    "dynamodb:DeleteBackup",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:PutResourcePolicy",
    "dynamodb:DeleteResourcePolicy",
    "dynamodb:TagResource",
    "dynamodb:UntagResource",
)

# Extra actions the session parameters need (ENGINEERING.md): STS refuses session tags
# unless the role's trust policy and the caller's identity policy allow sts:TagSession,
# and a source identity unless both allow sts:SetSourceIdentity. Granted only when asked.
TAG_SESSION_ACTION = "sts:TagSession"
SET_SOURCE_IDENTITY_ACTION = "sts:SetSourceIdentity"


def session_parameter_actions(
    *, session_tags: bool = False, source_identity: bool = False
) -> list[str]:
    """The extra STS actions asked for, in a fixed order (none by default)."""
    return [TAG_SESSION_ACTION] * session_tags + [SET_SOURCE_IDENTITY_ACTION] * source_identity


# --- Input validation ---------------------------------------------------------------------

_PARTITION = "(?:" + "|".join(re.escape(p) for p in PARTITIONS) + ")"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
_ACCOUNT = r"[0-9]{12}"  # not \d: that matches non-ASCII digits too
_TABLE_NAME = r"[A-Za-z0-9_.-]{3,255}"
_KMS_KEY_ID = r"(?:mrk-[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})"

_TABLE_NAME_RE = re.compile(_TABLE_NAME)
_TABLE_ARN_RE = re.compile(
    rf"arn:{_PARTITION}:dynamodb:{_REGION}:{_ACCOUNT}:table/(?P<name>{_TABLE_NAME})"
)
_KMS_KEY_ARN_RE = re.compile(rf"arn:{_PARTITION}:kms:{_REGION}:{_ACCOUNT}:key/{_KMS_KEY_ID}")

_ROLE_ARN_ALLOWED = (
    "allowed: an IAM role ARN arn:<partition>:iam::<12-digit account>:role/<path/name>, "
    f"partition one of {', '.join(PARTITIONS)}"
)


def validate_role_arn(value: str, option: str) -> str:
    """Return ``value`` if it is one IAM role ARN; ``option`` names the setting in errors."""
    problem = role_arn_problem(value, allow_wildcards=False)
    if problem is not None:
        raise ConfigError(
            f"{option} {value!r} is not a valid IAM role ARN ({problem}): {_ROLE_ARN_ALLOWED}"
        )
    return value


def validate_table(value: str, option: str = "--table") -> str:
    """Return ``value`` if it is a DynamoDB table name or table ARN."""
    if value.startswith("arn:"):
        if not _TABLE_ARN_RE.fullmatch(value):
            raise ConfigError(
                f"{option} {value!r} is not a valid DynamoDB table ARN: allowed: "
                "arn:<partition>:dynamodb:<region>:<12-digit account>:table/<name>, "
                f"partition one of {', '.join(PARTITIONS)}"
            )
        return value
    if not _TABLE_NAME_RE.fullmatch(value):
        raise ConfigError(
            f"{option} {value!r} is not a valid DynamoDB table name: allowed: 3-255 "
            "characters of a-z, A-Z, 0-9, '_', '-' and '.', or a full table ARN"
        )
    return value


def validate_kms_key_arn(value: str, option: str = "--kms-key-arn") -> str:
    """Return ``value`` if it is a KMS *key* ARN (alias ARNs name no fixed key)."""
    if not _KMS_KEY_ARN_RE.fullmatch(value):
        raise ConfigError(
            f"{option} {value!r} is not a valid KMS key ARN: allowed: "
            "arn:<partition>:kms:<region>:<12-digit account>:key/<key id> "
            "(a key ID, not an alias), "
            f"partition one of {', '.join(PARTITIONS)}"
        )
    return value


def validate_external_id(value: str, option: str = "--external-id") -> str:
    """Return ``value`` if STS would accept it as an ExternalId."""
    if not is_external_id(value):
        raise ConfigError(
            f"{option} {value!r} is not a valid external ID: allowed: 2-1224 characters "
            "of a-z, A-Z, 0-9 and _+=,.@:/-"
        )
    return value


def _unique(values: Sequence[str]) -> list[str]:
    """Drop repeats, keeping the order the user gave."""
    return list(dict.fromkeys(values))


def _require_some(values: Sequence[str], option: str) -> None:
    if not values:
        raise ConfigError(f"{option} is required: give it at least once")


# --- Resources ----------------------------------------------------------------------------


def table_resources(table: str) -> tuple[Resource, Resource]:
    """The (table, indexes) resources for a table name or ARN.

    A bare name is a table in the account and region the template is deployed to, so the
    same template works in every account; a full ARN is used as given.
    """
    validate_table(table)
    if table.startswith("arn:"):
        return table, f"{table}/index/*"
    table_arn = (
        f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{table}"
    )
    return {"Fn::Sub": table_arn}, {"Fn::Sub": f"{table_arn}/index/*"}


# --- Policy documents ---------------------------------------------------------------------


def _statement(sid: str, actions: Sequence[str], resources: Sequence[Resource]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": list(resources),
    }


def target_role_trust_policy(
    trusted_role_arn: str,
    external_id: Optional[str] = None,
    *,
    session_tags: bool = False,
    source_identity: bool = False,
) -> PolicyDocument:
    """Trust exactly one workload role (never its whole account) to assume the target role.

    ``session_tags`` / ``source_identity`` also let that role (and only it, under the same
    external ID condition) pass session tags / set a source identity.
    """
    validate_role_arn(trusted_role_arn, "--trusted-role-arn")
    statement: dict[str, Any] = {
        "Sid": "TrustWorkloadRole",
        "Effect": "Allow",
        "Principal": {"AWS": trusted_role_arn},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        validate_external_id(external_id)
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    statements = [statement]
    extra = session_parameter_actions(session_tags=session_tags, source_identity=source_identity)
    if extra:
        # A statement of its own: sts:ExternalId is no condition key of these actions, and
        # they grant nothing without the sts:AssumeRole above (which keeps its condition).
        statements.append(
            {
                "Sid": "WorkloadRoleSessionParameters",
                "Effect": "Allow",
                "Principal": {"AWS": trusted_role_arn},
                "Action": extra,
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def target_role_permissions_policy(
    tables: Sequence[str],
    kms_key_arns: Sequence[str] = (),
    *,
    read_only: bool = False,
) -> PolicyDocument:
    """Item-level DynamoDB access to ``tables`` and data-key KMS access to ``kms_key_arns``."""
    _require_some(tables, "--table")
    resource_pairs = [table_resources(table) for table in _unique(tables)]
    table_arns = [table_arn for table_arn, _ in resource_pairs]
    index_arns = [index_arn for _, index_arn in resource_pairs]

    statements = [
        _statement("ReadTableItems", DYNAMODB_TABLE_READ_ACTIONS, table_arns),
        _statement("QueryTableIndexes", DYNAMODB_INDEX_READ_ACTIONS, index_arns),
    ]
    if not read_only:
        statements.append(_statement("WriteTableItems", DYNAMODB_TABLE_WRITE_ACTIONS, table_arns))

    keys = [validate_kms_key_arn(arn) for arn in _unique(kms_key_arns)]
    if keys:
        kms_actions = KMS_READ_ACTIONS if read_only else KMS_READ_ACTIONS + KMS_WRITE_ACTIONS
        statements.append(_statement("UseKmsKeys", kms_actions, keys))
    return {"Version": POLICY_VERSION, "Statement": statements}


def source_role_trust_policy() -> PolicyDocument:
    """Let EC2 hand the role to instances through an instance profile."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "TrustEc2",
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def source_role_permissions_policy(
    target_role_arns: Sequence[str], *, session_tags: bool = False, source_identity: bool = False
) -> PolicyDocument:
    """``sts:AssumeRole`` on exactly the named target roles, nothing else; with
    ``session_tags`` / ``source_identity`` also ``sts:TagSession`` / ``sts:SetSourceIdentity``
    on those same roles."""
    _require_some(target_role_arns, "--target-role-arn")
    arns = [validate_role_arn(arn, "--target-role-arn") for arn in _unique(target_role_arns)]
    statements = [_statement("AssumeTargetRoles", ("sts:AssumeRole",), arns)]
    extra = session_parameter_actions(session_tags=session_tags, source_identity=source_identity)
    if extra:
        statements.append(_statement("SessionParametersOnTargetRoles", extra, arns))
    return {"Version": POLICY_VERSION, "Statement": statements}
