"""A session's client config (proxies, timeouts, CA bundle) reaches the chain's STS calls, and
sessions whose config differs do not share a chain (the first one would decide for all).

The proxy is the test bed's recording proxy used as a forward proxy on loopback: a client
configured with it sends absolute-form request lines, which it records as ``proxied``."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import botocore.config
import pytest
from testbed import TestBed
from testbed.proxy import ReverseProxy

import assume_provider

pytestmark = pytest.mark.usefixtures("fresh_provider_state")


@pytest.fixture
def http_proxy(aws_env: TestBed) -> Iterator[ReverseProxy]:
    proxy = ReverseProxy(aws_env.proxy.url)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def arn_of(session: boto3.Session) -> str:
    return str(session.client("sts").get_caller_identity()["Arn"])


def test_a_session_with_proxies_sends_its_assume_role_through_them_and_shares_with_none(
    aws_env: TestBed, http_proxy: ReverseProxy
) -> None:
    world = aws_env.world
    direct = boto3.Session()
    assume_provider.register(direct, role_arn=world.target_role_arn)
    assert world.account_a in arn_of(direct)  # the first chain: no proxy

    proxied = boto3.Session()
    proxied._session.set_default_client_config(
        botocore.config.Config(proxies={"http": http_proxy.url}, connect_timeout=7)
    )
    assume_provider.register(proxied, role_arn=world.target_role_arn)
    assert world.account_a in arn_of(proxied)

    assume_roles = http_proxy.calls(action="AssumeRole")
    assert len(assume_roles) == 1 and assume_roles[0].proxied
    assert aws_env.proxy.count(action="AssumeRole") == 2  # one chain each
    assert all(record.proxied for record in http_proxy.records)


def test_sessions_with_equal_client_config_still_share_one_chain(
    aws_env: TestBed, http_proxy: ReverseProxy
) -> None:
    world = aws_env.world
    sessions = [boto3.Session() for _ in range(3)]
    for session in sessions:
        config = botocore.config.Config(proxies={"http": http_proxy.url}, read_timeout=9)
        session._session.set_default_client_config(config)
        assume_provider.register(session, role_arn=world.target_role_arn)
    assert len({arn_of(session) for session in sessions}) == 1
    assert http_proxy.count(action="AssumeRole") == 1


def test_a_session_ca_bundle_is_part_of_the_sharing_key(aws_env: TestBed) -> None:
    """Two sessions differing only in their CA bundle get a chain each (botocore verifies the
    STS endpoint with the bundle of the session whose clients it builds)."""
    world = aws_env.world
    plain = boto3.Session()
    bundled = boto3.Session()
    bundled._session.set_config_variable("ca_bundle", "/nonexistent/ca.pem")  # http: unused
    for session in (plain, bundled):
        assume_provider.register(session, role_arn=world.target_role_arn)
    assert plain._session.get_credentials() is not bundled._session.get_credentials()
