"""CloudFormation templates for the target role (account A) and source role (account B).

Templates are plain dicts using long-form intrinsic functions (``Ref``, ``Fn::Sub``,
``Fn::GetAtt``), so they need no custom YAML tags and are written as JSON, which
CloudFormation reads as a template and which is also YAML (1.2, and 1.1 as PyYAML and cfn-lint
read it, for what templates hold): the standard library writes it, with no YAML code of ours.
Role names are parameters because users pick them to match their naming rules, and the
source role needs the target role's ARN before either stack exists; everything that
decides what the roles may do is fixed in the template, reviewed once, and not changeable
at deploy time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Optional

from . import iam_policies

Template = dict[str, Any]

TEMPLATE_FORMAT_VERSION = "2010-09-09"
DEFAULT_TARGET_ROLE_NAME = "assume-provider-target"
DEFAULT_SOURCE_ROLE_NAME = "assume-provider-instance"


def _role_name_parameter(default: str, description: str) -> dict[str, Any]:
    # IAM's own limits for role names, checked before CloudFormation starts creating.
    return {
        "Type": "String",
        "Default": default,
        "Description": description,
        "AllowedPattern": "[A-Za-z0-9+=,.@_-]{1,64}",
        "MaxLength": 64,
        "ConstraintDescription": "1-64 characters of A-Z, a-z, 0-9 and +=,.@_-",
    }


def _role_arn_output(description: str) -> dict[str, Any]:
    return {"Description": description, "Value": {"Fn::GetAtt": ["Role", "Arn"]}}


def target_role_template(
    trusted_role_arn: str,
    tables: Sequence[str],
    kms_key_arns: Sequence[str] = (),
    *,
    external_id: Optional[str] = None,
    read_only: bool = False,
    session_tags: bool = False,
    source_identity: bool = False,
) -> Template:
    """The role in the resource account, assumable only by ``trusted_role_arn``; with
    ``session_tags`` / ``source_identity`` that role may also tag the session / set a source
    identity (needed when the chain sends tags / a SourceIdentity)."""
    trust = iam_policies.target_role_trust_policy(
        trusted_role_arn, external_id, session_tags=session_tags, source_identity=source_identity
    )
    permissions = iam_policies.target_role_permissions_policy(
        tables, kms_key_arns, read_only=read_only
    )
    access = "read-only" if read_only else "read-write"
    return {
        "AWSTemplateFormatVersion": TEMPLATE_FORMAT_VERSION,
        "Description": (
            f"assume-provider target role: {access} item access to DynamoDB tables "
            f"for the workload role {trusted_role_arn}"
        ),
        "Parameters": {
            "RoleName": _role_name_parameter(
                DEFAULT_TARGET_ROLE_NAME,
                "Name of the role the workload assumes (its ARN goes into the source role)",
            ),
        },
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": {"Ref": "RoleName"},
                    "Description": (
                        f"Assumed by {trusted_role_arn} through assume-provider ({access})"
                    ),
                    "AssumeRolePolicyDocument": trust,
                    "Policies": [
                        {"PolicyName": "dynamodb-kms-items", "PolicyDocument": permissions}
                    ],
                },
            },
        },
        "Outputs": {
            "RoleArn": _role_arn_output(
                "ARN to give the workload: --target-role-arn of the source role template, "
                "and ASSUME_PROVIDER_ROLE_ARN on the instance"
            ),
        },
    }


def source_role_template(
    target_role_arns: Sequence[str], *, session_tags: bool = False, source_identity: bool = False
) -> Template:
    """The EC2 instance role and profile in the workload account."""
    trust = iam_policies.source_role_trust_policy()
    permissions = iam_policies.source_role_permissions_policy(
        target_role_arns, session_tags=session_tags, source_identity=source_identity
    )
    return {
        "AWSTemplateFormatVersion": TEMPLATE_FORMAT_VERSION,
        "Description": (
            "assume-provider source role: EC2 instance role and profile that may only "
            "assume the named target roles"
        ),
        "Parameters": {
            "RoleName": _role_name_parameter(
                DEFAULT_SOURCE_ROLE_NAME,
                "Name of the instance role and of its instance profile "
                "(the trusted role of the target role template)",
            ),
        },
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": {"Ref": "RoleName"},
                    "Description": "EC2 instance role for assume-provider",
                    "AssumeRolePolicyDocument": trust,
                    "Policies": [
                        {"PolicyName": "assume-target-roles", "PolicyDocument": permissions}
                    ],
                },
            },
            "InstanceProfile": {
                "Type": "AWS::IAM::InstanceProfile",
                "Properties": {
                    "InstanceProfileName": {"Ref": "RoleName"},
                    "Roles": [{"Ref": "Role"}],
                },
            },
        },
        "Outputs": {
            "RoleArn": _role_arn_output(
                "ARN of the instance role: --trusted-role-arn of the target role template"
            ),
            "InstanceProfileName": {
                "Description": "Instance profile to attach to the EC2 instances",
                "Value": {"Ref": "InstanceProfile"},
            },
            "InstanceProfileArn": {
                "Description": "ARN of the instance profile (for launch templates)",
                "Value": {"Fn::GetAtt": ["InstanceProfile", "Arn"]},
            },
        },
    }


def render(template: Template) -> str:
    """The template as JSON (so also YAML), for ``aws cloudformation deploy --template-file``.

    Keys keep the template's logical order (version, description, parameters, resources,
    outputs). The text is ASCII. A YAML 1.1 reader differs from JSON only on escaped
    characters outside the Basic Multilingual Plane and keys over 1024 characters; neither
    occurs here: keys are fixed names and every value from the user is validated ASCII.
    """
    return json.dumps(template, indent=2) + "\n"
