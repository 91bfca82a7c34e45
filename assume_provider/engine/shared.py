"""The process-wide cache: sessions with equal settings and source share one credentials object.

Bounded (least recently used out first), so a process that creates sessions with ever-new
settings cannot grow without limit; an evicted object keeps working for the sessions that
hold it. An ``OrderedDict`` under the module's lock is all the bounding needs (importing a
cache library for it cost a short-lived process more than the rest of this module's import:
``docs/performance.md``, "Short-lived processes").
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from .forksafe import ForkSafeLock

# Names for the type checker only (``TypeVar`` is made in Python code at run time).
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from typing import TypeVar

    T = TypeVar("T")

MAX_SHARED_OBJECTS = 128

_lock = ForkSafeLock()
# Oldest use first: a hit moves its key to the end, an overflow drops the first.
_objects: OrderedDict[Hashable, object] = OrderedDict()


def shared(key: Hashable, factory: Callable[[], T]) -> T:
    """The object cached under ``key``, made by ``factory`` (which must not do network I/O)."""
    with _lock:
        found = _objects.get(key)
        if found is None:
            found = factory()
            _objects[key] = found
            if len(_objects) > MAX_SHARED_OBJECTS:
                _objects.popitem(last=False)
        else:
            _objects.move_to_end(key)
        return found  # type: ignore[return-value]


def clear() -> None:
    """Forget every shared object (for tests)."""
    with _lock:
        _objects.clear()
