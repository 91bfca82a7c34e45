"""The aiobotocore internals listed in assume_provider/aio/private.py, and the parts of its
public behaviour the async view relies on, checked against the installed aiobotocore."""

from __future__ import annotations

import asyncio
import inspect

import pytest

pytest.importorskip("aiobotocore", reason="the async tests run in their own venv: ci/async-tests")

import aiobotocore.credentials
import aiobotocore.hooks
import aiobotocore.session
import botocore
import botocore.config

from assume_provider.aio import private
from assume_provider.aio.credentials import AioEngineCredentials
from assume_provider.aio.registration import is_aio_session

pytestmark = pytest.mark.usefixtures("fresh_provider_state")


def test_an_aio_session_runs_botocores_initializers_and_awaits_its_resolver() -> None:
    seen = []
    botocore.register_initializer(seen.append)
    try:
        session = aiobotocore.session.AioSession()
    finally:
        botocore.unregister_initializer(seen.append)
    assert seen == [session]
    assert inspect.iscoroutinefunction(aiobotocore.session.AioSession.get_credentials)
    resolver_class = aiobotocore.credentials.AioCredentialResolver
    assert inspect.iscoroutinefunction(resolver_class.load_credentials)
    assert is_aio_session(session)


def test_the_session_exposes_its_async_primitives_for_the_resolver_factory() -> None:
    session = aiobotocore.session.AioSession()
    assert "async_primitives" in private.async_primitives_kwargs(session)
    resolver = private.create_credential_resolver(session)
    assert isinstance(resolver, aiobotocore.credentials.AioCredentialResolver)


def test_the_overridden_refreshable_methods_exist_in_aiobotocore() -> None:
    base = aiobotocore.credentials.AioRefreshableCredentials
    for name in private.AIO_REFRESHABLE_OVERRIDES:
        assert name in vars(base), name
        assert name in vars(AioEngineCredentials), name


def test_the_async_emitter_accepts_sync_handlers() -> None:
    """The ExpiredToken and signing-key handlers are sync functions, shared with botocore."""
    emitter = aiobotocore.hooks.AioHierarchicalEmitter()
    emitter.register("needs-retry", lambda **_: 0.0)
    responses = asyncio.run(emitter.emit("needs-retry.sts.AssumeRole"))
    assert [response for _handler, response in responses] == [0.0]


def test_install_gives_an_aio_session_an_async_provider_first() -> None:
    import assume_provider

    assume_provider.install(role_arn="arn:aws:iam::111111111111:role/TargetRole")
    session = aiobotocore.session.AioSession()
    resolver = session.get_component("credential_provider")
    assert isinstance(resolver, aiobotocore.credentials.AioCredentialResolver)
    assert resolver.providers[0].METHOD == "assume-provider"
    assert inspect.iscoroutinefunction(resolver.providers[0].load)


def test_an_aio_config_gives_the_twin_botocores_options_only() -> None:
    """AioConfig keeps its aiohttp-only options among botocore's user-provided ones, which is
    why the sync twin's config is read there (aio/private.py) and not by Config.merge."""
    import aiobotocore.config

    config = aiobotocore.config.AioConfig(
        proxies={"http": "http://127.0.0.1:9"},
        read_timeout=3,
        connector_args={"keepalive_timeout": 2},
    )
    assert "connector_args" in config._user_provided_options
    with pytest.raises(TypeError):
        botocore.config.Config().merge(config)
    plain = private.botocore_client_config(config)
    assert type(plain) is botocore.config.Config
    assert (plain.proxies, plain.read_timeout) == ({"http": "http://127.0.0.1:9"}, 3)
    assert botocore.config.Config(connect_timeout=5).merge(plain).connect_timeout == 5
