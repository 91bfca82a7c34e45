"""The process-wide cache: sessions with equal settings and source share one credentials object.

Bounded (LRU), so a process that creates sessions with ever-new settings cannot grow without
limit; an evicted object keeps working for the sessions that hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from cachetools import LRUCache

from .forksafe import ForkSafeLock

T = TypeVar("T")

MAX_SHARED_OBJECTS = 128

_lock = ForkSafeLock()
_objects: LRUCache[Hashable, object] = LRUCache(maxsize=MAX_SHARED_OBJECTS)


def shared(key: Hashable, factory: Callable[[], T]) -> T:
    """The object cached under ``key``, made by ``factory`` (which must not do network I/O)."""
    with _lock:
        found = _objects.get(key)
        if found is None:
            found = factory()
            _objects[key] = found
        return found  # type: ignore[return-value]


def clear() -> None:
    """Forget every shared object (for tests)."""
    with _lock:
        _objects.clear()
