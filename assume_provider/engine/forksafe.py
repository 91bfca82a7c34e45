"""Locks, and other state, that a forked child gets fresh.

After ``os.fork()`` (gunicorn and uwsgi pre-fork, multiprocessing) the child has only the
forking thread; a lock another thread held at that moment would stay held forever. These
locks are replaced in the child, so module state guarded by them stays usable there, and
objects registered with ``renew_in_child`` get their ``_after_fork_in_child()`` called
(the refresh engine's instances among them). Standard library only, like the rest of the
engine, so the engine can use it and still import nothing else of this package.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType


class ForkSafeLock:
    """A ``threading.Lock`` (or the factory's lock) that is new again in a forked child."""

    def __init__(self, factory: Callable[[], object] = threading.Lock) -> None:
        self._factory = factory
        self._lock = factory()
        renew_in_child(self)

    def __enter__(self) -> bool:
        return bool(self._lock.__enter__())  # type: ignore[attr-defined]

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self._lock.__exit__(exc_type, exc, traceback)  # type: ignore[attr-defined]

    def _after_fork_in_child(self) -> None:
        self._lock = self._factory()


if TYPE_CHECKING:  # a Protocol is for the type checker only (its class costs each process)
    from typing import Protocol

    class _Renewable(Protocol):
        def _after_fork_in_child(self) -> None: ...


_RENEWABLE: weakref.WeakSet[_Renewable] = weakref.WeakSet()


def renew_in_child(obj: _Renewable) -> None:
    """Call ``obj._after_fork_in_child()`` in every forked child while ``obj`` is alive."""
    _RENEWABLE.add(obj)


def _renew_all_in_child() -> None:
    for obj in list(_RENEWABLE):
        obj._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_all_in_child)
