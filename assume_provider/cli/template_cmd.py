"""``assume-provider template target-role|source-role``: print least-privilege CloudFormation.

The output is JSON, CloudFormation's JSON template format and also YAML (see
``templates.cloudformation.render``).

Templates are built offline from the options alone: no credentials, no settings, no network.
The common settings parser is therefore not used as a parent; its ``--external-id`` (the ID
sent on the last hop) would also clash with target-role's ``--external-id`` (the ID the
trust policy requires). ``--debug`` is still accepted like everywhere else.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import common


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``template`` and its two kinds on the top-level ``subparsers``."""
    del parents  # see the module docstring
    template = subparsers.add_parser(
        "template",
        help="print CloudFormation (JSON, which is also YAML) for the cross-account roles",
        description=(
            "Print least-privilege CloudFormation for the cross-account roles as JSON, "
            "CloudFormation's JSON template format. JSON is a subset of YAML: the output is "
            "also a CloudFormation YAML template, for YAML tools and `aws cloudformation "
            "deploy --template-file` alike."
        ),
    )
    common.add_global_options(template, top_level=False)
    kinds = template.add_subparsers(dest="template_kind", metavar="KIND")
    kinds.required = True
    _add_target_role_parser(kinds)
    _add_source_role_parser(kinds)


def _add_target_role_parser(kinds: Any) -> None:
    parser = kinds.add_parser(
        "target-role",
        help="role in the resource account (A): DynamoDB items and KMS data keys",
        description=(
            "Print the role for the resource account (A): assumable only by the workload "
            "role, allowed only item and query actions on the named DynamoDB tables and "
            "their indexes, and data-key actions on the named KMS keys."
        ),
    )
    common.add_global_options(parser, top_level=False)
    parser.add_argument(
        "--trusted-role-arn",
        required=True,
        metavar="ARN",
        help="the workload (instance) role in account B allowed to assume this role",
    )
    parser.add_argument(
        "--table",
        action="append",
        required=True,
        dest="tables",
        metavar="NAME_OR_ARN",
        help="DynamoDB table name (in the stack's account and region) or ARN; repeatable",
    )
    parser.add_argument(
        "--kms-key-arn",
        action="append",
        default=[],
        dest="kms_key_arns",
        metavar="ARN",
        help="KMS key ARN (not an alias) that encrypts the items; repeatable",
    )
    parser.add_argument(
        "--external-id",
        help="require this sts:ExternalId when the role is assumed",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="allow only reads and kms:Decrypt/kms:DescribeKey",
    )
    _add_session_parameter_options(parser, "the trusted role")
    parser.set_defaults(handler=print_target_role)


def _add_session_parameter_options(parser: argparse.ArgumentParser, who: str) -> None:
    parser.add_argument(
        "--allow-session-tags",
        action="store_true",
        help=f"also allow {who} sts:TagSession (needed for --tag / ASSUME_PROVIDER_TAGS)",
    )
    parser.add_argument(
        "--allow-source-identity",
        action="store_true",
        help=(
            f"also allow {who} sts:SetSourceIdentity (needed for --source-identity / "
            "ASSUME_PROVIDER_SOURCE_IDENTITY, on every role of the chain)"
        ),
    )


def _add_source_role_parser(kinds: Any) -> None:
    parser = kinds.add_parser(
        "source-role",
        help="EC2 instance role and profile in the workload account (B)",
        description=(
            "Print the EC2 instance role and instance profile for the workload account (B): "
            "allowed only sts:AssumeRole on the named target roles."
        ),
    )
    common.add_global_options(parser, top_level=False)
    parser.add_argument(
        "--target-role-arn",
        action="append",
        required=True,
        dest="target_role_arns",
        metavar="ARN",
        help="target role the instance may assume; repeatable",
    )
    _add_session_parameter_options(parser, "the instance role, on the target roles only,")
    parser.set_defaults(handler=print_source_role)


def print_target_role(args: argparse.Namespace) -> int:
    from ..templates.cloudformation import render, target_role_template

    template = target_role_template(
        args.trusted_role_arn,
        args.tables,
        args.kms_key_arns,
        external_id=args.external_id,
        read_only=args.read_only,
        session_tags=args.allow_session_tags,
        source_identity=args.allow_source_identity,
    )
    sys.stdout.write(render(template))
    return common.EXIT_OK


def print_source_role(args: argparse.Namespace) -> int:
    from ..templates.cloudformation import render, source_role_template

    template = source_role_template(
        args.target_role_arns,
        session_tags=args.allow_session_tags,
        source_identity=args.allow_source_identity,
    )
    sys.stdout.write(render(template))
    return common.EXIT_OK
