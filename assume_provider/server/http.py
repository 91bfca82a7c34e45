"""The transport: the listening socket, the connections and the event loop (standard library).

Why asyncio and not ``http.server.ThreadingHTTPServer``, measured side by side under the
same 32-client load (``benchmarks/server_http_choice.py``, docs/server.md): the threading
server starts a thread per connection and hands the GIL between them, which cost it about
half the throughput and a higher p99 latency. Here one thread answers every request that
can be answered from the cache (a clock compare, a JSON dump); the loop itself never waits
on STS or the disk (``server/answers.py`` says what runs off it).

This module only moves bytes and keeps connections in bounds: a request head must arrive
within the idle timeout and fit in ``MAX_HEAD_BYTES``, the number of open connections is
capped and the loop's own errors said once a minute (``server/limits.py``), and a request
the parser refuses is answered and its connection closed. What a request means is
``server/protocol.py``'s business; what it is answered, ``server/answers.py``'s; the loop's
reload and idle sweep, ``server/upkeep_timers.py``'s. Every deadline here is on the loop's
clock, which is monotonic: a wall clock stepped by NTP moves none of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Awaitable
from http import HTTPStatus
from typing import Optional, TypeVar

from .answers import Answers
from .callers import CallerPolicy
from .limits import connection_limit, quiet_loop_errors
from .metrics import BAD_REQUEST, CONNECTION_LIMIT
from .protocol import MAX_HEAD_BYTES, BadRequest, parse_head, response, status_body
from .routes import RouteTable
from .systemd import listening_socket
from .token import TokenSource
from .upkeep_timers import UpkeepTimers

logger = logging.getLogger(__name__)
T = TypeVar("T")

# A connection that sends nothing for this long is closed, and a request head must arrive
# within it: an SDK asks about once per credential lifetime, so idle keep-alive connections
# and half-sent requests (any local process can open them) must not pile up.
IDLE_TIMEOUT_SECONDS = 10.0
# How long a request with nothing valid to serve waits for the route's refresh before it is
# answered 503 (the refresh goes on): below botocore's 2 s container timeout, so a client
# hears why (STS slow or throttling) instead of timing out, and retries into the same refresh.
MAX_WAIT_SECONDS = 1.5
# Stopping, how long a request on its way may take to be answered, so that a restart under
# socket activation refuses none: above MAX_WAIT_SECONDS, well below the 5 s to exit.
DRAIN_SECONDS = 2.0
ACCEPT_TURNS = 5  # loop turns from asyncio's accept() to the connection's own task: 3


def url_host(host: str) -> str:
    """``host`` as it appears in a URL and a ``Host`` header (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host


class Connection:
    """One client connection: its task, and since when it has been waiting on its client (for
    a request, or to read an answer); None while a request is being answered."""

    def __init__(self, task: asyncio.Task[None], now: float) -> None:
        self.task = task
        self.waiting_since: Optional[float] = now
        self.answered = 0  # requests answered on it: >0 and waiting means idle keep-alive


class CredentialHTTPServer:
    """Bound to one loopback address at construction (or given a listening socket: ``sock``,
    handed over by systemd); knows its token and its routes.

    ``serve_forever()`` runs the event loop in the calling thread until ``shutdown()`` (from
    another thread) or ``stop_soon()`` (on the loop); ``server_close()`` releases the socket.
    """

    def __init__(
        self,
        host: str,
        port: int,
        token: str | TokenSource,
        routes: RouteTable,
        *,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        max_wait: float = MAX_WAIT_SECONDS,
        max_connections: Optional[int] = None,
        callers: Optional[CallerPolicy] = None,
        sock: Optional[socket.socket] = None,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections or connection_limit()
        # Handed over already listening (systemd.check_loopback_listener), or our own.
        self._socket = sock if sock is not None else listening_socket(host, port)
        self._socket.setblocking(False)
        host = str(self._socket.getsockname()[0]) if sock is not None else host
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        own_hosts = frozenset({f"{url_host(host)}:{self.port}".lower()})
        if callers is None:  # nothing on /; a profile route's lists as its profile says
            callers = CallerPolicy.start(host, None, os.environ)
        self.answers = Answers(token, own_hosts, routes, max_wait=max_wait, callers=callers)
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(quiet_loop_errors)
        self.upkeep = UpkeepTimers(self._loop, routes, callers)  # the reload, the idle sweep
        self._connections: dict[asyncio.Task[None], Connection] = {}
        self._draining = False
        self._stop: Optional[asyncio.Event] = None
        self._entered = threading.Event()  # serve_forever() called
        self._stopping = threading.Event()  # shutdown() called
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}/"

    @property
    def token(self) -> bytes:
        return self.answers.token

    @property
    def routes(self) -> RouteTable:
        return self.answers.routes

    @property
    def max_wait(self) -> float:
        """How long a request with nothing valid to serve waits for the refresh."""
        return self.answers.max_wait

    @max_wait.setter
    def max_wait(self, seconds: float) -> None:
        self.answers.max_wait = seconds

    @property
    def loop(self) -> asyncio.AbstractEventLoop:  # for callbacks of the caller's own
        return self._loop

    # -- lifetime ------------------------------------------------------------------------

    def serve_forever(self) -> None:
        self._entered.set()
        try:
            if not self._stopping.is_set():
                self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()
            self._stopped.set()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving (from another thread, at any moment, even before ``serve_forever()``
        has started the loop); returns once the loop has stopped."""
        self._stopping.set()
        try:
            self._loop.call_soon_threadsafe(self._request_stop)
        except RuntimeError:
            pass  # the loop has closed already
        if self._entered.is_set():
            self._stopped.wait(timeout)

    def stop_soon(self) -> None:
        """``shutdown()`` on the loop's own thread, which cannot wait for itself."""
        self._stopping.set()
        self._request_stop()

    def server_close(self) -> None:
        self._socket.close()
        self.answers.callers.close()
        if not self._entered.is_set():
            self._loop.close()  # otherwise serve_forever() closes it when it returns

    def reload_soon(self) -> None:
        """SIGHUP's reload (``UpkeepTimers.reload_soon``: safe in a signal handler)."""
        self.upkeep.reload_soon()

    def _request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        if self._stopping.is_set():  # shutdown() came before this loop ran
            return
        server = await asyncio.start_server(self._accepted, sock=self._socket, limit=MAX_HEAD_BYTES)
        self.upkeep.start()
        try:
            if not self._stopping.is_set():
                await self._stop.wait()
        finally:
            # Accept no more (the queue waits for the next start); let the accepted reach
            # _accepted first: asyncio drops one not yet attached when its Server closes.
            self._loop.remove_reader(self._socket.fileno())
            for _ in range(ACCEPT_TURNS):
                await asyncio.sleep(0)
            server.close()
            await self._drain()

    async def _drain(self) -> None:
        """Close idle keep-alive connections; the rest once answered, or at DRAIN_SECONDS."""
        self._draining = True
        for connection in self._connections.values():
            if connection.answered and connection.waiting_since is not None:
                connection.task.cancel()
        tasks = list(self._connections)
        if tasks:
            for task in (await asyncio.wait(tasks, timeout=DRAIN_SECONDS))[1]:
                task.cancel()  # late
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_connections and not self._make_room():
            writer.close()  # every connection is being answered: this one must come back
            self.routes.metrics.count_refusal(CONNECTION_LIMIT)
            return
        connection = self._connections[task] = Connection(task, self._loop.time())
        try:
            await self._converse(reader, writer, connection)
        except asyncio.CancelledError:
            pass  # the server is stopping, or the connection made room for another
        finally:
            del self._connections[task]

    def _make_room(self) -> bool:
        """Close the connection that has waited longest on its client; False if none waits."""
        waiting = [c for c in self._connections.values() if c.waiting_since is not None]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.waiting_since or 0.0)
        oldest.waiting_since = None  # not chosen twice
        oldest.task.cancel()
        return True

    # -- one connection ------------------------------------------------------------------

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: Connection
    ) -> None:
        """Requests on one connection, one after another, until it closes or idles."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Who owns the client's socket: asked of the kernel once per connection at most (its
        # owner cannot change), and only if a route with an allow list needs to know.
        caller = self.answers.callers.caller(
            writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        )
        try:
            keep_alive = True
            while keep_alive:
                try:
                    head = await self._within_idle_timeout(writer, reader.readuntil(b"\r\n\r\n"))
                    request = parse_head(head)
                except asyncio.LimitOverrunError:
                    too_large = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
                    await self._refuse(writer, BadRequest(too_large, "request head too large"))
                    return
                except BadRequest as exc:
                    await self._refuse(writer, exc)
                    return
                except asyncio.IncompleteReadError:
                    return  # closed by the client, or for the idle timeout
                keep_alive = request.keep_alive and not self._draining
                connection.waiting_since = None  # being answered: never closed to make room
                status, body, extra = await self.answers.answer(request, caller)
                # A client that does not read its answers can be closed to make room again.
                connection.waiting_since = self._loop.time()
                connection.answered += 1
                await self._send(writer, response(status, body, keep_alive=keep_alive, extra=extra))
                if keep_alive:
                    # Let the other connections in before this one's next request: reading a
                    # request already buffered does not yield, so a client that pipelines
                    # requests would otherwise hold the loop for all of them.
                    await asyncio.sleep(0)
        except ConnectionError:
            pass  # the client went away: nothing to tell anyone
        except Exception:
            logger.debug("connection failed", exc_info=True)  # must not stop the server
        finally:
            writer.close()

    async def _within_idle_timeout(self, writer: asyncio.StreamWriter, waiting: Awaitable[T]) -> T:
        """``waiting``, with the connection aborted if it takes longer than the idle timeout
        (the read or drain then ends with the connection closed). A timer, not wait_for():
        that costs a task per call on Python 3.10 and 3.11, on every request."""
        timer = self._loop.call_later(self.idle_timeout, writer.transport.abort)
        try:
            return await waiting
        finally:
            timer.cancel()

    async def _refuse(self, writer: asyncio.StreamWriter, exc: BadRequest) -> None:
        self.routes.metrics.count_refusal(BAD_REQUEST)
        answer = status_body(exc.status, str(exc))
        await self._send(writer, response(exc.status, answer, keep_alive=False))

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        if writer.transport.get_write_buffer_size():  # not all sent at once: a slow reader
            await self._within_idle_timeout(writer, writer.drain())
