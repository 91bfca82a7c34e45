"""The listening socket and the HTTP exchange: one asyncio event loop (standard library).

Why asyncio and not ``http.server.ThreadingHTTPServer``, measured side by side under the
same 32-client load (``benchmarks/server_http_choice.py``, docs/server.md): the threading
server starts a thread per connection and hands the GIL between them, which cost it about
half the throughput and a higher p99 latency. Here one thread answers
every request that can be answered from the cache (a clock compare, a JSON dump), and only
what must wait runs in a worker thread: a request with nothing to serve waiting for the
route's refresh, and the first request of a new ``/profile/NAME`` route (it reads the config
files). The loop itself never waits on STS or the disk.

The parsing is deliberately narrow and strict (``parse_head``): a request head of at most
``MAX_HEAD_BYTES`` ending in an empty line, read within the idle timeout; a request line of
three words and HTTP/1.0 or 1.1; header lines with token names and no CR, LF or NUL inside.
A request with a body gets its answer and the connection is closed (nothing here reads
bodies, so none can be taken for the next request).
"""

from __future__ import annotations

import asyncio
import email.utils
import hmac
import ipaddress
import json
import logging
import resource
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Optional, TypeVar
from urllib.parse import unquote, urlsplit

from ..engine.model import TemporaryCredentials, utc_text
from ..errors import AssumeRoleError, ConfigError
from ..redaction import redact_text
from .routes import RefreshInProgress, Route, RouteTable, UnknownRoute

logger = logging.getLogger(__name__)
T = TypeVar("T")

LISTEN_BACKLOG = 256  # many processes starting together must not find the queue full
# A connection that sends nothing for this long is closed, and a request head must arrive
# within it: an SDK asks about once per credential lifetime, so idle keep-alive connections
# and half-sent requests (any local process can open them) must not pile up.
IDLE_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 16 * 1024  # an SDK's request head is a few hundred bytes
# How long a request with nothing valid to serve waits for the route's refresh before it is
# answered 503 (the refresh goes on): below botocore's 2 s container timeout, so a client
# hears why (STS slow or throttling) instead of timing out, and retries into the same refresh.
MAX_WAIT_SECONDS = 1.5
# Open connections at most (also kept below the open-file limit): any local process can open
# connections without the token, so at the cap the one waiting longest on its client (for a
# request, or to read an answer) is closed to make room; one being answered never is.
MAX_CONNECTIONS = 1024
FILES_KEPT_FREE = 64  # for STS and IMDS connections, the token and config files, logging
SERVER_NAME = "assume-provider"


def is_loopback(host: str) -> bool:
    """An IP literal of the loopback range (names are not accepted: they can resolve anywhere)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class BadRequest(Exception):
    """A request this server does not parse; answered with ``status`` and the connection closed."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class Headers:
    """A request's header fields: names case-insensitive, every value of a repeated name kept."""

    def __init__(self) -> None:
        self._fields: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self._fields.setdefault(name.lower(), []).append(value)

    def get(self, name: str) -> Optional[str]:
        """The first value of ``name`` (None if absent)."""
        values = self._fields.get(name.lower())
        return values[0] if values else None

    def get_all(self, name: str) -> Optional[list[str]]:
        return self._fields.get(name.lower())


class Request:
    """A parsed request head."""

    def __init__(self, method: str, target: str, version: str, headers: Headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers

    @property
    def path(self) -> str:
        """The target's path, percent-decoded (an absolute-form target's authority is ignored:
        the Host header is what is checked)."""
        if self.target.startswith("/"):
            return unquote(self.target.partition("?")[0].partition("#")[0])
        return unquote(urlsplit(self.target).path)

    @property
    def keep_alive(self) -> bool:
        """A GET in HTTP/1.1 without ``Connection: close`` and without a body (bodies are never
        read; a HEAD's answer, with its body, would be misread by a client expecting none)."""
        if self.version != "HTTP/1.1" or self.method != "GET":
            return False
        if "close" in (self.headers.get("Connection") or "").lower():
            return False
        # Any Transfer-Encoding (empty included), or a length that is not one plain 0, may
        # hide a body; the next request must never be read out of one.
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get_all("Transfer-Encoding") is not None or len(lengths) > 1:
            return False
        return not lengths or lengths[0].strip() == "0"


# RFC 9110 5.1: a field name is a token. Anything else (a space before the colon, a line
# without one, a folded continuation line) is refused rather than guessed at.
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_FORBIDDEN_IN_VALUES = (b"\r", b"\n", b"\0")
MAX_HEADERS = 100


def parse_head(head: bytes) -> Request:
    """The request line and headers of ``head`` (ending in an empty line); BadRequest if not.

    Strict and small on purpose (RFC 9112): CRLF line ends only, no obsolete line folding,
    field names that are tokens, no CR, LF or NUL inside a line, at most ``MAX_HEADERS``.
    """
    line, *lines = head[:-4].split(b"\r\n")
    if any(bad in line for bad in _FORBIDDEN_IN_VALUES):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "a request line with CR, LF or NUL in it")
    words = line.decode("latin-1").split(" ")
    if len(words) != 3 or not all(words):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "a request line is METHOD TARGET VERSION")
    method, target, version = words
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/1.0 and 1.1 only")
    if len(lines) > MAX_HEADERS:
        raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "more than 100 headers")
    headers = Headers()
    for field in lines:
        name, colon, value = field.partition(b":")
        if not colon or not name or not _TOKEN.issuperset(name):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed header line")
        if any(bad in value for bad in _FORBIDDEN_IN_VALUES):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "a header value with CR, LF or NUL in it")
        # Leading whitespace goes (RFC 9110's optional whitespace after the colon); trailing
        # whitespace stays: "TOKEN<tab>" is not the token, whatever a lenient reader makes of it.
        headers.add(name.decode("ascii"), value.decode("latin-1").lstrip(" \t"))
    return Request(method, target, version, headers)


def response(
    status: int, body: Any, *, keep_alive: bool, extra: Optional[dict[str, str]] = None
) -> bytes:
    """The whole answer in one buffer: one write, so headers and body leave together."""
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Server: {SERVER_NAME}",
        f"Date: {_http_date()}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Cache-Control: no-store",
    ]
    if not keep_alive:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in (extra or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header's value, made once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


def credentials_body(route: Route, credentials: TemporaryCredentials) -> dict[str, Any]:
    return {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "Token": credentials.session_token,
        "Expiration": utc_text(credentials.expiration),
        "AccountId": route.account_id,
    }


def error_body(exc: BaseException) -> dict[str, str]:
    """``{"code", "message"}`` naming hop, role and AWS error code; never a secret or key ID."""
    code = getattr(exc, "error_code", None) or type(exc).__name__
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, AssumeRoleError) and exc.role_arn not in message:
        message = f"hop {exc.hop} ({exc.role_arn}): {message}"
    return {"code": str(code), "message": redact_text(message, key_ids=True)}


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit (a long-lived server may hold many
    connections; the default soft limit is often 1024); the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
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
    return max(16, min(MAX_CONNECTIONS, soft - FILES_KEPT_FREE))


class Connection:
    """One client connection: its task, and since when it has been waiting on its client (for
    a request, or to read an answer); None while a request is being answered."""

    def __init__(self, task: asyncio.Task[None], now: float) -> None:
        self.task = task
        self.waiting_since: Optional[float] = now


class CredentialHTTPServer:
    """Bound to one loopback address at construction; knows its token and its routes.

    ``serve_forever()`` runs the event loop in the calling thread until ``shutdown()`` (from
    any other thread); ``server_close()`` then releases the socket.
    """

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        routes: RouteTable,
        *,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        max_wait: float = MAX_WAIT_SECONDS,
        max_connections: Optional[int] = None,
    ) -> None:
        if not is_loopback(host):
            raise ConfigError(f"--host {host}: only loopback addresses (127.0.0.1, ::1) allowed")
        self.token = token.encode("ascii")
        self.routes = routes
        self.idle_timeout = idle_timeout
        self.max_wait = max_wait
        self.max_connections = max_connections or connection_limit()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(LISTEN_BACKLOG)
            self._socket.setblocking(False)
        except OSError:
            self._socket.close()
            raise
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        self.own_hosts = {f"{url_host(host)}:{self.port}".lower()}
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_loop_errors)
        self._connections: dict[asyncio.Task[None], Connection] = {}
        # Per route, the one wait in a worker thread that every request with nothing to serve
        # shares (the engine's refresh is single-flight; this keeps it one thread too).
        self._waits: dict[str, asyncio.Future[TemporaryCredentials]] = {}
        self._stop: Optional[asyncio.Event] = None
        self._entered = threading.Event()  # serve_forever() called
        self._stopping = threading.Event()  # shutdown() called
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}/"

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

    def server_close(self) -> None:
        self._socket.close()
        if not self._entered.is_set():
            self._loop.close()  # otherwise serve_forever() closes it when it returns

    def _request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        if self._stopping.is_set():  # shutdown() came before this loop ran
            return
        server = await asyncio.start_server(self._accepted, sock=self._socket, limit=MAX_HEAD_BYTES)
        try:
            if not self._stopping.is_set():
                await self._stop.wait()
        finally:
            server.close()
            tasks = list(self._connections)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_connections and not self._make_room():
            writer.close()  # every connection is being answered: this one must come back
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
                keep_alive = request.keep_alive
                connection.waiting_since = None  # being answered: never closed to make room
                status, body, extra = await self._answer(request)
                # A client that does not read its answers can be closed to make room again.
                connection.waiting_since = self._loop.time()
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
        answer = _error(exc.status, str(exc))
        await self._send(writer, response(exc.status, answer, keep_alive=False))

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        if writer.transport.get_write_buffer_size():  # not all sent at once: a slow reader
            await self._within_idle_timeout(writer, writer.drain())

    async def _answer(self, request: Request) -> tuple[int, Any, Optional[dict[str, str]]]:
        """Status, JSON body and extra headers for one request."""
        if request.method != "GET":
            body = {"code": "MethodNotAllowed", "message": "use GET"}
            return HTTPStatus.METHOD_NOT_ALLOWED, body, {"Allow": "GET"}
        path = request.path
        host = (request.headers.get("Host") or "").strip().lower()
        if host not in self.own_hosts:
            return 403, _error(HTTPStatus.FORBIDDEN, "Host is not this server's address"), None
        if path == "/healthz":
            return 200, self.routes.health(), None
        given = (request.headers.get("Authorization") or "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.token):
            return 401, _error(HTTPStatus.UNAUTHORIZED, "Authorization is not the token"), None
        route = self.routes.known(path)
        if route is None:  # a new /profile/NAME route reads the config files: not on the loop
            try:
                route = await in_thread(self.routes.lookup, path)
            except UnknownRoute as exc:
                return 404, _error(HTTPStatus.NOT_FOUND, str(exc)), None
            except ConfigError as exc:
                return 500, {"code": "ConfigError", "message": redact_text(str(exc))}, None
        try:
            credentials = route.served_now() or await self._shared_wait(route)
        except Exception as exc:  # noqa: BLE001 - every failure is a 503 the SDK can retry
            still_valid = route.still_valid()  # the refresh failed or is slow: valid ones do
            if still_valid is None:
                return 503, error_body(exc), None
            credentials = still_valid
        return 200, credentials_body(route, credentials), None

    async def _shared_wait(self, route: Route) -> TemporaryCredentials:
        """Nothing valid cached: wait for the route's refresh, with every other such request,
        at most ``max_wait`` (then RefreshInProgress; the refresh goes on)."""
        wait = self._waits.get(route.path)
        if wait is None or wait.done():
            wait = self._waits[route.path] = in_thread(route.wait_for_credentials)
        try:
            # shield: one request giving up does not cancel the wait the others share
            return await asyncio.wait_for(asyncio.shield(wait), self.max_wait)
        except asyncio.TimeoutError:
            raise RefreshInProgress(route, self.max_wait) from None


def _quiet_loop_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """One line, no traceback, for what the loop cannot hand to a connection (e.g. accept()
    failing with too many open files while a local process floods the server): stderr is for
    refreshes and failures, and a flood must not flood it."""
    exception = context.get("exception")
    detail = f": {type(exception).__name__}: {exception}" if exception is not None else ""
    _once_a_minute(f"{context.get('message', 'event loop error')}{detail}")


_last_said: dict[str, float] = {}


def _once_a_minute(line: str) -> None:
    now = time.monotonic()
    if now - _last_said.get(line, -60.0) >= 60.0:
        _last_said[line] = now
        logger.warning("%s", line)


def in_thread(function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """``function(*args)`` in a daemon thread, as a future of the running loop.

    Not ``run_in_executor``: the executor's threads are joined at interpreter exit, so a
    request waiting on a hung STS would hold up the exit that SIGTERM asks for.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: Optional[BaseException]) -> None:
        if future.done():
            return  # cancelled: the server is stopping
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            outcome: tuple[Any, Optional[BaseException]] = (function(*args), None)
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting request
            outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    threading.Thread(target=work, name="assume-provider-serve-wait", daemon=True).start()
    return future


def _error(status: HTTPStatus, message: str) -> dict[str, str]:
    return {"code": status.phrase.replace(" ", ""), "message": message}
