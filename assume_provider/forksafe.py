"""Locks that a forked child gets fresh.

After ``os.fork()`` (gunicorn and uwsgi pre-fork, multiprocessing) the child has only the
forking thread; a lock another thread held at that moment would stay held forever. These
locks are replaced in the child, so module state guarded by them stays usable there.
"""

from __future__ import annotations

import os
import threading
import weakref
from types import TracebackType
from typing import Callable, Optional


class ForkSafeLock:
    """A ``threading.Lock`` (or the factory's lock) that is new again in a forked child."""

    def __init__(self, factory: Callable[[], object] = threading.Lock) -> None:
        self._factory = factory
        self._lock = factory()
        _LOCKS.add(self)

    def __enter__(self) -> bool:
        return bool(self._lock.__enter__())  # type: ignore[attr-defined]

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self._lock.__exit__(exc_type, exc, traceback)  # type: ignore[attr-defined]

    def _renew(self) -> None:
        self._lock = self._factory()


_LOCKS: weakref.WeakSet[ForkSafeLock] = weakref.WeakSet()


def _renew_all_in_child() -> None:
    for lock in list(_LOCKS):
        lock._renew()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_all_in_child)
