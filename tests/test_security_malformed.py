"""Malformed STS and IMDS answers: a clear error (or the cached credentials served), never
a crash, and nothing invalid kept in memory or written to the disk cache."""

from __future__ import annotations

import logging
from pathlib import Path

import boto3
import pytest
from cli_support import run_tool
from testbed import Fault, ImdsFault, TestBed

import assume_provider
from assume_provider.credentials.imds import IMDS_MIN_ATTEMPTS
from assume_provider.diskcache.entry import Entry

PLANTED_KEY_ID = "ASIAPLANTED000000001"
FIELDS = {
    "AccessKeyId": PLANTED_KEY_ID,
    "SecretAccessKey": "PlantedSecretKey0123456789abcdefghijklmnop",
    "SessionToken": "PlantedSessionToken0123456789abcdefghijklmnop",
    "Expiration": "2099-01-01T00:00:00Z",
}


def sts_body(**changes: str | None) -> bytes:
    """An AssumeRole response with ``changes`` applied to its Credentials (None: left out)."""
    fields = {**FIELDS, **changes}
    inner = "".join(
        f"<{name}>{value}</{name}>" for name, value in fields.items() if value is not None
    )
    return (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
        f"<Credentials>{inner}</Credentials><AssumedRoleUser><AssumedRoleId>AROA:x"
        "</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/TargetRole/x</Arn>"
        "</AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId>"
        "</ResponseMetadata></AssumeRoleResponse>"
    ).encode()


MEGABYTES_5 = 5 * 1024 * 1024
STS_BODIES = {
    "invalid XML": b"<AssumeRoleResponse><AssumeRoleResult><Credentials",
    "not XML at all": b"\x00\xff\xfe binary garbage \x80",
    "HTML error page": b"<html><body>502 Bad Gateway</body></html>",
    "no Credentials": sts_body().replace(b"Credentials>", b"Nothing>"),
    "missing AccessKeyId": sts_body(AccessKeyId=None),
    "missing SecretAccessKey": sts_body(SecretAccessKey=None),
    "missing SessionToken": sts_body(SessionToken=None),
    "missing Expiration": sts_body(Expiration=None),
    "empty SecretAccessKey": sts_body(SecretAccessKey=""),
    "Expiration in the past": sts_body(Expiration="2001-01-01T00:00:00Z"),
    "unparseable Expiration": sts_body(Expiration="next tuesday"),
    "huge garbage body": b"<a>" + b"x" * MEGABYTES_5 + b"</a>",
    "huge unclosed body": b"<AssumeRoleResponse>" + b"y" * MEGABYTES_5,
}

IMDS_FAULTS = {
    "not JSON": ImdsFault.not_json(),
    "200 empty body": ImdsFault.empty(),
    "Code is not Success": ImdsFault.error_code(),
    "missing keys": ImdsFault.document(
        {"Code": "Success", "AccessKeyId": "ASIAIMDSPLANTED", "Expiration": "2099-01-01T00:00:00Z"}
    ),
    "JSON list": ImdsFault.raw(b"[1, 2, 3]"),
    "truncated JSON": ImdsFault.raw(b'{"Code": "Success", "AccessKeyId": "ASIA'),
    "HTTP 500": ImdsFault.http_status(500),
}


# -- in this process -----------------------------------------------------------------------


def _caller(session: boto3.Session) -> str:
    return str(session.client("sts").get_caller_identity()["Arn"])


@pytest.mark.usefixtures("fresh_provider_state")
@pytest.mark.parametrize("case", sorted(STS_BODIES))
def test_malformed_sts_answer_is_a_clear_error_and_is_not_cached(
    aws_env: TestBed, case: str
) -> None:
    world = aws_env.world
    aws_env.proxy.inject(Fault.raw_body(STS_BODIES[case]), action="AssumeRole", times=1)
    assume_provider.install(role_arn=world.target_role_arn)
    session = boto3.Session()
    with pytest.raises(Exception) as raised:
        _caller(session)
    message = str(raised.value)
    assert world.target_role_arn in message or "expired" in message, message
    assert len(message) < 2000  # a 5 MB body is not pasted into the message
    # Nothing was kept: the next call asks STS again and gets moto's real answer.
    assert world.account_a in _caller(session)
    key = session.get_credentials().get_frozen_credentials().access_key
    assert key != PLANTED_KEY_ID
    assert aws_env.proxy.count(action="AssumeRole") == 2


@pytest.mark.usefixtures("fresh_provider_state")
@pytest.mark.parametrize("case", sorted(STS_BODIES))
def test_malformed_sts_refresh_serves_the_cached_credentials_and_logs_it(
    aws_env: TestBed, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn)
    session = boto3.Session()
    assert world.account_a in _caller(session)
    credentials = session.get_credentials()
    good_key = credentials.get_frozen_credentials().access_key

    aws_env.proxy.inject(Fault.raw_body(STS_BODIES[case]), action="AssumeRole", times=1)
    credentials.invalidate()  # the next call must refresh
    with caplog.at_level(logging.WARNING, logger="assume_provider"):
        assert world.account_a in _caller(session)
    assert credentials.get_frozen_credentials().access_key == good_key
    assert credentials.engine.current.access_key_id == good_key
    assert any("refresh failed" in record.getMessage() for record in caplog.records)
    assert aws_env.proxy.count(action="AssumeRole") == 2


@pytest.mark.usefixtures("fresh_provider_state")
@pytest.mark.parametrize("case", sorted(IMDS_FAULTS))
def test_malformed_instance_metadata_is_a_clear_error_and_is_not_cached(
    aws_env: TestBed, case: str
) -> None:
    world = aws_env.world
    aws_env.imds.inject(IMDS_FAULTS[case], times=IMDS_MIN_ATTEMPTS)  # every attempt
    assume_provider.install(role_arn=world.target_role_arn, source="instance-metadata")
    session = boto3.Session()
    with pytest.raises(Exception) as raised:
        _caller(session)
    assert "source credentials" in str(raised.value) and "instance-metadata" in str(raised.value)
    assert aws_env.proxy.count(action="AssumeRole") == 0
    # The bad answer was not kept: the next call asks IMDS again and works.
    assert world.account_a in _caller(session)
    first_hop = aws_env.proxy.calls(action="AssumeRole")[0]
    assert first_hop.access_key_id == aws_env.imds.credentials.access_key_id


# -- the command line and its disk cache ------------------------------------------------------


def _cache_entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.entry")) if folder.exists() else []


@pytest.mark.parametrize("case", sorted(STS_BODIES))
def test_cli_malformed_sts_answer_exits_1_and_caches_nothing(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path, case: str
) -> None:
    folder = tmp_path / "cache"
    args = ["credential-process", "--cache-dir", str(folder), "--role-arn"]
    args.append(aws_env.world.target_role_arn)
    aws_env.proxy.inject(Fault.raw_body(STS_BODIES[case]), action="AssumeRole", times=1)
    failed = run_tool(args, subprocess_env)
    assert failed.returncode == 1, failed.stdout
    assert failed.stdout == ""
    (line,) = failed.stderr.splitlines()
    assert line.startswith("assume-provider: error: ")
    assert aws_env.world.target_role_arn in line or "expired" in line, line
    assert len(line) < 2000
    assert _cache_entries(folder) == []
    # The next, good answer is used and cached.
    good = run_tool(args, subprocess_env)
    assert good.returncode == 0, good.stderr
    assert PLANTED_KEY_ID not in good.stdout
    (entry_file,) = _cache_entries(folder)
    entry = Entry.from_bytes(entry_file.read_bytes())
    assert entry is not None and entry.access_key_id != PLANTED_KEY_ID


@pytest.mark.parametrize("case", sorted(IMDS_FAULTS))
def test_cli_malformed_instance_metadata_exits_1_and_caches_nothing(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path, case: str
) -> None:
    folder = tmp_path / "cache"
    args = ["credential-process", "--cache-dir", str(folder), "--source", "instance-metadata"]
    args += ["--role-arn", aws_env.world.target_role_arn]
    aws_env.imds.inject(IMDS_FAULTS[case], times=IMDS_MIN_ATTEMPTS)  # every attempt
    failed = run_tool(args, subprocess_env)
    assert failed.returncode == 1 and failed.stdout == ""
    (line,) = failed.stderr.splitlines()
    assert line.startswith("assume-provider: error: ") and "instance-metadata" in line
    assert _cache_entries(folder) == []
    assert aws_env.proxy.count(action="AssumeRole") == 0
    assert run_tool(args, subprocess_env).returncode == 0
    assert len(_cache_entries(folder)) == 1
