"""Refresh events: one per refresh attempt, for listeners and as log records.

A front end that must report on refreshes (the host credential server's log lines and
``/healthz``, a user's metrics) subscribes here instead of parsing log text. Events carry
the access key ID and the expiry, never a secret: the engine builds them from its own
values, so a listener cannot leak what it was never given. Standard library only.

When listeners run: on the thread that made the attempt, after the engine has released its
locks and published the outcome (the engine and the off-thread flights emit inside
``deferred()``, which holds the events until the block ends). So a listener may use any AWS
client of the process, including one whose credentials come from the very engine that
emitted the event, and never deadlocks; callers waiting for that refresh already have its
result when the listener starts (a flight sets its future first), so a slow listener delays
only the thread that made the attempt. A thread was chosen over a dedicated listener thread
so that an event is delivered by the time the attempt's ``get()`` returns (the server's
``/healthz`` and tests read it then), and no queue can grow behind a slow listener.

No recursion: an attempt made for a running listener (the listener's own AWS call needed a
refresh, and it failed again, say) is logged as usual but not handed to listeners, so a
listener that reports failures through AWS cannot trigger itself without end. "For a
listener" follows the listener's context (``contextvars``): its own thread, a coroutine it
hands to an event loop, and the off-thread flight such a coroutine starts. An attempt of
other work (a prefetch, another caller's flight, a plain thread the listener starts, which
Python gives a fresh context) is delivered as always.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Optional

from .records import frozen

__all__ = [
    "FAILED",
    "REFRESHED",
    "SERVED_STALE",
    "RefreshEvent",
    "add_refresh_listener",
    "deferred",
    "emit",
    "error_code_of",
    "remove_refresh_listener",
]

#: The logger whose records are the events (fields as record attributes).
logger = logging.getLogger("assume_provider.refresh")

REFRESHED = "refreshed"  # new credentials were fetched and published
FAILED = "failed"  # the attempt failed and the caller got the error (nothing usable cached)
SERVED_STALE = "served_stale"  # the attempt failed and the cached credentials were served


@frozen
class RefreshEvent:
    """What one refresh attempt did; safe to log whole (no secret, no session token)."""

    kind: str
    role_arns: tuple[str, ...]
    access_key_id: Optional[str]  # the new key (refreshed) or the one still served
    expiration: Optional[float]  # POSIX seconds of that key's expiry
    elapsed_seconds: float  # how long the attempt took
    error_code: Optional[str]  # the AWS error code (or the error's type) of a failed attempt
    error_message: Optional[str]  # one line naming hop, role and cause (the package's own text)
    name: str  # the engine's name, as in its log records
    credentials_id: int  # id() of the engine, so a front end can tell equal chains apart

    def fields(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "role_arns": self.role_arns,
            "access_key_id": self.access_key_id,
            "expiration": self.expiration,
            "elapsed_seconds": self.elapsed_seconds,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "credentials_name": self.name,
            "credentials_id": self.credentials_id,
        }


if TYPE_CHECKING:  # a type for the checker; at run time it would cost a generic alias
    from collections.abc import Callable, Iterator
    RefreshListener = Callable[[RefreshEvent], object]

_listeners: tuple[RefreshListener, ...] = ()  # replaced whole, so emit() reads it without a lock
_listeners_lock = threading.Lock()


def add_refresh_listener(callback: RefreshListener) -> None:
    """Call ``callback(event)`` after every refresh attempt in this process (once per callback)."""
    global _listeners
    with _listeners_lock:
        if callback not in _listeners:
            _listeners = (*_listeners, callback)


def remove_refresh_listener(callback: RefreshListener) -> None:
    """Stop calling ``callback``; removing one that was never added does nothing."""
    global _listeners
    with _listeners_lock:
        _listeners = tuple(c for c in _listeners if c != callback)


def error_code_of(exc: BaseException) -> str:
    """STS's error code when the error carries one, else the error's type name."""
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) and code else type(exc).__name__


class _ThreadState(threading.local):
    """Per thread: the events held by ``deferred()``."""

    held: Optional[list[RefreshEvent]] = None


_thread = _ThreadState()

# Whether a listener is running: a context variable rather than a thread's, so that it
# follows the listener's work where the context goes: into a coroutine the listener hands to
# an event loop (``run_coroutine_threadsafe`` and ``call_soon_threadsafe`` carry the caller's
# context), and from there into the off-thread flight that coroutine starts (``offthread.py``
# runs its worker in the starter's context). So an async application's listener that reports
# a failure through an aiobotocore client of the same engine cannot trigger itself either.
_in_listener: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "assume_provider_in_refresh_listener", default=False
)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold the events emitted on this thread inside the block; deliver them as it ends.

    The engine wraps each attempt's locked section in it, so listeners run once the locks
    are released. Nested blocks deliver at the end of the outermost one.
    """
    if _thread.held is not None:
        yield
        return
    held: list[RefreshEvent] = []
    _thread.held = held
    try:
        yield
    finally:
        _thread.held = None
        for event in held:
            _deliver(event)


def emit(event: RefreshEvent) -> None:
    """Deliver the event now, or when the enclosing ``deferred()`` block ends."""
    held = _thread.held
    if held is not None:
        held.append(event)
    else:
        _deliver(event)


def _deliver(event: RefreshEvent) -> None:
    """Log the event and hand it to every listener; a listener that raises is logged, not felt."""
    # INFO for every kind: the engine already warns about a failure in its own words, and
    # these records are the structured form of the same facts, not a second warning.
    level = logging.INFO
    by_listener = _in_listener.get()
    if logger.isEnabledFor(level):
        if event.kind == REFRESHED:
            took = f"{event.elapsed_seconds:.3f} s"
            text = f"{event.name}: refreshed, {event.access_key_id} in {took}"
        else:
            text = f"{event.name}: {event.kind}: {event.error_code}: {event.error_message}"
        if by_listener:
            text += " (an attempt made by a refresh listener: not handed to listeners)"
        logger.log(level, "%s", text, extra=event.fields())
    if by_listener:
        return  # a listener's own AWS call made this attempt: no recursion, no loop
    token = _in_listener.set(True)
    try:
        for callback in _listeners:
            try:
                callback(event)
            except Exception:
                logger.exception("refresh listener %r raised", callback)
    finally:
        _in_listener.reset(token)
