"""``AioAssumeRoleChainProvider``: the entry in aiobotocore's chain, which awaits ``load()``.

The chain itself is built from a synchronous twin of the async session (same profile, files
and session variables), so the sharing key and the STS clients are exactly those a boto3
session with the same configuration gets: sync and async sessions share one engine.
"""

from __future__ import annotations

from typing import Any, Optional

import botocore.session

from ..botocore.provider import AssumeRoleChainProvider


def sync_twin(session: botocore.session.Session) -> botocore.session.Session:
    """A botocore session configured as ``session`` (an AioSession) is: its STS clients and
    source resolvers are synchronous, and run in the engine's worker thread."""
    twin = botocore.session.Session()
    for name, value in session.instance_variables().items():
        twin.set_config_variable(name, value)
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
