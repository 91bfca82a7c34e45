"""assume-provider: chained IAM AssumeRole credentials for every boto3/botocore session.

Names are imported lazily so that ``import assume_provider`` (done by the zero-code start-up
hook and the CLI) never imports botocore until a name that needs it is used.
"""

from __future__ import annotations

# Not `from typing import ...`: the zero-code start-up hook imports this package at interpreter
# start, where loading typing would cost ~1.5 ms. mypy treats this name like typing's.
TYPE_CHECKING = False

__version__ = "0.1.0"

__all__ = [
    "AssumeRoleChainProvider",
    "ConfigError",
    "add_refresh_listener",
    "install",
    "register",
    "remove_refresh_listener",
    "uninstall",
]

_LAZY = {
    "AssumeRoleChainProvider": "botocore.provider",
    "ConfigError": "errors",
    "add_refresh_listener": "engine.events",
    "remove_refresh_listener": "engine.events",
    # Through aio/: the same functions, with aiobotocore sessions covered too.
    "install": "aio.registration",
    "register": "aio.registration",
    "uninstall": "aio.registration",
}

if TYPE_CHECKING:
    from typing import Any

    from .aio.registration import install, register, uninstall
    from .botocore.provider import AssumeRoleChainProvider
    from .engine.events import add_refresh_listener, remove_refresh_listener
    from .errors import ConfigError


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'assume_provider' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
