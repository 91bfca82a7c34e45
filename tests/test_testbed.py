"""The test bed itself works: IMDS token flow, cross-account mapping, recording, faults."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.credentials import InstanceMetadataProvider
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError
from botocore.utils import InstanceMetadataFetcher, InstanceMetadataRegionFetcher
from testbed import Fault, ImdsFault, TestBed
from testbed.world import as_client_kwargs

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def imds_request(
    bed: TestBed, method: str, path: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    parts = urlsplit(bed.imds.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def instance_profile_provider() -> InstanceMetadataProvider:
    """botocore's own IMDS provider, configured from the environment like boto3 does."""
    provider = (
        botocore.session.Session().get_component("credential_provider").get_provider("iam-role")
    )
    assert isinstance(provider, InstanceMetadataProvider)
    return provider


def target_role_credentials(
    bed: TestBed, sts: Any, session_name: str = "pipeline"
) -> dict[str, Any]:
    response = sts.assume_role(
        RoleArn=bed.world.target_role_arn,
        RoleSessionName=session_name,
        ExternalId=bed.world.external_id,
        DurationSeconds=900,
    )
    credentials: dict[str, Any] = response["Credentials"]
    return credentials


# -- environment ---------------------------------------------------------------------------


def test_aws_env_points_only_at_the_bed(aws_env: TestBed) -> None:
    leaked = [n for n in os.environ if n.startswith("ASSUME_PROVIDER_")]
    leaked += [
        n
        for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
        if n in os.environ
    ]
    assert leaked == []
    assert os.environ["AWS_ENDPOINT_URL"] == aws_env.proxy.url
    assert os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == aws_env.imds.url
    assert open(os.environ["AWS_CONFIG_FILE"]).read() == ""


# -- IMDS fake -----------------------------------------------------------------------------


def test_imds_requires_a_session_token(aws_env: TestBed) -> None:
    path = aws_env.imds.credentials_path
    assert imds_request(aws_env, "GET", path, {})[0] == 401
    assert imds_request(aws_env, "GET", path, {"X-aws-ec2-metadata-token": "forged"})[0] == 401
    assert imds_request(aws_env, "PUT", "/latest/api/token", {})[0] == 400  # TTL header missing

    status, token = imds_request(
        aws_env, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    )
    assert status == 200
    status, body = imds_request(aws_env, "GET", path, {"X-aws-ec2-metadata-token": token.decode()})
    assert status == 200
    document = json.loads(body)
    assert document["Code"] == "Success" and document["Type"] == "AWS-HMAC"
    assert document["Expiration"].endswith("Z")
    assert aws_env.imds.count(path) == 3


def test_botocore_instance_metadata_provider_gets_account_b_credentials(aws_env: TestBed) -> None:
    credentials = instance_profile_provider().load()

    assert credentials is not None
    frozen = credentials.get_frozen_credentials()
    assert frozen.access_key == aws_env.imds.credentials.access_key_id
    assert frozen.token == aws_env.imds.credentials.token
    assert aws_env.imds.path_counts == {
        "/latest/api/token": 1,
        "/latest/meta-data/iam/security-credentials/": 1,
        "/latest/meta-data/iam/security-credentials/InstanceRole": 1,
    }


def test_imds_faults_are_served_then_real_credentials_return(aws_env: TestBed) -> None:
    aws_env.imds.inject(ImdsFault.not_json())
    aws_env.imds.inject(ImdsFault.error_code())
    aws_env.imds.inject(ImdsFault.document({"Code": "Success", "AccessKeyId": "AKIA-only"}))
    aws_env.imds.inject(ImdsFault.empty())

    provider = instance_profile_provider()
    # botocore turns each malformed answer into "no credentials" (with 1 attempt allowed).
    assert [provider.load() for _ in range(4)] == [None, None, None, None]
    assert provider.load() is not None
    assert aws_env.imds.credential_request_count == 5


def test_imds_rotate_serves_new_credentials(aws_env: TestBed) -> None:
    before = aws_env.imds.credentials
    after = aws_env.imds.rotate()
    assert after.access_key_id != before.access_key_id
    loaded = instance_profile_provider().load()
    assert loaded is not None and loaded.access_key == after.access_key_id


def test_imds_serves_the_region_to_botocore(aws_env: TestBed) -> None:
    fetcher = InstanceMetadataRegionFetcher(
        timeout=30, num_attempts=1, config={"ec2_metadata_service_endpoint": aws_env.imds.url}
    )
    assert fetcher.retrieve_region() == "us-east-1"


def test_imds_survives_32_concurrent_clients(aws_env: TestBed) -> None:
    def fetch(_: int) -> str:
        fetcher = InstanceMetadataFetcher(
            timeout=30, num_attempts=1, config={"ec2_metadata_service_endpoint": aws_env.imds.url}
        )
        return str(fetcher.retrieve_iam_role_credentials()["access_key"])

    with ThreadPoolExecutor(32) as pool:
        keys = set(pool.map(fetch, range(32)))
    assert keys == {aws_env.imds.credentials.access_key_id}
    assert aws_env.imds.request_count == 96


# -- moto through the proxy: the two accounts ----------------------------------------------


def test_instance_credentials_are_account_b_instance_role(aws_env: TestBed) -> None:
    session = boto3.session.Session()
    identity = session.client("sts").get_caller_identity()

    assert identity["Arn"] == aws_env.world.instance_session_arn
    assert identity["Account"] == "222222222222"
    # The real cross-account check: account A's table is invisible to B.
    assert session.client("dynamodb").list_tables()["TableNames"] == []
    (record,) = aws_env.proxy.calls(service="sts")
    assert record.action == "GetCallerIdentity"
    assert record.access_key_id == aws_env.imds.credentials.access_key_id
    assert aws_env.proxy.count(action="ListTables", service="dynamodb") == 1


def test_target_role_reads_and_decrypts_the_secret(aws_env: TestBed) -> None:
    world = aws_env.world
    sts = boto3.session.Session().client("sts")
    credentials = target_role_credentials(aws_env, sts)
    account_a = boto3.session.Session(**as_client_kwargs(credentials))

    assert account_a.client("sts").get_caller_identity()["Account"] == "111111111111"
    item = account_a.client("dynamodb").get_item(
        TableName=world.table_name, Key=world.secret_item_key
    )["Item"]
    plaintext = account_a.client("kms").decrypt(CiphertextBlob=item[world.secret_attribute]["B"])[
        "Plaintext"
    ]
    assert plaintext.decode() == world.secret_plaintext

    (assume,) = aws_env.proxy.calls(action="AssumeRole")
    assert assume.service == "sts"
    assert assume.access_key_id == aws_env.imds.credentials.access_key_id
    assert assume.params["RoleArn"] == world.target_role_arn
    assert assume.params["RoleSessionName"] == "pipeline"
    assert assume.params["ExternalId"] == world.external_id
    assert assume.params["DurationSeconds"] == "900"
    decrypt = aws_env.proxy.calls(action="Decrypt", service="kms")[0]
    assert decrypt.access_key_id == credentials["AccessKeyId"]


def test_hop_chain_reaches_account_a(aws_env: TestBed) -> None:
    world = aws_env.world
    hop = (
        boto3.session.Session()
        .client("sts")
        .assume_role(RoleArn=world.hop_role_arn, RoleSessionName="hop")
    )
    hop_sts = boto3.session.Session(**as_client_kwargs(hop["Credentials"])).client("sts")
    assert hop_sts.get_caller_identity()["Arn"] == world.assumed_role_arn(world.hop_role_arn, "hop")

    target = target_role_credentials(aws_env, hop_sts, "second-hop")
    identity = boto3.session.Session(**as_client_kwargs(target)).client("sts").get_caller_identity()
    assert identity["Arn"] == world.assumed_role_arn(world.target_role_arn, "second-hop")
    assert [r.params["RoleArn"] for r in aws_env.proxy.calls(action="AssumeRole")] == [
        world.hop_role_arn,
        world.target_role_arn,
    ]


def test_policy_enforcement(aws_env: TestBed) -> None:
    world = aws_env.world
    aws_env.enforce_iam_policies()
    sts = boto3.session.Session().client("sts", config=NO_RETRIES)

    with pytest.raises(ClientError) as denied:
        sts.assume_role(RoleArn="arn:aws:iam::111111111111:role/Other", RoleSessionName="nope")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    sts.assume_role(RoleArn=world.hop_role_arn, RoleSessionName="hop")
    account_a = boto3.session.Session(**as_client_kwargs(target_role_credentials(aws_env, sts)))
    dynamodb = account_a.client("dynamodb", config=NO_RETRIES)

    dynamodb.get_item(TableName=world.table_name, Key=world.secret_item_key)
    with pytest.raises(ClientError) as denied:
        dynamodb.delete_table(TableName=world.table_name)
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    aws_env.imds.rotate()  # the bed's own admin still works under enforcement


# -- proxy faults --------------------------------------------------------------------------


def test_throttle_fault_then_recovery(aws_env: TestBed) -> None:
    injection = aws_env.proxy.inject(Fault.throttle(), action="AssumeRole", times=1)
    sts = boto3.session.Session().client("sts", config=NO_RETRIES)

    with pytest.raises(ClientError) as throttled:
        target_role_credentials(aws_env, sts)
    assert throttled.value.response["Error"]["Code"] == "Throttling"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    sts.get_caller_identity()  # other actions are untouched
    target_role_credentials(aws_env, sts)  # times=1: the next one goes through

    assert injection.remaining == 0 and injection.applied == 1
    assert [r.fault for r in aws_env.proxy.calls(action="AssumeRole")] == ["error:Throttling", None]


def test_throttle_fault_on_json_protocol(aws_env: TestBed) -> None:
    aws_env.proxy.inject(Fault.throttle(), service="dynamodb", times=None)
    dynamodb = boto3.session.Session().client("dynamodb", config=NO_RETRIES)
    for _ in range(2):
        with pytest.raises(ClientError) as throttled:
            dynamodb.list_tables()
        assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    aws_env.proxy.clear_faults()
    dynamodb.list_tables()


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        (Fault.error("AccessDenied", 403, "not authorized"), "AccessDenied", 403),
        (Fault.server_error(500), "InternalFailure", 500),
        (Fault.server_error(503), "ServiceUnavailable", 503),
    ],
)
def test_error_faults(aws_env: TestBed, fault: Fault, code: str, status: int) -> None:
    aws_env.proxy.inject(fault, action="GetCallerIdentity")
    with pytest.raises(ClientError) as failed:
        boto3.session.Session().client("sts", config=NO_RETRIES).get_caller_identity()
    assert failed.value.response["Error"]["Code"] == code
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_drop_fault_closes_the_connection(aws_env: TestBed) -> None:
    aws_env.proxy.inject(Fault.drop(), action="GetCallerIdentity")
    sts = boto3.session.Session().client("sts", config=NO_RETRIES)
    with pytest.raises(ConnectionClosedError):
        sts.get_caller_identity()
    sts.get_caller_identity()


def test_delay_fault_waits_then_forwards(aws_env: TestBed) -> None:
    aws_env.proxy.inject(Fault.delay(0.2), action="GetCallerIdentity")
    sts = boto3.session.Session().client("sts", config=NO_RETRIES)
    assert sts.get_caller_identity()["Account"] == aws_env.world.account_b
    assert [call.fault for call in aws_env.proxy.calls(action="GetCallerIdentity")] == ["delay"]


def test_a_held_call_trips_the_read_timeout_and_is_answered_once_released(
    aws_env: TestBed,
) -> None:
    """The call is held until the client has given up, however long that takes."""
    gate = threading.Event()
    aws_env.proxy.inject(Fault.hold(gate), action="GetCallerIdentity")
    impatient = Config(read_timeout=0.2, retries={"total_max_attempts": 1, "mode": "standard"})
    sts = boto3.session.Session().client("sts", config=impatient)
    try:
        with pytest.raises(ReadTimeoutError):
            sts.get_caller_identity()
    finally:
        gate.set()
    sts.get_caller_identity()
    assert aws_env.proxy.count(action="GetCallerIdentity") == 2


def test_wait_for_count_returns_once_the_call_has_arrived(aws_env: TestBed) -> None:
    gate = threading.Event()
    aws_env.proxy.inject(Fault.hold(gate), action="GetCallerIdentity")
    sts = boto3.session.Session().client("sts", config=NO_RETRIES)
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(sts.get_caller_identity)
        try:
            assert aws_env.proxy.wait_for_count(1, action="GetCallerIdentity")
            assert not call.done()  # arrived, and held
            assert not aws_env.proxy.wait_for_count(2, action="GetCallerIdentity", timeout=0)
        finally:
            gate.set()
        assert call.result(timeout=60)["Account"] == aws_env.world.account_b


def test_raw_body_fault_gives_a_malformed_sts_response(aws_env: TestBed) -> None:
    aws_env.proxy.inject(Fault.raw_body(b"<AssumeRoleResponse><oops"), action="AssumeRole")
    sts = boto3.session.Session().client("sts", config=NO_RETRIES)
    with pytest.raises(ResponseParserError):
        target_role_credentials(aws_env, sts)


def test_subprocess_env_reaches_the_bed(subprocess_env: dict[str, str], aws_env: TestBed) -> None:
    script = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == aws_env.world.instance_session_arn
