"""The listening socket and the HTTP exchange: one asyncio event loop (standard library).

Why asyncio and not ``http.server.ThreadingHTTPServer``, measured side by side under the
same 32-client load (``benchmarks/server_http_choice.py``, docs/server.md): the threading
server starts a thread per connection and hands the GIL between them, which cost it half
the throughput and twice the p99 latency, over the 5 ms target. Here one thread answers
every request that can be answered from the cache (a clock compare, a JSON dump), and only
what must wait runs in a worker thread: a request with nothing to serve waiting for the
route's refresh, and the first request of a new ``/profile/NAME`` route (it reads the config
files). The loop itself never waits on STS or the disk.

The parsing is deliberately narrow: a request head of at most ``MAX_HEAD_BYTES`` ending in
an empty line, read within the idle timeout; a request line of three words and HTTP/1.0 or
1.1; the headers parsed by the standard library's own ``http.client.parse_headers``. A
request with a body gets its answer and the connection is closed (nothing here reads
bodies, so none can be taken for the next request).
"""

from __future__ import annotations

import asyncio
import email.utils
import hmac
import http.client
import io
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Optional, TypeVar
from urllib.parse import unquote, urlsplit

from ..engine.model import TemporaryCredentials, utc_text
from ..errors import AssumeRoleError, ConfigError
from ..redaction import redact_text
from .routes import Route, RouteTable, UnknownRoute

logger = logging.getLogger(__name__)
T = TypeVar("T")

LISTEN_BACKLOG = 256  # many processes starting together must not find the queue full
# A connection that sends nothing for this long is closed, and a request head must arrive
# within it: an SDK asks about once per credential lifetime, so idle keep-alive connections
# and half-sent requests (any local process can open them) must not pile up.
IDLE_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 16 * 1024  # an SDK's request head is a few hundred bytes
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


class Request:
    """A parsed request head."""

    def __init__(self, method: str, target: str, version: str, headers: http.client.HTTPMessage):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 without ``Connection: close``, and no body (bodies are never read)."""
        if self.version != "HTTP/1.1":
            return False
        if "close" in (self.headers.get("Connection") or "").lower():
            return False
        has_body = self.headers.get("Transfer-Encoding") or (
            self.headers.get("Content-Length", "0").strip() != "0"
        )
        return not has_body


def parse_head(head: bytes) -> Request:
    """The request line and headers of ``head`` (ending in an empty line); BadRequest if not."""
    line, _, rest = head.partition(b"\r\n")
    words = line.decode("latin-1").split()
    if len(words) != 3:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "a request line is METHOD TARGET VERSION")
    method, target, version = words
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/1.0 and 1.1 only")
    try:
        headers = http.client.parse_headers(io.BytesIO(rest))
    except http.client.HTTPException as exc:  # more than 100 headers, a line too long
        raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, str(exc)) from None
    if headers.defects:  # e.g. a line that is not a header, which would hide the next ones
        raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed header lines")
    return Request(method, target, version, headers)


def response(
    status: int, body: Any, *, keep_alive: bool, extra: Optional[dict[str, str]] = None
) -> bytes:
    """The whole answer in one buffer: one write, so headers and body leave together."""
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Server: {SERVER_NAME}",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Cache-Control: no-store",
    ]
    if not keep_alive:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in (extra or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


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
    ) -> None:
        if not is_loopback(host):
            raise ConfigError(f"--host {host}: only loopback addresses (127.0.0.1, ::1) allowed")
        self.token = token.encode("ascii")
        self.routes = routes
        self.idle_timeout = idle_timeout
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
        # Per route, the one wait in a worker thread that every request with nothing to serve
        # shares (the engine's refresh is single-flight; this keeps it one thread too).
        self._waits: dict[str, asyncio.Future[TemporaryCredentials]] = {}
        self._stop: Optional[asyncio.Event] = None
        self._started = threading.Event()
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}/"

    # -- lifetime ------------------------------------------------------------------------

    def serve_forever(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._stopped.set()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving (from another thread); returns once the loop has stopped."""
        if not self._started.is_set():
            return
        self._loop.call_soon_threadsafe(self._request_stop)
        self._stopped.wait(timeout)

    def server_close(self) -> None:
        self._socket.close()
        if not self._loop.is_running():
            self._loop.close()

    def _request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        connections: set[asyncio.Task[None]] = set()

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await self._converse(reader, writer)
            except asyncio.CancelledError:
                pass  # the server is stopping; the connection is closed
            finally:
                connections.discard(task)

        server = await asyncio.start_server(accepted, sock=self._socket, limit=MAX_HEAD_BYTES)
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(connections):
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

    # -- one connection ------------------------------------------------------------------

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests on one connection, one after another, until it closes or idles."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            keep_alive = True
            while keep_alive:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout)
                    request = parse_head(head)
                except asyncio.LimitOverrunError:
                    too_large = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
                    await self._refuse(writer, BadRequest(too_large, "request head too large"))
                    return
                except BadRequest as exc:
                    await self._refuse(writer, exc)
                    return
                except (asyncio.IncompleteReadError, asyncio.TimeoutError):
                    return  # closed, or silent for the idle timeout
                keep_alive = request.keep_alive
                status, body, extra = await self._answer(request)
                await self._send(writer, response(status, body, keep_alive=keep_alive, extra=extra))
        except (ConnectionError, asyncio.TimeoutError):
            pass  # the client went away or stopped reading: nothing to tell anyone
        except Exception:
            logger.debug("connection failed", exc_info=True)  # must not stop the server
        finally:
            writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter, exc: BadRequest) -> None:
        answer = _error(exc.status, str(exc))
        await self._send(writer, response(exc.status, answer, keep_alive=False))

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.idle_timeout)

    async def _answer(self, request: Request) -> tuple[int, Any, Optional[dict[str, str]]]:
        """Status, JSON body and extra headers for one request."""
        if request.method != "GET":
            body = {"code": "MethodNotAllowed", "message": "use GET"}
            return HTTPStatus.METHOD_NOT_ALLOWED, body, {"Allow": "GET"}
        path = unquote(urlsplit(request.target).path)
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
            return 503, error_body(exc), None
        return 200, credentials_body(route, credentials), None

    async def _shared_wait(self, route: Route) -> TemporaryCredentials:
        """Nothing valid cached: wait for the route's refresh, with every other such request."""
        wait = self._waits.get(route.path)
        if wait is None or wait.done():
            wait = self._waits[route.path] = in_thread(route.wait_for_credentials)
        return await asyncio.shield(wait)  # one caller giving up does not cancel the others'


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
