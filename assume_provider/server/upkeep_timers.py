"""When the routes' upkeep runs on the server's event loop: the SIGHUP reload and the idle sweep.

What each does to the routes is decided elsewhere (``RouteTable.reload`` and
``RouteTable.sweep_idle``, with ``server/upkeep.py``); this module only says on which thread
and when. The reload is queued from the signal handler, which must take no lock the thread
it interrupted may hold (a callback queued on the loop is a write to its wake-up pipe), and
runs on a worker thread, since it reads the config files. The sweep is a timer on the loop
itself: it does no I/O, and on the loop's thread it never interleaves with a request
marking its route asked (``RouteTable.asked``, also on the loop).
"""

from __future__ import annotations

import asyncio
import logging

from .callers import CallerPolicy
from .routes import RouteTable

logger = logging.getLogger(__name__)

# How often the loop looks for profile routes to stop refreshing (RouteTable.sweep_idle): a
# route is idle after two credential lifetimes, so a minute late is nothing.
IDLE_SWEEP_SECONDS = 60.0


class UpkeepTimers:
    """The reload and the idle sweep of one server's routes, scheduled on its event loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, routes: RouteTable, callers: CallerPolicy
    ) -> None:
        self._loop = loop
        self._routes = routes
        self._callers = callers

    def start(self) -> None:
        """The first idle sweep in ``IDLE_SWEEP_SECONDS`` (on the loop, once it serves)."""
        self._loop.call_later(IDLE_SWEEP_SECONDS, self._sweep_idle)

    def reload_soon(self) -> None:
        """Re-read the config files (``RouteTable.reload``) on a worker thread, soon. Safe in a
        signal handler: it only queues a callback on the loop (a write to its wake-up pipe),
        taking no lock the interrupted thread might hold."""
        try:
            self._loop.call_soon_threadsafe(self._reload)
        except RuntimeError:
            pass  # the loop has closed: the server is stopping

    def reload_config(self) -> str:
        """The routes' settings and their allow lists, both read again from the files: the
        lists are forgotten (each is read at its route's next request) before the new routes
        are in place, and only when they are; a refused reload keeps both, as they were."""
        return self._routes.reload(applying=self._callers.reload)

    def _reload(self) -> None:
        reloading = self._loop.run_in_executor(None, self.reload_config)
        reloading.add_done_callback(_log_failed_reload)

    def _sweep_idle(self) -> None:
        self._loop.call_later(IDLE_SWEEP_SECONDS, self._sweep_idle)  # first: a failed sweep
        self._routes.sweep_idle()  # must not end the sweeping


def _log_failed_reload(reloading: asyncio.Future[str]) -> None:
    exception = None if reloading.cancelled() else reloading.exception()
    if exception is not None:  # reload() logs what it did; anything else must not be silent
        logger.warning("reload failed: %s: %s", type(exception).__name__, exception)
