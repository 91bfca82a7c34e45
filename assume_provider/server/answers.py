"""What the server answers a parsed request: the checks in order, then the route's credentials.

Order matters, and each step is one function here: the method (GET only), the ``Host``
header (exactly the server's own ``ADDRESS:PORT``, so a web page reaching the port through
DNS rebinding is refused), ``/metrics`` and ``/healthz`` (no token: they carry no credential;
``/healthz`` names the profile routes only to a token holder), the token (compared in
constant time), the route, the caller (where the route names who may call:
``server/callers.py``), then the credentials. A request refused by a check never reaches
a route, and no refusal carries a credential. Every answer is counted for ``/metrics``
(``server/metrics.py``) by its route and status, a refusal by its JSON code. The transport
(``server/http.py``) calls ``Answers.answer`` and writes what it returns; nothing here
touches a socket.

Everything a request can be answered from the cache is answered on the event loop; the two
things that would block it run off the loop: the first request of a new ``/profile/NAME``
route (it reads the config files: ``asyncio.to_thread``), and a request with nothing valid
to serve, which waits for the route's refresh on the engine's worker (``Route.refresh``,
one flight per engine) at most ``max_wait`` (then a 503; the refresh goes on). That wait is
on the loop's clock, which is monotonic.
"""

from __future__ import annotations

import asyncio
import hmac
from http import HTTPStatus
from typing import Any, Optional

from ..engine.model import TemporaryCredentials
from ..errors import ConfigError
from ..redaction import redact_text
from .callers import AllowList, Caller, CallerPolicy, Unread
from .metrics import CONTENT_TYPE, OTHER
from .protocol import Request, TextBody, credentials_body, error_body, status_body
from .route import RefreshInProgress, Route
from .routes import RouteTable, UnknownRoute
from .token import FixedToken, TokenSource

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


def caller_refusal(
    path: str, allowed: Optional[AllowList], caller: Optional[Caller], policy: CallerPolicy
) -> Optional[Answer]:
    """403 unless the route names no callers or the connection's user is among them: after
    the token, so a process without it learns nothing of the lists, and whatever the token,
    since a token copied to another user must not open the route. A caller whose user is
    unknown (its socket already gone) is refused, never allowed."""
    if allowed is None:
        return None
    uid = caller.uid() if caller is not None else None
    if uid is not None and allowed.allows(uid):
        return None
    policy.refusals.refused(uid, path, allowed.named_by)
    who = f"user ID {uid}" if uid is not None else "a caller whose user is unknown"
    message = f"{who} may not use route {path}"
    return 403, {"code": "CallerNotAllowed", "message": message}, None


class Answers:
    """The server's answers: its token, its own addresses, its routes, who may call them, and
    the bounded wait."""

    def __init__(
        self,
        token: str | TokenSource,
        own_hosts: frozenset[str],
        routes: RouteTable,
        *,
        max_wait: float,
        callers: CallerPolicy,
    ) -> None:
        self._token = FixedToken(token) if isinstance(token, str) else token
        self.own_hosts = own_hosts
        self.routes = routes
        self.max_wait = max_wait
        self.callers = callers

    @property
    def token(self) -> bytes:
        """The token a request must send: the token file's, as it is now (``TokenFile``)."""
        return self._token.current()

    async def answer(self, request: Request, caller: Optional[Caller] = None) -> Answer:
        """Status, JSON body and extra headers for one request, counted for ``/metrics``;
        ``caller`` is its connection's (None: unknown, refused wherever a route names its
        callers)."""
        answer = await self._answer(request, caller)
        self.routes.metrics.count_answer(self.route_label(request.path), answer[0], answer[1])
        return answer

    def route_label(self, path: str) -> str:
        """``path`` if it is a route the server has (or a fixed path), else ``other``: the
        only route labels a caller can make are of profiles that exist in the config."""
        if path in ("/healthz", "/metrics") or self.routes.known(path) is not None:
            return path
        return OTHER

    async def _answer(self, request: Request, caller: Optional[Caller]) -> Answer:
        refusal = method_refusal(request) or host_refusal(request, self.own_hosts)
        if refusal is not None:
            return refusal
        path = request.path
        if path == "/metrics":
            routes = self.routes
            page = routes.metrics.render(routes.expiries(), routes.idle())
            return 200, TextBody(page, CONTENT_TYPE), None
        if path == "/healthz":
            detailed = token_refusal(request, self.token) is None
            return 200, self.routes.health(detailed), None
        refusal = token_refusal(request, self.token)
        if refusal is not None:
            return refusal
        known = self._known(path)
        if known is None:  # a new /profile/NAME route reads the config files: not on the loop
            try:
                # The loop's executor: its threads are joined at exit, which is fine for a
                # read of local files (a wait on STS never runs there: see _bounded_wait).
                known = await asyncio.to_thread(self._lookup, path)
            except UnknownRoute as exc:
                return 404, status_body(HTTPStatus.NOT_FOUND, str(exc)), None
            except ConfigError as exc:
                return 500, {"code": "ConfigError", "message": redact_text(str(exc))}, None
        route, allowed = known
        refusal = caller_refusal(route.path, allowed, caller, self.callers)
        if refusal is not None:
            return refusal
        self.routes.asked(route)  # after the caller check: a refused caller wakes no route
        return await self._credentials(route)

    def _known(self, path: str) -> Optional[tuple[Route, Optional[AllowList]]]:
        """The route and who may call it, if both are known already (never blocks)."""
        route = self.routes.known(path)
        allowed = self.callers.known(path)
        if route is None or isinstance(allowed, Unread):
            return None
        return route, allowed

    def _lookup(self, path: str) -> tuple[Route, Optional[AllowList]]:
        """The route and who may call it, both from the config files as they are now."""
        route = self.routes.lookup(path)
        return route, self.callers.lookup(route.path)

    async def _credentials(self, route: Route) -> Answer:
        """200 with what the route serves now or after the bounded wait; 503 if nothing."""
        try:
            credentials = route.served_now() or await self._bounded_wait(route)
        except Exception as exc:  # noqa: BLE001 - every failure is a 503 the SDK can retry
            still_valid = route.still_valid()  # the refresh failed or is slow: valid ones do
            if still_valid is None:
                return 503, error_body(exc), None
            credentials = still_valid
        return 200, credentials_body(credentials, route.account_id), None

    async def _bounded_wait(self, route: Route) -> TemporaryCredentials:
        """Nothing valid cached: wait for the route's refresh (the one flight every such
        request, and the engine's own prefetch, share) at most ``max_wait``, then
        RefreshInProgress; the refresh goes on, and the client's retry joins it."""
        try:
            return await asyncio.wait_for(self._refreshed(route), self.max_wait)
        except asyncio.TimeoutError:
            raise RefreshInProgress(route, self.max_wait) from None

    @staticmethod
    async def _refreshed(route: Route) -> TemporaryCredentials:
        """What the route's refresh gives, if it can be served; NothingValidToServe naming
        the failed attempt if not. Giving up cancels only this request's wrappers: the flight
        is already running, and a running concurrent future cannot be cancelled."""
        credentials = await asyncio.wrap_future(route.refresh())
        if route.expired(credentials):
            heard = route.failure_heard()  # the attempt's failure event may still be on its way
            if heard is not None:
                await asyncio.wrap_future(heard)
        return route.servable(credentials)
