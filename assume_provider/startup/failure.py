"""A failed zero-code activation, reported where the application can see it: at credential
resolution, as an error naming the variable that asked for it.

Start-up, ``import botocore`` and ``import aiobotocore`` must never fail because of this
package (``hook.py``); what failed is kept here instead. Imported only after a failure, so a
process whose activation works never loads it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, Optional


def activation_error(cause: BaseException, requested_by: str, scope: str = "") -> Exception:
    """The error every credential resolution raises after a failed activation: it names the
    variables that asked for it and, in ``scope``, which sessions it concerns if not all."""
    message = (
        f"{requested_by} is set, but assume-provider could not be activated{scope}: "
        f"{type(cause).__name__}: {cause}"
    )
    try:
        from ..errors import ConfigError
    except Exception:  # noqa: BLE001 - errors.py is what failed; fall back to botocore's base
        from botocore.exceptions import BotoCoreError

        class ConfigError(BotoCoreError):  # type: ignore[no-redef, misc]
            fmt = "{message}"

    error: Exception = ConfigError(message)
    error.__cause__ = cause
    return error


def is_aio_session(session: Any) -> bool:
    """An aiobotocore session (the async layer, which knows this too, is what failed)."""
    module = sys.modules.get("aiobotocore.session")
    session_class = getattr(module, "AioSession", None)
    return session_class is not None and isinstance(session, session_class)


def defer(
    botocore: Optional[ModuleType],
    cause: BaseException,
    requested_by: str,
    only: Optional[Callable[[Any], bool]] = None,
    scope: str = "",
) -> Callable[[Any], None]:
    """Every botocore session (or each one ``only`` accepts) gets a first credential provider
    that raises the failure. Returns the initializer that does it (registered with botocore
    for later sessions).

    The resolver is botocore's, also for an aiobotocore session: its first provider raises
    when called, before anything would be awaited, so aiobotocore's ``await`` of it raises
    the error too.
    """
    import botocore.credentials as credentials

    if botocore is None:  # not known to the caller: the one the application imports
        botocore = sys.modules["botocore"]
    error = activation_error(cause, requested_by, scope)

    class ActivationFailed(credentials.CredentialProvider):  # type: ignore[misc]
        METHOD = "assume-provider"
        CANONICAL_NAME = "custom-assume-provider"

        def load(self) -> None:
            raise error

    def initializer(session: Any) -> None:
        if only is not None and not only(session):
            return

        def build_resolver() -> Any:
            resolver = credentials.create_credential_resolver(session)
            resolver.providers.insert(0, ActivationFailed())
            return resolver

        session.lazy_register_component("credential_provider", build_resolver)

    botocore.register_initializer(initializer)
    return initializer
