"""The ``template`` subcommands: least-privilege CloudFormation for both roles.

The expected action sets are written out here, not imported, so that these tests pin the
public contract (INTERFACE.md) rather than whatever the module happens to list.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from assume_provider.errors import ConfigError
from assume_provider.templates.cloudformation import (
    render,
    source_role_template,
    target_role_template,
)
from assume_provider.templates.iam_policies import (
    source_role_permissions_policy,
    target_role_permissions_policy,
    target_role_trust_policy,
)

ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
REGION = "us-east-1"
WORKLOAD_ROLE = f"arn:aws:iam::{ACCOUNT_B}:role/app/web-instance"
TARGET_ROLE = f"arn:aws:iam::{ACCOUNT_A}:role/assume-provider-target"
TABLE_ARN = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT_A}:table/shared.secrets-v2"
KEY_1 = f"arn:aws:kms:{REGION}:{ACCOUNT_A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# A key in another account than the table: allowed, the key policy is the owner's business.
KEY_2 = "arn:aws:kms:us-east-1:333333333333:key/mrk-1234abcd12ab34cd56ef1234567890ab"

READ_DYNAMODB = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"}
WRITE_DYNAMODB = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
}
READ_KMS = {"kms:Decrypt", "kms:DescribeKey"}
WRITE_KMS = {"kms:Encrypt", "kms:GenerateDataKey*"}
# The contract names ``kms:GenerateDataKey*`` itself: it stands for the GenerateDataKey
# family (with/without plaintext, key pairs), which only mints data keys under the named
# key. It is the one action allowed to contain a wildcard.
ALLOWED_WILDCARD_ACTIONS = {"kms:GenerateDataKey*"}
ADMIN_ACTIONS = {
    "dynamodb:CreateTable",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:DescribeTable",
    "dynamodb:ListTables",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:CreateBackup",
    "dynamodb:DeleteBackup",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:CreateGlobalTable",
    "dynamodb:UpdateGlobalTable",
    "dynamodb:PutResourcePolicy",
    "dynamodb:TagResource",
    "kms:CreateGrant",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "iam:PassRole",
}

TARGET_CASES = [
    pytest.param(dict(tables=["secrets"]), id="1-table"),
    pytest.param(dict(tables=["secrets", "audit_log"]), id="2-tables"),
    pytest.param(dict(tables=[TABLE_ARN]), id="table-arn"),
    pytest.param(dict(tables=["secrets"], kms_key_arns=[KEY_1]), id="1-key"),
    pytest.param(
        dict(tables=["secrets", TABLE_ARN], kms_key_arns=[KEY_1, KEY_2]), id="name+arn-2-keys"
    ),
    pytest.param(dict(tables=["secrets"], external_id="ext-Id_42"), id="external-id"),
    pytest.param(dict(tables=["secrets"], kms_key_arns=[KEY_1], read_only=True), id="read-only"),
    pytest.param(
        dict(
            tables=["secrets", "a.b-c"],
            kms_key_arns=[KEY_1, KEY_2],
            external_id="x" * 64,
            read_only=True,
        ),
        id="read-only-everything",
    ),
]
SOURCE_CASES = [
    pytest.param([TARGET_ROLE], id="1-target"),
    pytest.param(
        [
            TARGET_ROLE,
            "arn:aws:iam::444444444444:role/team/reader",
            "arn:aws-us-gov:iam::555555555555:role/gov-target",
        ],
        id="3-targets",
    ),
]


def _target_template(case: dict[str, Any]) -> dict[str, Any]:
    return target_role_template(
        WORKLOAD_ROLE,
        case["tables"],
        case.get("kms_key_arns", ()),
        external_id=case.get("external_id"),
        read_only=case.get("read_only", False),
    )


def _all_templates() -> list[dict[str, Any]]:
    targets = [_target_template(p.values[0]) for p in TARGET_CASES]
    sources = [source_role_template(p.values[0]) for p in SOURCE_CASES]
    return targets + sources


def _concrete(value: Any) -> Any:
    """Replace ``{"Fn::Sub": ...}`` with the ARN CloudFormation would make in account A."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            return (
                value["Fn::Sub"]
                .replace("${AWS::Partition}", "aws")
                .replace("${AWS::Region}", REGION)
                .replace("${AWS::AccountId}", ACCOUNT_A)
            )
        return {key: _concrete(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_concrete(item) for item in value]
    return value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_policies(template: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    properties = template["Resources"]["Role"]["Properties"]
    return properties["AssumeRolePolicyDocument"], [
        policy["PolicyDocument"] for policy in properties["Policies"]
    ]


def _statements(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for document in documents:
        assert document["Version"] == "2012-10-17"
        yield from document["Statement"]


def _granted(documents: list[dict[str, Any]]) -> set[str]:
    return {action for stmt in _statements(documents) for action in _as_list(stmt["Action"])}


# --- cfn-lint ---------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing_for_any_generated_template() -> None:
    from cfnlint.api import lint_all

    for template in _all_templates():
        text = render(template)
        findings = [
            str(match)
            for match in lint_all(text)
            if match.rule.id.startswith(("E", "W"))  # informational hints are not defects
        ]
        assert findings == [], text


# --- policy content -------------------------------------------------------------------------


@pytest.mark.parametrize("case", TARGET_CASES)
def test_target_role_policies_are_least_privilege(case: dict[str, Any]) -> None:
    trust, permissions = _role_policies(_target_template(case))
    permissions = _concrete(permissions)

    for stmt in _statements(permissions):
        assert stmt["Effect"] == "Allow"
        assert "NotAction" not in stmt and "NotResource" not in stmt
        for action in _as_list(stmt["Action"]):
            assert ("*" not in action and "?" not in action) or (
                action in ALLOWED_WILDCARD_ACTIONS
            ), action
        for resource in _as_list(stmt["Resource"]):
            if "*" in resource or "?" in resource:
                # The one wildcard allowed: the indexes of one named table.
                assert re.fullmatch(
                    r"arn:aws:dynamodb:[a-z0-9-]+:\d{12}:table/[\w.-]+/index/\*", resource
                ), resource
                assert stmt["Action"] == ["dynamodb:Query", "dynamodb:Scan"]

    granted = _granted(permissions)
    assert not granted & ADMIN_ACTIONS
    read_only = case.get("read_only", False)
    expected = set(READ_DYNAMODB) if read_only else READ_DYNAMODB | WRITE_DYNAMODB
    if case.get("kms_key_arns"):
        expected |= READ_KMS if read_only else READ_KMS | WRITE_KMS
    assert granted == expected

    # Exactly the named tables, their indexes and the named keys.
    expected_tables = {
        table
        if table.startswith("arn:")
        else f"arn:aws:dynamodb:{REGION}:{ACCOUNT_A}:table/{table}"
        for table in case["tables"]
    }
    expected_resources = (
        expected_tables
        | {f"{table}/index/*" for table in expected_tables}
        | set(case.get("kms_key_arns", ()))
    )
    resources = {r for stmt in _statements(permissions) for r in _as_list(stmt["Resource"])}
    assert resources == expected_resources
    kms_resources = {
        r
        for stmt in _statements(permissions)
        if any(a.startswith("kms:") for a in stmt["Action"])
        for r in stmt["Resource"]
    }
    assert kms_resources == set(case.get("kms_key_arns", ()))

    (trust_statement,) = trust["Statement"]
    assert trust_statement["Effect"] == "Allow"
    assert trust_statement["Principal"] == {"AWS": WORKLOAD_ROLE}
    assert trust_statement["Action"] == "sts:AssumeRole"
    if "external_id" in case:
        assert trust_statement["Condition"] == {
            "StringEquals": {"sts:ExternalId": case["external_id"]}
        }
    else:
        assert "Condition" not in trust_statement


@pytest.mark.parametrize("targets", SOURCE_CASES)
def test_source_role_may_only_assume_the_named_roles(targets: list[str]) -> None:
    template = source_role_template(targets)
    trust, permissions = _role_policies(template)

    assert trust["Statement"] == [
        {
            "Sid": "TrustEc2",
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    statements = list(_statements(permissions))
    assert [stmt["Action"] for stmt in statements] == [["sts:AssumeRole"]]
    assert statements[0]["Effect"] == "Allow"
    assert statements[0]["Resource"] == targets
    assert not any("*" in r for r in statements[0]["Resource"])

    profile = template["Resources"]["InstanceProfile"]
    assert profile["Type"] == "AWS::IAM::InstanceProfile"
    assert profile["Properties"]["Roles"] == [{"Ref": "Role"}]
    assert set(template["Outputs"]) >= {"RoleArn", "InstanceProfileName"}


def test_repeated_inputs_are_granted_once() -> None:
    permissions = target_role_permissions_policy(["tbl", "tbl"], [KEY_1, KEY_1])
    for stmt in permissions["Statement"]:
        assert len(stmt["Resource"]) == 1
    assert source_role_permissions_policy([TARGET_ROLE, TARGET_ROLE])["Statement"][0][
        "Resource"
    ] == [TARGET_ROLE]


def test_templates_have_parameters_outputs_and_descriptions() -> None:
    for template in _all_templates():
        assert template["Description"]
        assert template["Parameters"]["RoleName"]["Description"]
        assert template["Resources"]["Role"]["Properties"]["RoleName"] == {"Ref": "RoleName"}
        assert template["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["Role", "Arn"]}
        for output in template["Outputs"].values():
            assert output["Description"]


# --- parliament -----------------------------------------------------------------------------


def _parliament_findings(document: dict[str, Any], *, community: bool = False) -> list[str]:
    from parliament import analyze_policy_string

    policy = analyze_policy_string(json.dumps(document), include_community_auditors=community)
    return [f"{finding.issue}: {finding.detail}" for finding in policy.findings]


def _trust_as_resource_policy(trust: dict[str, Any], role_arn: str) -> dict[str, Any]:
    # parliament reads every document as an identity or resource policy and reports a trust
    # policy as MALFORMED (no Resource). A trust policy *is* the role's resource policy, so
    # give it the role as its Resource; parliament then checks principal, action and the
    # condition keys (sts:ExternalId must be a key of sts:AssumeRole).
    return {
        **trust,
        "Statement": [{**stmt, "Resource": role_arn} for stmt in trust["Statement"]],
    }


def test_parliament_finds_nothing_in_the_generated_policies() -> None:
    for template in _all_templates():
        trust, permissions = _role_policies(_concrete(template))
        for document in permissions:
            assert _parliament_findings(document) == [], document
        trust_document = _trust_as_resource_policy(trust, TARGET_ROLE)
        assert _parliament_findings(trust_document) == [], trust_document


def test_parliament_community_auditors_only_note_that_assume_role_returns_credentials() -> None:
    # CREDENTIALS_EXPOSURE flags sts:AssumeRole because it returns credentials: that is the
    # whole purpose of these roles. Nothing else may be reported.
    for template in _all_templates():
        trust, permissions = _role_policies(_concrete(template))
        documents = [*permissions, _trust_as_resource_policy(trust, TARGET_ROLE)]
        for document in documents:
            findings = _parliament_findings(document, community=True)
            assert [f for f in findings if not f.startswith("CREDENTIALS_EXPOSURE")] == []


def test_parliament_would_catch_a_wrong_condition_key() -> None:
    # Guards the trick above: the trust check is not vacuous.
    trust = target_role_trust_policy(WORKLOAD_ROLE, "ext-1")
    trust["Statement"][0]["Condition"] = {"StringEquals": {"sts:ExternalID2": "ext-1"}}
    assert _parliament_findings(_trust_as_resource_policy(trust, TARGET_ROLE))


# --- bad input ------------------------------------------------------------------------------

BAD_TARGET_INPUTS = [
    pytest.param(dict(tables=["x!"]), "--table 'x!' is not a valid DynamoDB table name", id="bang"),
    pytest.param(dict(tables=["ab"]), "--table 'ab'", id="too-short"),
    pytest.param(dict(tables=["a" * 256]), "--table", id="too-long"),
    pytest.param(dict(tables=["sec*"]), "--table 'sec*'", id="wildcard-name"),
    pytest.param(dict(tables=[]), "--table", id="no-table"),
    pytest.param(
        dict(tables=[f"arn:aws:dynamodb:{REGION}:{ACCOUNT_A}:table/*"]),
        "--table",
        id="arn-wildcard",
    ),
    pytest.param(dict(tables=["arn:aws:s3:::bucket"]), "--table", id="not-a-table-arn"),
    pytest.param(
        dict(kms_key_arns=[f"arn:aws:kms:{REGION}:{ACCOUNT_A}:alias/secrets"]),
        "--kms-key-arn",
        id="alias-arn",
    ),
    pytest.param(
        dict(kms_key_arns=[KEY_1.replace(ACCOUNT_A, "1111")]), "--kms-key-arn", id="short-account"
    ),
    pytest.param(
        dict(kms_key_arns=[f"arn:aws:kms:{REGION}:{ACCOUNT_A}:key/*"]),
        "--kms-key-arn",
        id="key-wildcard",
    ),
    pytest.param(
        dict(kms_key_arns=["1234abcd-12ab-34cd-56ef-1234567890ab"]),
        "--kms-key-arn",
        id="bare-key-id",
    ),
    pytest.param(
        dict(trusted=f"arn:aws:iam::{ACCOUNT_B}:user/bob"), "--trusted-role-arn", id="user"
    ),
    pytest.param(
        dict(trusted=f"arn:aws:iam::{ACCOUNT_B}:root"), "--trusted-role-arn", id="account-root"
    ),
    pytest.param(dict(trusted=ACCOUNT_B), "--trusted-role-arn", id="account-id"),
    pytest.param(
        dict(trusted=f"arn:aws:iam::{ACCOUNT_B}:role/*"), "--trusted-role-arn", id="role-wildcard"
    ),
    pytest.param(
        dict(trusted=f"arn:aws:iam::{ACCOUNT_B}:role/a*/web"),
        "--trusted-role-arn",
        id="path-wildcard",
    ),
    pytest.param(
        dict(trusted=f"arn:aws-xx:iam::{ACCOUNT_B}:role/web"), "--trusted-role-arn", id="partition"
    ),
    pytest.param(
        dict(trusted=f"arn:aws:sts::{ACCOUNT_B}:assumed-role/web/i-0123"),
        "--trusted-role-arn",
        id="session-arn",
    ),
    pytest.param(dict(external_id="x"), "--external-id", id="external-id-short"),
    pytest.param(dict(external_id="has space"), "--external-id", id="external-id-space"),
]


@pytest.mark.parametrize(("case", "message_start"), BAD_TARGET_INPUTS)
def test_bad_target_input_is_a_config_error_naming_the_option(
    case: dict[str, Any], message_start: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        target_role_template(
            case.get("trusted", WORKLOAD_ROLE),
            case.get("tables", ["secrets"]),
            case.get("kms_key_arns", ()),
            external_id=case.get("external_id"),
        )
    message = str(raised.value)
    assert message.startswith(message_start)
    assert "allowed" in message or "required" in message


@pytest.mark.parametrize(
    "targets",
    [[], ["arn:aws:iam::111111111111:role/*"], [TARGET_ROLE, "arn:aws:iam::111111111111:user/x"]],
)
def test_bad_source_input_is_a_config_error(targets: list[str]) -> None:
    with pytest.raises(ConfigError, match=r"^--target-role-arn"):
        source_role_template(targets)


def test_every_partition_is_accepted() -> None:
    for partition in ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"):
        role = f"arn:{partition}:iam::{ACCOUNT_B}:role/path/to/web"
        table = f"arn:{partition}:dynamodb:us-west-2:{ACCOUNT_A}:table/tbl"
        key = f"arn:{partition}:kms:us-west-2:{ACCOUNT_A}:key/{KEY_1.rsplit('/', 1)[1]}"
        target_role_template(role, [table], [key])
        source_role_template([role])


# --- command line ---------------------------------------------------------------------------


def _main(argv: list[str]) -> int:
    from assume_provider.cli import main

    try:
        return main(argv)
    except SystemExit as exit_:  # argparse usage errors
        return int(exit_.code or 0)


def test_cli_prints_the_template(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "template",
        "target-role",
        "--trusted-role-arn",
        WORKLOAD_ROLE,
        "--table",
        "secrets",
        "--table",
        TABLE_ARN,
        "--kms-key-arn",
        KEY_1,
        "--external-id",
        "ext-1",
        "--read-only",
    ]
    assert _main(argv) == 0
    out = capsys.readouterr().out
    assert out == render(
        target_role_template(
            WORKLOAD_ROLE, ["secrets", TABLE_ARN], [KEY_1], external_id="ext-1", read_only=True
        )
    )

    assert _main(["template", "source-role", "--target-role-arn", TARGET_ROLE, "--debug"]) == 0
    assert capsys.readouterr().out == render(source_role_template([TARGET_ROLE]))


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["target-role", "--trusted-role-arn", WORKLOAD_ROLE, "--table", "x!"], "--table 'x!'"),
        (
            ["target-role", "--trusted-role-arn", "arn:aws:iam::1:role/x", "--table", "t1t"],
            "--trusted-role-arn",
        ),
        (
            [
                "target-role",
                "--trusted-role-arn",
                WORKLOAD_ROLE,
                "--table",
                "tbl",
                "--kms-key-arn",
                f"arn:aws:kms:{REGION}:{ACCOUNT_A}:alias/a",
            ],
            "--kms-key-arn",
        ),
        (["target-role", "--trusted-role-arn", WORKLOAD_ROLE], "--table"),  # argparse: missing
        (["source-role", "--target-role-arn", "nope"], "--target-role-arn"),
    ],
)
def test_cli_bad_input_exits_2_with_one_error_line(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(["template", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("assume-provider: error: ")
    assert named in lines[0]


def test_cli_without_a_kind_prints_the_usage_then_one_error_line_naming_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _main(["template"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "target-role" in captured.err and "source-role" in captured.err  # the usage
    last = captured.err.splitlines()[-1]
    assert last == "assume-provider: error: no KIND given; choose one of those above"


def test_python_dash_m_runs_the_template_command() -> None:
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "assume_provider",
            "template",
            "source-role",
            "--target-role-arn",
            TARGET_ROLE,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert yaml.safe_load(ok.stdout) == source_role_template([TARGET_ROLE])

    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "assume_provider",
            "template",
            "target-role",
            "--trusted-role-arn",
            WORKLOAD_ROLE,
            "--table",
            "x!",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("assume-provider: error: --table 'x!' is not a valid")
    assert len(bad.stderr.splitlines()) == 1


# --- output format: JSON, which is also YAML --------------------------------------------------


def test_output_is_json_in_the_templates_logical_order_and_reads_the_same_as_yaml() -> None:
    for template in _all_templates():
        text = render(template)
        assert text.isascii() and text.endswith("}\n")
        assert json.loads(text) == template
        assert yaml.safe_load(text) == template  # YAML 1.1, as cfn-lint reads it
        assert list(json.loads(text)) == [
            "AWSTemplateFormatVersion", "Description", "Parameters", "Resources", "Outputs"
        ]
        assert list(json.loads(text)["Resources"]["Role"]) == ["Type", "Properties"]


TRICKY_STRINGS = [
    "",
    " ",
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "N",
    "true",
    "False",
    "null",
    "~",
    "Null",
    "2012-10-17",
    "0x1F",
    "1e3",
    "012",
    "1_000",
    "+1",
    ".inf",
    "-.Inf",
    ".NaN",
    "12:30:00",
    "-",
    "- a",
    "? x",
    ": x",
    "a: b",
    "a #b",
    "#c",
    "key:",
    "Fn::Sub",
    "!Sub x",
    "&a",
    "*a",
    "|",
    ">",
    "'q'",
    '"q"',
    "%TAG",
    "@x",
    "`x",
    "{a: 1}",
    "[1]",
    "a,b",
    "<<",
    "=",
    "line\nbreak",
    "tab\there",
    "trailing ",
    " leading",
    "back\\slash",
    "\x00\x07\x1b\x7f",
    "caf\u00e9",
    "\u2028\u2029\x85",
    "\ufeffbom",
    "kms:GenerateDataKey*",
    "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/t/index/*",
]


def test_strings_yaml_reads_otherwise_than_json_stay_strings() -> None:
    """YAML 1.1 words and numbers, indicators, escapes: JSON quotes and escapes them all.

    (Not characters beyond U+FFFF: PyYAML reads JSON's surrogate-pair escapes as two
    characters. Templates hold only validated ASCII.)
    """
    document = {
        "strings": TRICKY_STRINGS,
        "as keys": {text: text for text in TRICKY_STRINGS},
        "scalars": [0, -1, 10**20, True, False, None],
        "empty": {"list": [], "dict": {}},
        "nested": [[["a"], {"b": [{"c": 1}]}], [], {}],
    }
    assert yaml.safe_load(render(document)) == document
