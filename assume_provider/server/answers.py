"""What the server answers a parsed request: the checks in order, then the route's credentials.

Order matters, and each step is one function here: the method (GET only), the ``Host``
header (exactly the server's own ``ADDRESS:PORT``, so a web page reaching the port through
DNS rebinding is refused), ``/healthz`` (no token: it carries no credential), the token
(compared in constant time), the route, then the credentials. A request refused by a check
never reaches a route, and no refusal carries a credential. The transport
(``server/http.py``) calls ``Answers.answer`` and writes what it returns; nothing here
touches a socket.

Everything a request can be answered from the cache is answered on the event loop; the two
things that would block it run off the loop: the first request of a new ``/profile/NAME``
route (it reads the config files), and a request with nothing valid to serve, which waits
for the route's refresh at most ``max_wait`` (then a 503; the refresh goes on).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Optional, TypeVar

from ..engine.model import TemporaryCredentials
from ..errors import ConfigError
from ..redaction import redact_text
from .protocol import Request, credentials_body, error_body, status_body
from .routes import RefreshInProgress, Route, RouteTable, UnknownRoute

T = TypeVar("T")

#: Status, JSON body and extra headers of one answer.
Answer = tuple[int, Any, Optional[dict[str, str]]]


def method_refusal(request: Request) -> Optional[Answer]:
    """405 for anything but GET (the protocol has nothing else)."""
    if request.method == "GET":
        return None
    body = {"code": "MethodNotAllowed", "message": "use GET"}
    return HTTPStatus.METHOD_NOT_ALLOWED, body, {"Allow": "GET"}


def host_refusal(request: Request, own_hosts: frozenset[str]) -> Optional[Answer]:
    """403 unless ``Host`` is exactly one of the server's own ``ADDRESS:PORT`` spellings: a
    browser page that reached the port by DNS rebinding sends its own name there."""
    host = (request.headers.get("Host") or "").strip().lower()
    if host in own_hosts:
        return None
    return 403, status_body(HTTPStatus.FORBIDDEN, "Host is not this server's address"), None


def token_refusal(request: Request, token: bytes) -> Optional[Answer]:
    """401 unless ``Authorization`` is the token, byte for byte (compared in constant time;
    no trimming: ``TOKEN<tab>`` is not the token)."""
    given = (request.headers.get("Authorization") or "").encode("utf-8", "surrogateescape")
    if hmac.compare_digest(given, token):
        return None
    return 401, status_body(HTTPStatus.UNAUTHORIZED, "Authorization is not the token"), None


class Answers:
    """The server's answers: its token, its own addresses, its routes and the bounded wait."""

    def __init__(
        self, token: str, own_hosts: frozenset[str], routes: RouteTable, *, max_wait: float
    ) -> None:
        self.token = token.encode("ascii")
        self.own_hosts = own_hosts
        self.routes = routes
        self.max_wait = max_wait
        # Per route, the one wait in a worker thread that every request with nothing to serve
        # shares (the engine's refresh is single-flight; this keeps it one thread too).
        self._waits: dict[str, asyncio.Future[TemporaryCredentials]] = {}

    async def answer(self, request: Request) -> Answer:
        """Status, JSON body and extra headers for one request."""
        refusal = method_refusal(request) or host_refusal(request, self.own_hosts)
        if refusal is not None:
            return refusal
        path = request.path
        if path == "/healthz":
            return 200, self.routes.health(), None
        refusal = token_refusal(request, self.token)
        if refusal is not None:
            return refusal
        route = self.routes.known(path)
        if route is None:  # a new /profile/NAME route reads the config files: not on the loop
            try:
                route = await in_thread(self.routes.lookup, path)
            except UnknownRoute as exc:
                return 404, status_body(HTTPStatus.NOT_FOUND, str(exc)), None
            except ConfigError as exc:
                return 500, {"code": "ConfigError", "message": redact_text(str(exc))}, None
        return await self._credentials(route)

    async def _credentials(self, route: Route) -> Answer:
        """200 with what the route serves now or after the bounded wait; 503 if nothing."""
        try:
            credentials = route.served_now() or await self._shared_wait(route)
        except Exception as exc:  # noqa: BLE001 - every failure is a 503 the SDK can retry
            still_valid = route.still_valid()  # the refresh failed or is slow: valid ones do
            if still_valid is None:
                return 503, error_body(exc), None
            credentials = still_valid
        return 200, credentials_body(credentials, route.account_id), None

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
