"""The credential resolver of a session set up by ``install()`` or ``register()``: this
package's provider first, botocore's own chain behind it built only when something needs it.

botocore builds a session's whole chain (about ten providers, two of them with HTTP pools
of their own, the profile's role settings read and checked) when the session first resolves
credentials. Behind this package's provider that chain only answers when the provider does
not (``uninstall()`` switched it off), yet building it cost a short-lived process 11.6 M
instructions, about 1% of everything the process does (``benchmarks/short_lived_cost.py``;
docs/performance.md). So the chain is built at the first moment it is needed: a load the
provider did not answer, or anything that reads ``providers`` (botocore's own
``insert_before``/``get_provider``/``remove``, and applications that reach into the chain,
e.g. to give botocore's assume-role provider a cache, all do), and from then on it is exactly
botocore's chain with the provider first, as before.

The chain is built as botocore would have built it at the first resolution: with the region
of the last client created before it (captured then, by the caller).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Optional

import botocore.credentials

from ..engine.forksafe import ForkSafeLock

# botocore's logger and message, so that a debug log reads as it does without this package.
_botocore_logger = logging.getLogger(botocore.credentials.__name__)


class ProviderFirstResolver(botocore.credentials.CredentialResolver):  # type: ignore[misc]
    """``first``, then the providers ``build_chain()`` returns (botocore's chain), built when
    first needed (see the module). ``first`` is put in front of them unless the chain holds a
    provider of its method already."""

    def __init__(self, first: Any, build_chain: Callable[[], Any]) -> None:
        # Not botocore's __init__: it only assigns ``providers``, which is built later here.
        self._first = first
        self._build_chain: Optional[Callable[[], Any]] = build_chain
        self._chain: Optional[list[Any]] = None
        self._building = ForkSafeLock(threading.RLock)

    @property
    def providers(self) -> list[Any]:
        chain = self._chain
        if chain is None:
            with self._building:
                if self._chain is None:
                    self._chain = self._built()
                chain = self._chain
        return chain

    @providers.setter
    def providers(self, providers: list[Any]) -> None:
        self._chain = providers

    def _built(self) -> list[Any]:
        assert self._build_chain is not None  # only dropped once the chain is built
        resolved = self._build_chain()
        providers: list[Any] = list(resolved.providers)
        if all(existing.METHOD != self._first.METHOD for existing in providers):
            providers.insert(0, self._first)
        self._build_chain = None  # what it holds (the session) is not needed any more
        return providers

    def load_credentials(self) -> Any:
        if self._chain is not None:
            return super().load_credentials()
        _botocore_logger.debug("Looking for credentials via: %s", self._first.METHOD)
        credentials = self._first.load()
        if credentials is not None:
            return credentials
        for provider in self.providers:  # the provider had nothing: botocore's chain then
            if provider is self._first:
                continue
            _botocore_logger.debug("Looking for credentials via: %s", provider.METHOD)
            credentials = provider.load()
            if credentials is not None:
                return credentials
        return None
