"""Template options for session parameters: sts:TagSession and sts:SetSourceIdentity.

A statement walk proves the added actions appear only when asked, only for the named
principal (trust policy) and only on the named target roles (source role's policy); the
templates stay cfn-lint and parliament clean.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

import pytest

from assume_provider.cli import main
from assume_provider.templates.cloudformation import (
    render,
    source_role_template,
    target_role_template,
)

WORKLOAD_ROLE = "arn:aws:iam::222222222222:role/app/web-instance"
TARGETS = [
    "arn:aws:iam::111111111111:role/assume-provider-target",
    "arn:aws:iam::444444444444:role/team/reader",
]
EXTRA = {"sts:TagSession", "sts:SetSourceIdentity"}
FLAGS = [
    pytest.param(False, False, id="neither"),
    pytest.param(True, False, id="tags"),
    pytest.param(False, True, id="source-identity"),
    pytest.param(True, True, id="both"),
]


def _asked(tags: bool, identity: bool) -> set[str]:
    return ({"sts:TagSession"} if tags else set()) | (
        {"sts:SetSourceIdentity"} if identity else set()
    )


def _concrete(value: Any) -> Any:
    """``{"Fn::Sub": ...}`` as the ARN CloudFormation would make in account A."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"].replace("${AWS::Partition}", "aws")
            return text.replace("${AWS::Region}", "us-east-1").replace(
                "${AWS::AccountId}", "111111111111"
            )
        return {key: _concrete(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_concrete(item) for item in value]
    return value


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return set(action if isinstance(action, list) else [action])


def _properties(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"]["Role"]["Properties"])


def _all(tags: bool, identity: bool) -> list[dict[str, Any]]:
    return [
        target_role_template(
            WORKLOAD_ROLE, ["secrets"], session_tags=tags, source_identity=identity
        ),
        target_role_template(
            WORKLOAD_ROLE,
            ["secrets"],
            external_id="ext-1",
            session_tags=tags,
            source_identity=identity,
        ),
        source_role_template(TARGETS, session_tags=tags, source_identity=identity),
    ]


@pytest.mark.parametrize(("tags", "identity"), FLAGS)
def test_target_trust_adds_the_actions_only_when_asked_only_for_the_trusted_role(
    tags: bool, identity: bool
) -> None:
    for external_id in (None, "ext-1"):
        template = target_role_template(
            WORKLOAD_ROLE,
            ["secrets"],
            external_id=external_id,
            session_tags=tags,
            source_identity=identity,
        )
        properties = _properties(template)
        trust = properties["AssumeRolePolicyDocument"]
        granted: set[str] = set()
        for statement in trust["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Principal"] == {"AWS": WORKLOAD_ROLE}  # never anyone else
            granted |= _actions(statement)
            if _actions(statement) == {"sts:AssumeRole"} and external_id:
                assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": external_id}}
        assert granted == {"sts:AssumeRole"} | _asked(tags, identity)
        # The permissions policy (DynamoDB/KMS) never gets STS actions.
        for policy in properties["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert not _actions(statement) & (EXTRA | {"sts:AssumeRole"})


@pytest.mark.parametrize(("tags", "identity"), FLAGS)
def test_source_role_adds_the_actions_only_when_asked_only_on_the_named_targets(
    tags: bool, identity: bool
) -> None:
    properties = _properties(
        source_role_template(TARGETS, session_tags=tags, source_identity=identity)
    )
    granted: set[str] = set()
    for policy in properties["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Resource"] == TARGETS
            assert "Condition" not in statement
            granted |= _actions(statement)
    assert granted == {"sts:AssumeRole"} | _asked(tags, identity)
    # EC2's trust of the instance role is unchanged.
    trust = properties["AssumeRolePolicyDocument"]
    assert {a for s in trust["Statement"] for a in _actions(s)} == {"sts:AssumeRole"}


def test_without_the_options_the_templates_are_unchanged() -> None:
    assert target_role_template(WORKLOAD_ROLE, ["secrets"]) == target_role_template(
        WORKLOAD_ROLE, ["secrets"], session_tags=False, source_identity=False
    )
    trust = _properties(target_role_template(WORKLOAD_ROLE, ["secrets"]))[
        "AssumeRolePolicyDocument"
    ]
    assert [s["Action"] for s in trust["Statement"]] == ["sts:AssumeRole"]


def test_cfn_lint_and_parliament_find_nothing_with_the_options() -> None:
    from cfnlint.api import lint_all
    from parliament import analyze_policy_string

    for tags, identity in ((True, False), (False, True), (True, True)):
        for template in _all(tags, identity):
            text = render(template)
            findings = [str(m) for m in lint_all(text) if m.rule.id.startswith(("E", "W"))]
            assert findings == [], text
            properties = _properties(_concrete(template))
            documents = [p["PolicyDocument"] for p in properties["Policies"]]
            trust = properties["AssumeRolePolicyDocument"]
            # A trust policy is the role's resource policy: give it the role as Resource.
            documents.append(
                {**trust, "Statement": [{**s, "Resource": TARGETS[0]} for s in trust["Statement"]]}
            )
            for document in documents:
                text = json.dumps(document)
                policy = analyze_policy_string(text)
                assert [f"{f.issue}: {f.detail}" for f in policy.findings] == [], text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["template", "target-role", "--trusted-role-arn", WORKLOAD_ROLE, "--table", "t1x"], set()),
        (
            [
                "template",
                "target-role",
                "--trusted-role-arn",
                WORKLOAD_ROLE,
                "--table",
                "t1x",
                "--allow-session-tags",
            ],
            {"sts:TagSession"},
        ),
        (
            ["template", "source-role", "--target-role-arn", TARGETS[0], "--allow-source-identity"],
            {"sts:SetSourceIdentity"},
        ),
        (
            [
                "template",
                "source-role",
                "--target-role-arn",
                TARGETS[0],
                "--allow-session-tags",
                "--allow-source-identity",
            ],
            EXTRA,
        ),
    ],
)
def test_cli_options(argv: list[str], expected: set[str]) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(argv) == 0
    template = json.loads(out.getvalue())
    properties = _properties(template)
    documents = [properties["AssumeRolePolicyDocument"]]
    documents += [p["PolicyDocument"] for p in properties["Policies"]]
    granted = {a for d in documents for s in d["Statement"] for a in _actions(s)}
    assert granted & EXTRA == expected
