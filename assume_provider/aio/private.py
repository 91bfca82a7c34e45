"""Every aiobotocore internal this package relies on, in one place, each with its reason.

``tests/aio/test_aiobotocore_surface.py`` checks each item against the installed aiobotocore,
so an upgrade that changes one fails there, by name. Imported only once an aiobotocore
session exists, so aiobotocore is importable here.
"""

from __future__ import annotations

from typing import Any, Optional

import aiobotocore.credentials
import botocore.config

# -- aiobotocore.session.AioSession._async_primitives -----------------------------------------
# AioSession's own resolver factory (``_create_credential_resolver``) passes the session's
# async primitives (asyncio, or anyio for the httpx backend) to ``create_credential_resolver``;
# the factory that puts our provider first must build the rest of the chain as it would.


def async_primitives_kwargs(session: Any) -> dict[str, Any]:
    primitives = getattr(session, "_async_primitives", None)
    return {} if primitives is None else {"async_primitives": primitives}


def create_credential_resolver(session: Any, region_name: Optional[str] = None) -> Any:
    """aiobotocore's default chain for ``session``, as ``AioSession`` itself builds it."""
    return aiobotocore.credentials.create_credential_resolver(
        session, region_name=region_name, **async_primitives_kwargs(session)
    )


# -- botocore.config.Config._user_provided_options, of an AioConfig --------------------------
# AioConfig records its aiohttp-only options (connector_args, http_session_cls, ...) among
# botocore's user-provided options, so botocore's Config.merge, which rebuilds a Config from
# them, rejects an AioConfig. The sync twin's STS clients need the options the application set
# that botocore knows (proxies, proxies_config, timeouts, retries, client_cert...): read there.


def botocore_client_config(config: botocore.config.Config) -> botocore.config.Config:
    """A botocore ``Config`` with the options botocore knows that ``config`` was given."""
    given = config._user_provided_options
    known = botocore.config.Config.OPTION_DEFAULTS
    return botocore.config.Config(**{name: given[name] for name in given if name in known})


# -- aiobotocore.credentials.AioRefreshableCredentials internals ------------------------------
# AioEngineCredentials subclasses AioRefreshableCredentials (so code that checks for it, or
# calls any of its methods, works) and overrides these, so that they answer from the engine
# instead of aiobotocore's windows and its asyncio.Lock (which belongs to one event loop).
AIO_REFRESHABLE_OVERRIDES = ("_create_lock", "_refresh", "_protected_refresh")
