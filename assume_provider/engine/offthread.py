"""The one way to wait for the engine off the calling thread: a single flight per engine.

An event loop (the async view, the host credential server) must never block on STS, so it
runs ``engine.get()`` on a worker thread and awaits a future. Many tasks, loops and threads
may want that at once; they all get the same future, so the source is asked once however
many wait. The future is a ``concurrent.futures.Future``, not an asyncio object: each
waiter wraps it for its own running loop (``asyncio.wrap_future``) when it waits.

The prefetch thread uses the same flights: it keeps its own schedule (when the early window
starts, how long the backoff holds it off) and, when a refresh is due, starts it here with
``refresh_off_thread`` and waits for its future. So a refresh the prefetch thread starts and
a ``get_off_thread`` an async caller or the server starts at that moment are one flight on
one worker, and no front end has its own thread-and-future code.

The worker collects the refresh events its attempt emits and hands them to listeners only
after the future has its result, so no waiter waits for a listener. A forked child forgets
the parent's flights (their workers do not exist there); its first caller starts a new one.
Standard library only, like the rest of the engine.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

from .events import deferred
from .forksafe import ForkSafeLock, renew_in_child
from .model import TemporaryCredentials

__all__ = ["Flown", "get_off_thread", "refresh_off_thread"]


class Flown(Protocol):
    """The engine (``refresh.RefreshingCredentials``) as the flights see it; a protocol, so
    that this module and the engine, which starts prefetch flights here, import no circle."""

    def get(self) -> TemporaryCredentials:
        """Usable credentials, refreshing (or waiting for the refresh) when due."""

    def _refresh_due(self) -> TemporaryCredentials:
        """The prefetch thread's refresh: ask the source now, unless no longer due."""


class _Flights:
    """The flight in progress per engine; forgotten whole in a forked child."""

    def __init__(self) -> None:
        self.lock = ForkSafeLock()
        self.by_engine: weakref.WeakKeyDictionary[
            Flown, concurrent.futures.Future[TemporaryCredentials]
        ] = weakref.WeakKeyDictionary()
        renew_in_child(self)

    def _after_fork_in_child(self) -> None:
        self.by_engine = weakref.WeakKeyDictionary()  # their workers do not exist here


_flights = _Flights()


def get_off_thread(engine: Flown) -> concurrent.futures.Future[TemporaryCredentials]:
    """engine.get() on a worker (daemon) thread; while one is in flight for that engine, every
    caller gets the same future (single flight per engine); a forked child forgets the
    parent's flights."""
    return _fly(engine, engine.get)


def refresh_off_thread(engine: Flown) -> concurrent.futures.Future[TemporaryCredentials]:
    """The prefetch thread's refresh as a flight of the engine (joining one in progress)."""
    return _fly(engine, engine._refresh_due)


def _fly(
    engine: Flown, work: Callable[[], TemporaryCredentials]
) -> concurrent.futures.Future[TemporaryCredentials]:
    """The flight in progress for ``engine``, or a new one running ``work`` on a worker."""
    with _flights.lock:
        flight = _flights.by_engine.get(engine)
        if flight is None:
            flight = concurrent.futures.Future()
            # Running: one waiter's cancellation must not cancel the others' result.
            flight.set_running_or_notify_cancel()
            _flights.by_engine[engine] = flight
            # In the starter's context, as asyncio.to_thread does: an attempt a refresh
            # listener's coroutine started is known as the listener's (``events.py``).
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(_work, weakref.ref(engine), work, flight),
                name="assume-provider-refresh",
                daemon=True,
            ).start()
    return flight


def _work(
    ref: weakref.ref[Flown],
    work: Callable[[], TemporaryCredentials],
    flight: concurrent.futures.Future[TemporaryCredentials],
) -> None:
    """Run ``work``, end the flight, then deliver the attempt's events (after the result)."""
    with deferred():  # listeners run when this block ends: after every waiter has the result
        try:
            result = work()
        except BaseException as exc:  # noqa: BLE001 - every waiter gets what work() raised
            _land(ref, flight)
            flight.set_exception(exc)
        else:
            _land(ref, flight)
            flight.set_result(result)


def _land(
    ref: weakref.ref[Flown], flight: concurrent.futures.Future[TemporaryCredentials]
) -> None:
    """Forget the flight before its result is set, so a caller who sees the result and asks
    again starts a new flight rather than getting this finished one."""
    engine = ref()
    with _flights.lock:
        if engine is not None and _flights.by_engine.get(engine) is flight:
            del _flights.by_engine[engine]
