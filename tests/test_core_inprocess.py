"""The provider in this process, against the local test bed: hops, sharing, settings, errors."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from provider_state import moto_role_of
from testbed import TestBed

import assume_provider
from assume_provider import ConfigError

pytestmark = pytest.mark.usefixtures("fresh_provider_state")


def caller_arn(session: boto3.Session | None = None) -> str:
    client = (session or boto3.Session()).client("sts")
    return str(client.get_caller_identity()["Arn"])


def test_install_reaches_account_a_and_reads_the_encrypted_secret(aws_env: TestBed) -> None:
    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn, session_name="app-on-b")

    assert caller_arn() == world.assumed_role_arn(world.target_role_arn, "app-on-b")
    item = boto3.client("dynamodb").get_item(TableName=world.table_name, Key=world.secret_item_key)
    ciphertext = item["Item"][world.secret_attribute]["B"]
    plaintext = boto3.client("kms").decrypt(CiphertextBlob=ciphertext)["Plaintext"]
    assert plaintext.decode() == world.secret_plaintext


def test_without_the_provider_the_instance_sees_only_account_b(aws_env: TestBed) -> None:
    world = aws_env.world
    assert caller_arn() == world.instance_session_arn
    assert boto3.client("dynamodb").list_tables()["TableNames"] == []


def test_two_hop_chain_signs_each_hop_with_the_previous_hops_key(aws_env: TestBed) -> None:
    world = aws_env.world
    instance_key = aws_env.imds.credentials.access_key_id
    assume_provider.install(role_arn=[world.hop_role_arn, world.target_role_arn])

    assert caller_arn().startswith(f"arn:aws:sts::{world.account_a}:assumed-role/TargetRole/")
    hops = aws_env.proxy.calls(action="AssumeRole")
    assert [call.params["RoleArn"] for call in hops] == [world.hop_role_arn, world.target_role_arn]
    assert hops[0].access_key_id == instance_key
    assert moto_role_of(hops[1].access_key_id) == world.hop_role_arn
    identity_call = aws_env.proxy.calls(action="GetCallerIdentity")[-1]
    assert moto_role_of(identity_call.access_key_id) == world.target_role_arn


def test_twenty_sessions_cost_one_assume_role_and_one_instance_profile_fetch(
    aws_env: TestBed,
) -> None:
    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn)

    arns = {caller_arn(boto3.Session()) for _ in range(20)}

    assert len(arns) == 1 and world.account_a in arns.pop()
    assert aws_env.proxy.count(action="AssumeRole") == 1
    assert aws_env.imds.credential_request_count == 1


def test_register_one_session_leaves_others_alone(aws_env: TestBed) -> None:
    world = aws_env.world
    session = boto3.Session()
    provider = assume_provider.register(session, role_arn=world.target_role_arn)
    again = assume_provider.register(session, role_arn=world.target_role_arn)

    assert again is provider
    resolver = session._session.get_component("credential_provider")
    assert [p.METHOD for p in resolver.providers].count("assume-provider") == 1
    assert resolver.providers[0] is provider
    assert world.account_a in caller_arn(session)
    assert caller_arn(boto3.Session()) == world.instance_session_arn


def test_session_with_explicit_profile_uses_that_profiles_settings(
    aws_env: TestBed, aws_config_file: Path
) -> None:
    world = aws_env.world
    aws_config_file.write_text(
        f"[profile cross]\nassume_provider_role_arn = {world.target_role_arn}\n"
        "assume_provider_session_name = from-profile\n"
    )
    assume_provider.install()

    assert caller_arn(boto3.Session()) == world.instance_session_arn
    session = boto3.Session(profile_name="cross")
    assert caller_arn(session) == world.assumed_role_arn(world.target_role_arn, "from-profile")


def test_precedence_argument_over_environment_over_config_and_values_sent(
    aws_env: TestBed, aws_config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = aws_env.world
    aws_config_file.write_text(
        "[default]\n"
        f"assume_provider_role_arn = {world.target_role_arn}\n"
        "assume_provider_session_name = from-config\n"
        "assume_provider_external_id = config-external-id\n"
        "assume_provider_duration_seconds = 1800\n"
    )
    monkeypatch.setenv("ASSUME_PROVIDER_SESSION_NAME", "from-env")
    monkeypatch.setenv("ASSUME_PROVIDER_DURATION_SECONDS", "2700")
    assume_provider.install(duration_seconds=900)

    caller_arn()

    (call,) = aws_env.proxy.calls(action="AssumeRole")
    assert call.params["RoleArn"] == world.target_role_arn  # config
    assert call.params["ExternalId"] == "config-external-id"  # config
    assert call.params["RoleSessionName"] == "from-env"  # env over config
    assert call.params["DurationSeconds"] == "900"  # argument over env over config


def test_external_id_only_on_the_last_hop(aws_env: TestBed) -> None:
    world = aws_env.world
    assume_provider.install(
        role_arn=f"{world.hop_role_arn},{world.target_role_arn}", external_id=world.external_id
    )
    caller_arn()
    first, last = aws_env.proxy.calls(action="AssumeRole")
    assert "ExternalId" not in first.params
    assert last.params["ExternalId"] == world.external_id


def test_duration_over_an_hour_is_capped_for_chained_hops(
    aws_env: TestBed, caplog: pytest.LogCaptureFixture
) -> None:
    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn, duration_seconds=7200)
    # DEBUG: the warning is once per process and chain, DEBUG when it was said before.
    with caplog.at_level("DEBUG", logger="assume_provider"):
        caller_arn()
    (call,) = aws_env.proxy.calls(action="AssumeRole")
    # The instance profile is itself a role session, so even hop 1 is role chaining.
    assert call.params["DurationSeconds"] == "3600"
    assert any("capped at 3600" in record.getMessage() for record in caplog.records)


def test_sts_region_is_pinned_whatever_client_triggers_resolution(aws_env: TestBed) -> None:
    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn)
    boto3.Session().client("dynamodb", region_name="eu-west-1").list_tables()
    (call,) = aws_env.proxy.calls(action="AssumeRole")
    assert call.region == world.region


def test_sts_error_names_the_hop_role_and_code(aws_env: TestBed) -> None:
    from testbed.proxy import Fault

    world = aws_env.world
    aws_env.proxy.inject(Fault.error("AccessDenied", 403, "not allowed"), action="AssumeRole")
    assume_provider.install(role_arn=world.target_role_arn)
    with pytest.raises(Exception) as raised:
        caller_arn()
    message = str(raised.value)
    assert "hop 1" in message and world.target_role_arn in message and "AccessDenied" in message


def test_plain_http_sts_endpoint_is_refused_unless_loopback(
    aws_env: TestBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = aws_env.world
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://sts.example.com")
    assume_provider.install(role_arn=world.target_role_arn)
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL_STS"):
        boto3.Session().get_credentials()
    assert aws_env.proxy.count() == 0 and aws_env.imds.request_count == 0


INVALID_SETTINGS = [
    ("role_arn", "arn:aws:iam::111111111111:rol/TargetRole", "not an IAM role ARN"),
    ("role_arn", "arn:aws:iam::111111111111:user/alice", "user ARN, not a role ARN"),
    ("role_arn", "arn:aws:iam::1111:role/TargetRole", "not 12 digits"),
    ("role_arn", "arn:aws-mars:iam::111111111111:role/TargetRole", "unknown partition"),
    ("duration_seconds", "899", "900 to 43200"),
    ("duration_seconds", "43201", "900 to 43200"),
    ("duration_seconds", "an hour", "900 to 43200"),
    ("source", "imds", "instance-metadata"),
    ("source", "profile:", "instance-metadata"),
    ("session_name", "has spaces", "2-64 characters"),
    ("external_id", "x", "2-1224 characters"),
    # Python's \w and \d match non-ASCII letters and digits; STS's patterns do not.
    ("session_name", "h\u00e9llo", "2-64 characters"),
    ("external_id", "ext-id-\u00e9", "2-1224 characters"),
    ("role_arn", "arn:aws:iam::" + "\u0661" * 12 + ":role/TargetRole", "not 12 digits"),
]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("session_name", "app\n"),
        ("external_id", "ext-id\n"),
        ("role_arn", "arn:aws:iam::111111111111:role/Target\nRole"),
    ],
)
def test_embedded_or_trailing_newlines_are_refused(
    aws_env: TestBed, setting: str, value: str
) -> None:
    settings = {"role_arn": aws_env.world.target_role_arn, setting: value}
    with pytest.raises(ConfigError, match=f"argument {setting}"):
        assume_provider.install(**settings)
    assert aws_env.proxy.count() == 0


@pytest.mark.parametrize(("setting", "value", "explanation"), INVALID_SETTINGS)
@pytest.mark.parametrize("origin", ["argument", "environment", "config"])
def test_invalid_setting_fails_before_any_request_naming_its_origin(
    aws_env: TestBed,
    aws_config_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    value: str,
    explanation: str,
    origin: str,
) -> None:
    world = aws_env.world
    # The role chain comes as an argument unless it is the setting under test.
    settings = {} if setting == "role_arn" else {"role_arn": world.target_role_arn}
    expected_origin = {
        "argument": f"argument {setting}",
        "environment": f"environment variable ASSUME_PROVIDER_{setting.upper()}",
        "config": f"key assume_provider_{setting} in profile 'default'",
    }[origin]
    if origin == "argument":
        settings[setting] = value
    elif origin == "environment":
        monkeypatch.setenv(f"ASSUME_PROVIDER_{setting.upper()}", value)
    else:
        aws_config_file.write_text(f"[default]\nassume_provider_{setting} = {value}\n")

    with pytest.raises(ConfigError) as raised:
        assume_provider.install(**settings)
        boto3.Session().client("sts").get_caller_identity()

    message = str(raised.value)
    assert expected_origin in message and explanation in message
    assert "\n" not in message
    assert aws_env.proxy.count() == 0 and aws_env.imds.request_count == 0


def test_missing_profile_is_a_config_error_before_any_request(aws_env: TestBed) -> None:
    import botocore.session

    session = botocore.session.Session()
    assume_provider.register(session, role_arn=aws_env.world.target_role_arn)
    # boto3.Session(profile_name=...) would fail in botocore itself; set it as boto3 does.
    session.set_config_variable("profile", "nosuchprofile")
    with pytest.raises(ConfigError, match="'nosuchprofile'"):
        session.get_credentials()
    assert aws_env.proxy.count() == 0 and aws_env.imds.request_count == 0


def test_missing_source_profile_is_a_config_error(aws_env: TestBed) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn, source="profile:ghost")
    with pytest.raises(ConfigError, match="profile:ghost"):
        boto3.Session().client("sts").get_caller_identity()
    assert aws_env.proxy.count() == 0 and aws_env.imds.request_count == 0


def test_source_environment_uses_static_keys_and_skips_exported_ones(
    aws_env: TestBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = aws_env.world
    instance = aws_env.imds.credentials
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", instance.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", instance.secret_access_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", instance.token)
    assume_provider.install(role_arn=world.target_role_arn, source="environment")
    assert world.account_a in caller_arn()
    assert aws_env.imds.request_count == 0

    # Credentials that `assume-provider env` exported are account A's: never a source.
    monkeypatch.setenv("ASSUME_PROVIDER_EXPORTED_KEY_ID", instance.access_key_id)
    with pytest.raises(Exception, match="no source credentials"):
        caller_arn(boto3.Session())


def test_inactive_without_role_chain(aws_env: TestBed) -> None:
    provider = assume_provider.AssumeRoleChainProvider(boto3.Session()._session)
    assert provider.load() is None
    assert os.environ.get("ASSUME_PROVIDER_ROLE_ARN") is None


def test_settings_from_no_input_at_all_are_valid_defaults() -> None:
    """A provider made without arguments (zero-code activation, a plain install()) checks
    nothing at construction: that is right only while settings resolved from no input at
    all are valid (a setting that must be given would have to be checked there again)."""
    from assume_provider.config.inputs import SettingInputs
    from assume_provider.config.profiles import ConfigFiles, ProfileChoice
    from assume_provider.config.settings import resolve_settings

    nothing = SettingInputs({}, {}, ProfileChoice("default", None), ConfigFiles.absent())
    settings = resolve_settings(nothing)
    assert not settings.active
    assert all(str(settings.origin(name)) == "default" for name in settings.origins)


def test_uninstall_undoes_install_but_not_explicit_registrations(aws_env: TestBed) -> None:
    world = aws_env.world
    explicit = boto3.Session()
    assume_provider.register(explicit, role_arn=world.target_role_arn)
    assume_provider.install(role_arn=world.target_role_arn)
    assert world.account_a in caller_arn(boto3.Session())
    set_up_by_install = boto3.Session()  # not used yet: its credentials are not resolved

    assume_provider.uninstall()

    assert caller_arn(boto3.Session()) == world.instance_session_arn  # new sessions
    assert caller_arn(set_up_by_install) == world.instance_session_arn
    assert world.account_a in caller_arn(explicit)  # register() is the caller's own choice


def test_install_again_with_other_settings_applies_to_the_sessions_it_set_up(
    aws_env: TestBed,
) -> None:
    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn, session_name="first")
    session = boto3.Session()
    assume_provider.install(role_arn=world.target_role_arn, session_name="second")
    assume_provider.install(role_arn=world.target_role_arn, session_name="second")  # idempotent

    assert caller_arn(session) == world.assumed_role_arn(world.target_role_arn, "second")
    assert caller_arn(boto3.Session()) == world.assumed_role_arn(world.target_role_arn, "second")
    assert aws_env.proxy.count(action="AssumeRole") == 1
    resolver = session._session.get_component("credential_provider")
    assert [p.METHOD for p in resolver.providers].count("assume-provider") == 1
