"""``install()``, ``register()`` and ``uninstall()`` covering aiobotocore sessions too.

botocore runs its session initializers for ``AioSession`` as well (it subclasses botocore's
``Session``), so ``install()``'s initializer reaches aiobotocore's, aioboto3's and s3fs's
sessions. This module adds the async kind: an ``AioSession`` gets aiobotocore's own chain
with ``AioAssumeRoleChainProvider`` first. Recognising one needs no import of aiobotocore
(no ``AioSession`` can exist before aiobotocore is imported).
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from ..botocore.registration import (
    SessionKind,
    add_session_kind,
    install,
    register,
    uninstall,
)
from .provider import AioAssumeRoleChainProvider

__all__ = ["install", "register", "uninstall"]


def is_aio_session(session: Any) -> bool:
    module = sys.modules.get("aiobotocore.session")
    session_class = getattr(module, "AioSession", None)
    return session_class is not None and isinstance(session, session_class)


def _create_resolver(session: Any, region_name: Optional[str] = None) -> Any:
    from .private import create_credential_resolver

    return create_credential_resolver(session, region_name)


AIOBOTOCORE = SessionKind(
    "aiobotocore", is_aio_session, AioAssumeRoleChainProvider, _create_resolver
)
add_session_kind(AIOBOTOCORE)
