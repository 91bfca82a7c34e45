"""How many connections the server holds open: the open-file limit and the cap under it.

Any local process can open connections without the token, so the number the server keeps
open is capped (``MAX_CONNECTIONS``) and kept below the open-file limit, leaving room for
what a refresh needs (``FILES_KEPT_FREE``): accepting one connection too many must never
make an STS call or a config read fail with "too many open files". A flood's log lines are
limited too (``OncePerInterval``; the event loop's exception handler, ``quiet_loop_errors``,
says through it what the loop cannot hand to a connection): one a minute per kind, in
bounded memory.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger(__name__)

# Open connections at most (also kept below the open-file limit): at the cap the one waiting
# longest on its client (for a request, or to read an answer) is closed to make room; one
# being answered never is (the transport, server/http.py, does the closing).
MAX_CONNECTIONS = 1024
FILES_KEPT_FREE = 64  # for STS and IMDS connections, the token and config files, logging
MIN_CONNECTIONS = 16  # even under a tiny open-file limit, a few clients get in
UNLIMITED_SOFT_LIMIT = 65536  # what "raise to the hard limit" means when that is unlimited


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit (a long-lived server may hold many
    connections; the default soft limit is often 1024); the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else UNLIMITED_SOFT_LIMIT
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            return soft
    return soft if soft != resource.RLIM_INFINITY else target


def connection_limit() -> int:
    """``MAX_CONNECTIONS``, kept ``FILES_KEPT_FREE`` below the open-file limit in force."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, soft - FILES_KEPT_FREE))


class OncePerInterval:
    """Whether a log line of some kind may be said now: once per ``interval`` per kind, with
    at most ``max_kinds`` kinds remembered (the least recently said forgotten first). A kind
    is what a line is about, not its text, and the memory is bounded either way: a flood of
    distinct errors (each naming its connection) must not grow the server's memory."""

    def __init__(
        self,
        interval: float = 60.0,
        max_kinds: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.max_kinds = max_kinds
        self._clock = clock
        self._said: OrderedDict[Hashable, float] = OrderedDict()

    def __call__(self, kind: Hashable) -> bool:
        now = self._clock()
        last = self._said.get(kind)
        if last is not None and now - last < self.interval:
            return False
        self._said[kind] = now
        self._said.move_to_end(kind)
        while len(self._said) > self.max_kinds:
            self._said.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._said)


def quiet_loop_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's exception handler: one line, no traceback, for what the loop cannot
    hand to a connection (e.g. accept() failing with too many open files while a local
    process floods the server): stderr is for refreshes and failures, and a flood must not
    flood it."""
    exception = context.get("exception")
    detail = f": {type(exception).__name__}: {exception}" if exception is not None else ""
    message = context.get("message", "event loop error")
    # The kind, not the text: the text may name a connection, and a flood has many.
    if _once_a_minute((message, type(exception).__name__)):
        logger.warning("%s%s", message, detail)


_once_a_minute = OncePerInterval(60.0)
