"""``serve``'s life once it listens: the event loop in the main thread, the signals that stop
it, the first fetch, and what systemd hears (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``).

The signal path cannot hang. One Python handler serves the whole life of the process, and it
takes no lock: during start-up it raises ``StopRequested`` (as SIGINT raises
KeyboardInterrupt), which unwinds whatever the main thread is doing; once the loop is about
to run, it only queues the stop on the loop (``call_soon_threadsafe``: a deque append and a
byte on the loop's self-pipe, no lock). The previous design set a ``threading.Event`` from
the handler while the main thread could be inside that Event's ``wait()``, whose Condition
lock is not reentrant: the handler then waited for a lock its own thread held, for ever.
``signal.set_wakeup_fd`` wakes the loop's selector whichever thread the kernel delivers the
signal to (only the main thread runs Python handlers, and it may be asleep in ``epoll``).
Only the first SIGTERM or SIGINT counts; later ones are ignored while the server stops.

Everything sent to systemd is sent from the loop's thread: ``WATCHDOG=1`` is a timer on the
loop, so a loop that stops answering stops the pings, and systemd restarts the server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Optional

from .http import CredentialHTTPServer
from .route import Route
from .routes import RouteTable
from .systemd import Notifier

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(BaseException):
    """SIGTERM or SIGINT during start-up: unwind and exit 0 (a BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` on the way turns it into a failure)."""


class StopSignals:
    """The process's SIGTERM and SIGINT handler, from the first line of ``serve`` to exit."""

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Callable[[], None] = lambda: None
        self._wakeup: Optional[tuple[socket.socket, socket.socket]] = None

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.received is not None:
            return  # stopping already
        self.received = signum
        loop = self._loop
        if loop is None:
            raise StopRequested(signum)
        try:
            loop.call_soon_threadsafe(self._stop)
        except RuntimeError:
            pass  # the loop has closed: the server is past stopping

    def hand_to(self, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
        """From now on a signal runs ``stop`` on ``loop`` (main thread, before the loop
        runs). A signal before this line raised StopRequested; one after it is queued."""
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        loop.add_reader(reader.fileno(), _drain, reader)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._wakeup = reader, writer
        self._stop = stop
        self._loop = loop  # last: the switch from raising to queueing is this one assignment
        if self.received is not None:
            # A signal came during start-up and its StopRequested never reached run(): code
            # on the way swallowed it (seen on Python 3.10, about 1 start in 50). Stop now,
            # or the server would serve on, deaf to SIGTERM (only the first one counts).
            loop.call_soon(stop)

    def release(self) -> None:
        """After the loop has closed: no wakeup descriptor any more (signals are ignored)."""
        self.received = self.received or signal.SIGTERM  # any further signal: nothing to do
        if self._wakeup is not None:
            signal.set_wakeup_fd(-1)
            for end in self._wakeup:
                end.close()
            self._wakeup = None


def _drain(reader: socket.socket) -> None:
    try:
        while reader.recv(512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


class Lifecycle:
    """One server's run: start the first fetch, serve until a stop signal, then stop."""

    def __init__(
        self,
        server: CredentialHTTPServer,
        routes: RouteTable,
        notifier: Notifier,
        signals: StopSignals,
    ) -> None:
        self.server = server
        self.routes = routes
        self.notifier = notifier
        self.signals = signals
        self.stopping = False
        self._watchdog: Optional[asyncio.TimerHandle] = None

    def serve(self) -> None:
        """Serve in this (the main) thread until SIGTERM or SIGINT; READY=1 once the first
        fetch of ``/`` has finished, WATCHDOG=1 while the loop runs."""
        loop = self.server.loop
        warm_up = threading.Thread(
            target=_warm_up,
            args=(self.routes.lookup("/"), lambda: _call_soon(loop, self._ready)),
            name="assume-provider-warm-up",
            daemon=True,
        )
        warm_up.start()
        interval = self.notifier.watchdog_interval
        if interval is not None:
            loop.call_soon(self._watchdog_tick, interval)
        self.signals.hand_to(loop, self.stop)
        try:
            self.server.serve_forever()
        finally:
            self.signals.release()
            self.say_stopping()

    def stop(self) -> None:
        """On the loop: stop serving (the connections are closed, the loop returns)."""
        self.say_stopping()
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.server.stop_soon()

    def say_stopping(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.notifier.notify_once("STOPPING=1")

    def _ready(self) -> None:
        if not self.stopping:
            self.notifier.notify_once("READY=1")

    def _watchdog_tick(self, interval: float) -> None:
        if self.stopping:
            return
        self.notifier.notify("WATCHDOG=1")
        self._watchdog = self.server.loop.call_later(interval, self._watchdog_tick, interval)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        pass  # the loop has closed: the server stopped before the fetch ended


def _warm_up(route: Route, done: Callable[[], None]) -> None:
    """Fetch ``/`` once, so the first client does not wait, by joining the route's flight on
    the engine's worker (the one every request and the prefetch thread share); then move
    everything loaded so far out of the garbage collector's sight; then ``done()``, whether
    the fetch succeeded or failed (its refresh event has said which)."""
    try:
        route.refresh().result()
    except Exception as exc:  # noqa: BLE001 - the refresh event has said what failed
        logger.debug("warm-up of / failed: %s", exc)
    # botocore's models and clients are hundreds of thousands of objects that live as long as
    # the process: a full collection walking them held every request for 20-70 ms, a few
    # times a minute under load (measured with benchmarks/server_load.py). Frozen, they are
    # never walked again; what requests allocate is collected as usual.
    gc.collect()
    gc.freeze()
    logger.debug("warm-up of / finished")
    done()


def print_variables(url: str, token_file: str) -> None:
    """The two lines a client needs, once listening, flushed at once."""
    sys.stdout.write(
        f"AWS_CONTAINER_CREDENTIALS_FULL_URI={url}\n"
        f"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={token_file}\n"
    )
    sys.stdout.flush()
