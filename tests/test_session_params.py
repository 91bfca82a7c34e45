"""Session parameters (INTERFACE.md "Session parameters"): validation, hops, sharing, caching.

The AssumeRole parameters are read at the proxy, as STS would receive them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_support import run_tool, write_config
from hypothesis import given, settings
from hypothesis import strategies as st
from testbed import TestBed

import assume_provider
from assume_provider import ConfigError
from assume_provider.config.inputs import SettingInputs, config_key, env_var
from assume_provider.config.profiles import ConfigFiles, ProfileChoice
from assume_provider.config.session_params import (
    packed_policy,
    parse_policy,
    parse_tags,
    policy_arn_problem,
    region_problem,
)
from assume_provider.config.settings import Origin, resolve_settings

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}],
}
MANAGED = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def caller_arn(session: boto3.Session | None = None) -> str:
    return str((session or boto3.Session()).client("sts").get_caller_identity()["Arn"])


def assume_calls(bed: TestBed) -> list[Any]:
    return bed.proxy.calls(action="AssumeRole")


def tags_of(params: dict[str, str]) -> dict[str, str]:
    tags = {}
    number = 1
    while f"Tags.member.{number}.Key" in params:
        tags[params[f"Tags.member.{number}.Key"]] = params[f"Tags.member.{number}.Value"]
        number += 1
    return tags


def members(params: dict[str, str], name: str, suffix: str = "") -> list[str]:
    found = []
    number = 1
    while f"{name}.member.{number}{suffix}" in params:
        found.append(params[f"{name}.member.{number}{suffix}"])
        number += 1
    return found


def parameter_names(params: dict[str, str]) -> set[str]:
    return {name.split(".")[0] for name in params}


LAST_HOP_ONLY = {"Tags", "TransitiveTagKeys", "PolicyArns", "Policy"}


def assert_two_hops_carry(bed: TestBed, *, source_identity: str, tags: dict[str, str]) -> None:
    first, last = assume_calls(bed)
    assert first.params["RoleArn"] == bed.world.hop_role_arn
    assert first.params["SourceIdentity"] == source_identity
    assert not parameter_names(first.params) & LAST_HOP_ONLY
    assert "SourceIdentity" not in last.params
    assert tags_of(last.params) == tags
    assert members(last.params, "TransitiveTagKeys") == ["team"]
    assert members(last.params, "PolicyArns", ".arn") == [MANAGED]
    assert json.loads(last.params["Policy"]) == POLICY
    assert last.params["Policy"] == json.dumps(POLICY, separators=(",", ":"))  # packed


# -- sent on the right hop, from every place -------------------------------------------


def test_arguments_two_hops_source_identity_first_the_rest_last(aws_env: TestBed) -> None:
    world = aws_env.world
    assume_provider.install(
        role_arn=[world.hop_role_arn, world.target_role_arn],
        source_identity="alice@example.com",
        tags={"team": "data", "cost-center": "42"},
        transitive_tag_keys=["team"],
        policy_arns=[MANAGED],
        policy=json.dumps(POLICY, indent=2),
    )
    assert world.account_a in caller_arn()
    assert_two_hops_carry(
        aws_env, source_identity="alice@example.com", tags={"team": "data", "cost-center": "42"}
    )


def test_environment_two_hops(aws_env: TestBed, monkeypatch: pytest.MonkeyPatch) -> None:
    world = aws_env.world
    monkeypatch.setenv("ASSUME_PROVIDER_ROLE_ARN", f"{world.hop_role_arn},{world.target_role_arn}")
    monkeypatch.setenv("ASSUME_PROVIDER_SOURCE_IDENTITY", "bob")
    monkeypatch.setenv("ASSUME_PROVIDER_TAGS", "team=web, tier=front end")
    monkeypatch.setenv("ASSUME_PROVIDER_TRANSITIVE_TAG_KEYS", "team")
    monkeypatch.setenv("ASSUME_PROVIDER_POLICY_ARNS", MANAGED)
    monkeypatch.setenv("ASSUME_PROVIDER_POLICY", json.dumps(POLICY))
    assume_provider.install()
    caller_arn()
    assert_two_hops_carry(aws_env, source_identity="bob", tags={"team": "web", "tier": "front end"})


def test_config_file_two_hops_with_a_policy_file(
    aws_env: TestBed, aws_config_file: Path, tmp_path: Path
) -> None:
    world = aws_env.world
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(POLICY, indent=4))
    aws_config_file.write_text(
        "[default]\n"
        f"assume_provider_role_arn = {world.hop_role_arn},{world.target_role_arn}\n"
        "assume_provider_source_identity = carol\n"
        "assume_provider_tags = team=ops\n"
        "assume_provider_transitive_tag_keys = team\n"
        f"assume_provider_policy_arns = {MANAGED}\n"
        f"assume_provider_policy = file://{policy_file}\n"
    )
    assume_provider.install()
    caller_arn()
    assert_two_hops_carry(aws_env, source_identity="carol", tags={"team": "ops"})


def test_cli_flags_two_hops(subprocess_env: dict[str, str], aws_env: TestBed) -> None:
    world = aws_env.world
    done = run_tool(
        [
            "credential-process",
            "--no-cache",
            "--role-arn",
            world.hop_role_arn,
            "--role-arn",
            world.target_role_arn,
            "--source-identity",
            "dave",
            "--tag",
            "team=cli",
            "--tag",
            "env=prod",
            "--transitive-tag-key",
            "team",
            "--policy-arn",
            MANAGED,
            "--policy",
            json.dumps(POLICY),
        ],
        subprocess_env,
    )
    assert done.returncode == 0, done.stderr
    assert_two_hops_carry(aws_env, source_identity="dave", tags={"team": "cli", "env": "prod"})


def test_precedence_argument_over_environment_over_config_replaces_whole(
    aws_env: TestBed, aws_config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = aws_env.world
    aws_config_file.write_text(
        "[default]\n"
        f"assume_provider_role_arn = {world.target_role_arn}\n"
        "assume_provider_tags = from=config,only=config\n"
        "assume_provider_source_identity = from-config\n"
        f"assume_provider_policy_arns = {MANAGED}\n"
    )
    monkeypatch.setenv("ASSUME_PROVIDER_TAGS", "from=env")
    monkeypatch.setenv("ASSUME_PROVIDER_SOURCE_IDENTITY", "from-env")
    assume_provider.install(tags={"from": "argument"})
    caller_arn()
    (call,) = assume_calls(aws_env)
    assert tags_of(call.params) == {"from": "argument"}  # not merged with env or config
    assert call.params["SourceIdentity"] == "from-env"
    assert members(call.params, "PolicyArns", ".arn") == [MANAGED]


def test_without_parameters_none_is_sent(aws_env: TestBed) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    caller_arn()
    (call,) = assume_calls(aws_env)
    assert not parameter_names(call.params) & (LAST_HOP_ONLY | {"SourceIdentity"})


# -- sharing and the disk cache -----------------------------------------------------------


def test_two_sessions_differing_only_in_tags_make_two_assume_roles(aws_env: TestBed) -> None:
    world = aws_env.world
    first, second, again = boto3.Session(), boto3.Session(), boto3.Session()
    assume_provider.register(first, role_arn=world.target_role_arn, tags={"team": "a"})
    assume_provider.register(second, role_arn=world.target_role_arn, tags={"team": "b"})
    assume_provider.register(again, role_arn=world.target_role_arn, tags={"team": "a"})
    for session in (first, second, again):
        caller_arn(session)
    assert sorted(tags_of(c.params)["team"] for c in assume_calls(aws_env)) == ["a", "b"]


@pytest.mark.parametrize(
    ("option", "one", "other"),
    [
        ("--tag", "team=a", "team=b"),
        ("--source-identity", "alice", "bob"),
        ("--transitive-tag-key", None, "team"),
        ("--policy-arn", MANAGED, "arn:aws:iam::aws:policy/PowerUserAccess"),
        ("--policy", json.dumps(POLICY), json.dumps({**POLICY, "Id": "other"})),
        ("--sts-fallback-region", "us-west-2", "eu-west-1"),
    ],
)
def test_the_disk_cache_never_serves_one_parameter_value_to_another(
    subprocess_env: dict[str, str], aws_env: TestBed, option: str, one: str | None, other: str
) -> None:
    base = ["credential-process", "--role-arn", aws_env.world.target_role_arn]
    if option != "--tag":
        base += ["--tag", "team=a"]

    def run(value: str | None) -> dict[str, Any]:
        extra = [option, value] if value is not None else []
        done = run_tool([*base, *extra], subprocess_env)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    first = run(one)
    assert aws_env.proxy.count(action="AssumeRole") == 1
    second = run(other)
    assert aws_env.proxy.count(action="AssumeRole") == 2
    assert second["AccessKeyId"] != first["AccessKeyId"]
    assert run(one)["AccessKeyId"] == first["AccessKeyId"]  # the cache-hit path keys it too
    assert run(other)["AccessKeyId"] == second["AccessKeyId"]
    assert aws_env.proxy.count(action="AssumeRole") == 2


def test_the_disk_cache_follows_the_content_of_a_policy_file(
    subprocess_env: dict[str, str], aws_env: TestBed, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(POLICY))
    args = [
        "credential-process",
        "--role-arn",
        aws_env.world.target_role_arn,
        "--policy",
        f"file://{policy_file}",
    ]
    assert run_tool(args, subprocess_env).returncode == 0
    assert run_tool(args, subprocess_env).returncode == 0
    assert aws_env.proxy.count(action="AssumeRole") == 1
    policy_file.write_text(json.dumps({**POLICY, "Id": "edited"}))
    assert run_tool(args, subprocess_env).returncode == 0
    calls = assume_calls(aws_env)
    assert len(calls) == 2 and json.loads(calls[1].params["Policy"])["Id"] == "edited"


def test_whoami_shows_the_parameters_of_each_hop(
    subprocess_env: dict[str, str], aws_env: TestBed
) -> None:
    world = aws_env.world
    done = run_tool(
        [
            "whoami",
            "--json",
            "--role-arn",
            f"{world.hop_role_arn},{world.target_role_arn}",
            "--source-identity",
            "erin",
            "--tag",
            "team=x",
            "--policy-arn",
            MANAGED,
        ],
        subprocess_env,
    )
    assert done.returncode == 0, done.stderr
    hops = json.loads(done.stdout)["hops"]
    assert hops[0]["parameters"] == {"source_identity": "erin"}
    assert hops[1]["parameters"] == {"tags": {"team": "x"}, "policy_arns": [MANAGED]}
    text = run_tool(
        ["whoami", "--role-arn", world.target_role_arn, "--tag", "team=x"], subprocess_env
    )
    assert text.returncode == 0, text.stderr
    assert "  tags: team=x" in text.stdout
    assert "tags: team=x  [option --tag]" in text.stdout


# -- invalid values: ConfigError naming setting and origin, no request --------------------

LONG_POLICY = json.dumps({"Version": "2012-10-17", "Id": "x" * 2100})
INVALID = [
    ("tags", ",".join(f"k{n}=v" for n in range(51)), "51 tags"),
    ("tags", "Team=a,team=b", "equal ignoring case"),
    ("tags", "k" * 129 + "=v", "invalid tag key"),
    ("tags", "aws:x=1", "reserved"),
    ("tags", "novalue", "K=V"),
    ("source_identity", "alice smith", "2-64 characters"),
    ("source_identity", "a", "2-64 characters"),
    ("policy", "{not json", "not valid JSON"),
    ("policy", "[1, 2]", "not a JSON object"),
    ("policy", LONG_POLICY, "characters packed"),
    ("policy", "file:///nonexistent/policy.json", "cannot read"),
    ("policy_arns", ",".join(f"arn:aws:iam::aws:policy/P{n}" for n in range(11)), "11 policy ARNs"),
    ("policy_arns", "arn:aws:iam::111111111111:role/NotAPolicy", "not a policy ARN"),
    ("policy_arns", "arn:aws:s3:::bucket-name-here", "not an IAM policy ARN"),
    ("transitive_tag_keys", "absent", "not the key of a session tag"),
    ("sts_fallback_regions", "us_east_1", "region name"),
    ("sts_fallback_regions", "useast", "region name"),
]


@pytest.mark.parametrize(("name", "value", "reason"), INVALID)
@pytest.mark.parametrize("place", ["argument", "environment", "config"])
def test_invalid_values_are_config_errors_naming_setting_and_origin(
    name: str, value: str, reason: str, place: str
) -> None:
    arguments: dict[str, Any] = {}
    environ: dict[str, str] = {}
    profile: dict[str, str] = {}
    if place == "argument":
        arguments[name] = value
        origin = str(Origin.argument(name))
    elif place == "environment":
        environ[env_var(name)] = value
        origin = str(Origin.environment(name))
    else:
        profile[config_key(name)] = value
        origin = str(Origin.config(name, "default", "/x/config"))
    if name == "transitive_tag_keys":
        arguments["tags"] = "team=a"
    files = ConfigFiles.of_profiles({"default": profile}, "/x/config")
    with pytest.raises(ConfigError) as raised:
        resolve_settings(SettingInputs(arguments, environ, ProfileChoice("default", None), files))
    message = str(raised.value)
    assert f"invalid {name} " in message and f"(from {origin})" in message
    assert reason in message


def test_an_invalid_value_makes_no_request_in_process(
    aws_env: TestBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSUME_PROVIDER_ROLE_ARN", aws_env.world.target_role_arn)
    monkeypatch.setenv("ASSUME_PROVIDER_TAGS", "a=1,A=2")
    assume_provider.install()
    with pytest.raises(ConfigError, match="ASSUME_PROVIDER_TAGS"):
        caller_arn()
    assert aws_env.proxy.records == []
    assert aws_env.imds.credential_request_count == 0


@pytest.mark.parametrize(
    ("args", "origin"),
    [
        (["--tag", "a=1", "--tag", "A=2"], "option --tag"),
        (["--source-identity", "has space"], "option --source-identity"),
        (["--policy", "{"], "option --policy"),
        (["--policy-arn", "arn:aws:iam::111111111111:user/u"], "option --policy-arn"),
        (["--tag", "a=1", "--transitive-tag-key", "b"], "option --transitive-tag-key"),
        (["--sts-fallback-region", "moon"], "option --sts-fallback-region"),
    ],
)
def test_invalid_cli_values_exit_2_naming_the_option_with_no_request(
    subprocess_env: dict[str, str], aws_env: TestBed, args: list[str], origin: str
) -> None:
    done = run_tool(
        ["credential-process", "--role-arn", aws_env.world.target_role_arn, *args],
        subprocess_env,
    )
    assert done.returncode == 2, done.stderr
    assert origin in done.stderr
    assert aws_env.proxy.records == []


def test_invalid_config_value_exits_2_naming_the_key(
    subprocess_env: dict[str, str], aws_env: TestBed
) -> None:
    write_config(
        subprocess_env,
        f"[default]\nassume_provider_role_arn = {aws_env.world.target_role_arn}\n"
        "assume_provider_source_identity = not valid\n",
    )
    done = run_tool(["credential-process"], subprocess_env)
    assert done.returncode == 2
    assert "key assume_provider_source_identity in profile 'default'" in done.stderr
    assert aws_env.proxy.records == []


# -- property tests for the validators ----------------------------------------------------

ORIGIN = Origin.environment("tags")
tag_alphabet = st.sampled_from(list("abcXYZ019 _.:/=+-@éß日"))
tag_keys = st.text(tag_alphabet, min_size=1, max_size=128).filter(
    lambda key: "=" not in key and key.strip() == key and key and not key.lower().startswith("aws:")
)
tag_values = st.text(tag_alphabet, max_size=256).filter(lambda value: value.strip() == value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(tag_keys, tag_values, max_size=50))
def test_valid_tags_round_trip_as_mapping_and_as_text(tags: dict[str, str]) -> None:
    if len({key.lower() for key in tags}) != len(tags):
        with pytest.raises(ConfigError):
            parse_tags(tags, ORIGIN)
        return
    assert dict(parse_tags(tags, ORIGIN)) == tags
    if tags:
        text = ",".join(f"{key}={value}" for key, value in tags.items())
        assert dict(parse_tags(text, ORIGIN)) == tags


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.dictionaries(st.text(), st.text(), max_size=60)))
def test_any_tags_value_gives_tags_within_sts_limits_or_config_error(raw: Any) -> None:
    try:
        tags = parse_tags(raw, ORIGIN)
    except ConfigError as exc:
        assert "invalid tags" in str(exc) and str(ORIGIN) in str(exc)
        return
    assert len(tags) <= 50
    assert len({key.lower() for key, _ in tags}) == len(tags)
    assert all(1 <= len(key) <= 128 and len(value) <= 256 for key, value in tags)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(' \t\n"\\{}[]:,ab'),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(' "\\ab:'), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(' "\\ab:{}'), json_values, max_size=5), st.integers(0, 4))
def test_packing_a_policy_keeps_its_meaning_and_drops_only_whitespace(
    document: dict[str, Any], indent: int
) -> None:
    text = json.dumps(document, indent=indent or None)
    packed = packed_policy(text)
    assert json.loads(packed) == document
    assert packed == json.dumps(document, separators=(",", ":"))
    if len(packed) <= 2048:
        assert parse_policy(text, ORIGIN) == packed
    else:
        with pytest.raises(ConfigError, match="characters packed"):
            parse_policy(text, ORIGIN)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_policy_arn_and_region_rules_never_raise(text: str) -> None:
    problem = policy_arn_problem(text)
    if problem is None:
        assert text.startswith("arn:") and ":policy/" in text
    if region_problem(text) is None:
        assert text.count("-") >= 2 and text[-1].isdigit()


def test_environment_is_untouched() -> None:
    assert "ASSUME_PROVIDER_TAGS" not in os.environ
