"""The guard against credential loops: a chain whose source runs this tool again.

A profile's ``credential_process`` may itself run ``assume-provider``; that is legitimate a
couple of levels deep, but a chain whose source resolves to the same chain is a loop that
would otherwise fork processes until something gives out.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# Recursion guard, set in our own environment before the source is resolved, so that any
# process the source chain starts (a credential_process) inherits it.
DEPTH_VAR = "ASSUME_PROVIDER_DEPTH"
CHAIN_KEYS_VAR = "ASSUME_PROVIDER_CHAIN_KEYS"
# A chain whose source runs the tool again is legitimate at most a couple of levels deep
# (profile A's source is a process that assumes profile B...); beyond this it is a loop.
MAX_DEPTH = 3

class CredentialLoopError(Exception):
    """The source of the chain runs this tool again (exit status 1, one clear line)."""


def check_recursion(key: str, environ: Mapping[str, str]) -> None:
    """Fail fast (exit 1) when this invocation is part of a credential_process loop."""
    depth = _depth(environ)
    ancestors = [item for item in environ.get(CHAIN_KEYS_VAR, "").split(",") if item]
    if key in ancestors:
        raise CredentialLoopError(
            "credential loop: the source credentials of this role chain are provided by a "
            "credential_process that runs assume-provider for the same chain again; set "
            "--source (e.g. instance-metadata, environment or profile:NAME) to a source that "
            "does not run this tool"
        )
    if depth >= MAX_DEPTH:
        raise CredentialLoopError(
            f"credential loop: assume-provider is nested {depth} levels deep inside its own "
            f"source credential processes ({DEPTH_VAR}={depth}); refusing to go deeper. Set "
            "--source to a source that does not run this tool"
        )


def mark_for_children(key: str, environ: os._Environ[str]) -> None:
    """Tell any process the source resolution starts that it runs inside this chain."""
    ancestors = [item for item in environ.get(CHAIN_KEYS_VAR, "").split(",") if item]
    environ[DEPTH_VAR] = str(_depth(environ) + 1)
    environ[CHAIN_KEYS_VAR] = ",".join([*ancestors, key])


def _depth(environ: Mapping[str, str]) -> int:
    try:
        return max(int(environ.get(DEPTH_VAR, "0")), 0)
    except ValueError:
        return 0
