"""``AioAssumeRoleChainProvider``: the entry in aiobotocore's chain, which awaits ``load()``.

The chain itself is built from a synchronous twin of the async session (same profile, files,
session variables and client config), so the sharing key and the STS clients are exactly
those a boto3 session with the same configuration gets: sync and async sessions share one
engine, and an async session's proxies, timeouts and CA bundle apply to its AssumeRole calls.
"""

from __future__ import annotations

from typing import Any, Optional

import botocore.session

from ..botocore.provider import AssumeRoleChainProvider
from ..credentials.private_session import private_session


def sync_twin(session: botocore.session.Session) -> botocore.session.Session:
    """A botocore session configured as ``session`` (an AioSession) is: its STS clients and
    source resolvers are synchronous, and run in the engine's worker thread. Its default
    client config is the async session's without the aiohttp-only options."""
    twin = private_session(session)
    config = session.get_default_client_config()
    if config is not None:
        from .private import botocore_client_config

        twin.set_default_client_config(botocore_client_config(config))
    return twin


class AioAssumeRoleChainProvider(AssumeRoleChainProvider):
    """Assumes the configured role chain for an aiobotocore session; inactive when none is set.

    ``load()`` does no network I/O (as the sync provider): it resolves settings from the
    session's files and hands out the shared engine's async view.
    """

    def chain_session(self) -> botocore.session.Session:
        return sync_twin(self.session or botocore.session.get_session())

    async def load(self) -> Optional[Any]:  # type: ignore[override]
        view = self.resolve()
        if view is None:
            return None
        from .credentials import async_view

        return async_view(view)
