"""An aiobotocore session's client config reaches the AssumeRole calls made for it (they run
in a synchronous twin of the session), and sessions whose config differs do not share.

The proxy is the test bed's recording proxy used as a forward proxy on loopback: a client
configured with it sends absolute-form request lines, which it records as ``proxied``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("aiobotocore", reason="the async tests run in their own venv: ci/async-tests")

from aio_apps import run_app
from testbed import TestBed
from testbed.proxy import ReverseProxy

APP = """
import asyncio, json, sys
import aiobotocore.config, aiobotocore.session
import assume_provider

proxy_url, role_arn = sys.argv[1:3]

async def arn(session):
    async with session.create_client("sts") as sts:
        return (await sts.get_caller_identity())["Arn"]

async def main():
    proxied = aiobotocore.session.AioSession()
    # aiohttp-only options beside botocore's: the twin keeps botocore's.
    proxied.set_default_client_config(aiobotocore.config.AioConfig(
        proxies={"http": proxy_url}, connect_timeout=7, connector_args={"keepalive_timeout": 3}))
    direct = aiobotocore.session.AioSession()
    for session in (proxied, direct):
        assume_provider.register(session, role_arn=role_arn)
    arns = [await arn(proxied), await arn(direct)]
    print(json.dumps({"arns": arns}))

asyncio.run(main())
"""


@pytest.fixture
def http_proxy(aws_env: TestBed) -> Iterator[ReverseProxy]:
    proxy = ReverseProxy(aws_env.proxy.url)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def test_an_aio_session_with_proxies_sends_its_assume_role_through_them(
    aws_env: TestBed, subprocess_env: dict[str, str], http_proxy: ReverseProxy
) -> None:
    world = aws_env.world
    result = run_app(APP, subprocess_env, http_proxy.url, world.target_role_arn)

    assert all(world.account_a in arn for arn in result["arns"])
    assume_roles = http_proxy.calls(action="AssumeRole")
    assert len(assume_roles) == 1 and assume_roles[0].proxied  # the proxied session's chain
    assert aws_env.proxy.count(action="AssumeRole") == 2  # and the direct one's: no sharing
    assert all(record.proxied for record in http_proxy.records)
