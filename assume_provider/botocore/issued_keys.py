"""The access key IDs this package handed to botocore, and the engine each one came from.

A service's ExpiredToken answer is about the key that signed the request (the ``needs-retry``
handler reads it from the signature). If this package issued that key, a retry is signed with
the engine's newest credentials, so the request is retried; if not (a client's own
credentials), the application sees the error. Recording happens when a credentials object
hands botocore a key it has not handed out before: once per refresh, never per request.

Bounded: each credentials object keeps its last ``HISTORY`` keys, and records are held weakly,
so they go with the credentials object. Thread-safe: a record's keys are one immutable tuple,
replaced in one assignment. Fork-safe: the lock is new in a forked child; the keys stay valid
there (the child inherits the engine and its credentials).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Optional

from ..engine.forksafe import ForkSafeLock

if TYPE_CHECKING:
    from ..engine.refresh import RefreshingCredentials

__all__ = ["HISTORY", "IssuedKeys", "engine_of"]

#: Keys remembered per credentials object: the current one, and older ones that requests still
#: in flight at a refresh (or after a few refreshes in quick succession) may have been signed with.
HISTORY = 8

_lock = ForkSafeLock()
_records: weakref.WeakSet[IssuedKeys] = weakref.WeakSet()


class IssuedKeys:
    """The keys one engine's credentials object handed to botocore, newest first."""

    __slots__ = ("__weakref__", "_keys", "engine")

    def __init__(self, engine: RefreshingCredentials) -> None:
        self.engine = engine
        self._keys: tuple[str, ...] = ()
        with _lock:
            _records.add(self)

    def add(self, access_key_id: str) -> None:
        """Remember ``access_key_id`` as the newest key (before anything signs with it)."""
        with _lock:
            if self._keys[:1] == (access_key_id,):
                return
            older = tuple(key for key in self._keys if key != access_key_id)
            self._keys = (access_key_id, *older)[:HISTORY]

    @property
    def keys(self) -> tuple[str, ...]:
        """Newest first; at most ``HISTORY``."""
        return self._keys

    def __contains__(self, access_key_id: object) -> bool:
        return access_key_id in self._keys

    def __repr__(self) -> str:
        """Key IDs are not secrets; the engine's repr holds none either."""
        return f"IssuedKeys(engine={self.engine!r}, keys={self._keys!r})"


def engine_of(access_key_id: str) -> Optional[RefreshingCredentials]:
    """The engine whose credentials object handed out ``access_key_id``, or None (not ours).

    Only called when a service rejected a request, so a scan of the live records (one per
    distinct role chain in the process) is cheap enough; nothing here does I/O.
    """
    with _lock:
        records = list(_records)
    for record in records:
        if access_key_id in record:
            return record.engine
    return None
