"""The listening socket and the request handler.

The standard library's ``ThreadingHTTPServer``: one thread per connection, so a request
that must wait for a refresh (nothing cached yet) never holds up one that can be answered
from the cache, and the hot path is a dictionary lookup plus a JSON dump. Its default listen
backlog of 5 drops connections when a fleet of processes starts together, hence a larger
``request_queue_size``. Responses are small and each connection carries one request.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from ..engine.model import utc_text
from ..errors import AssumeRoleError, ConfigError
from ..redaction import redact_text
from .routes import Route, RouteTable, UnknownRoute

LISTEN_BACKLOG = 256
# A connection that sends nothing for this long is closed: each one holds a thread, and an
# SDK asks about once per credential lifetime, so an idle keep-alive connection (or a local
# process that opens connections and sends nothing) must not hold threads for ever.
IDLE_TIMEOUT_SECONDS = 10.0


def is_loopback(host: str) -> bool:
    """An IP literal of the loopback range (names are not accepted: they can resolve anywhere)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class CredentialHTTPServer(ThreadingHTTPServer):
    """Bound to one loopback address; knows its token and its routes."""

    daemon_threads = True  # a request waiting on STS must not delay exit
    request_queue_size = LISTEN_BACKLOG
    allow_reuse_address = True

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
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.token = token.encode("ascii")
        self.routes = routes
        self.idle_timeout = idle_timeout
        super().__init__((host, port), CredentialHandler)
        self.host = host
        self.port = int(self.server_address[1])
        self.own_hosts = {f"{url_host(host)}:{self.port}".lower()}

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}/"


def _json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def credentials_body(route: Route) -> dict[str, Any]:
    credentials = route.credentials()
    return {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "Token": credentials.session_token,
        "Expiration": utc_text(credentials.expiration),
        "AccountId": route.account_id,
    }


def error_body(exc: BaseException) -> dict[str, str]:
    """``{"code", "message"}`` naming hop, role and AWS error code; never a secret."""
    code = getattr(exc, "error_code", None) or type(exc).__name__
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, AssumeRoleError) and exc.role_arn not in message:
        message = f"hop {exc.hop} ({exc.role_arn}): {message}"
    return {"code": str(code), "message": redact_text(message)}


class CredentialHandler(BaseHTTPRequestHandler):
    server: CredentialHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: written separately, with Nagle's algorithm on,
    # the body can wait for the client's delayed ACK of the headers (up to 40 ms on Linux).
    # A buffered writer collects both until the handler returns (the base class flushes it).
    wbufsize = -1
    disable_nagle_algorithm = True
    server_version = "assume-provider"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)  # a timeout ends the connection

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the refresh events are the server's log."""

    def _send(self, status: int, body: Any, *, extra: Optional[dict[str, str]] = None) -> None:
        data = _json(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.server.own_hosts:
            self._send(403, {"code": "Forbidden", "message": "Host is not this server's address"})
            return
        if path == "/healthz":
            self._send(200, self.server.routes.health())
            return
        given = (self.headers.get("Authorization") or "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.server.token):
            self._send(401, {"code": "Unauthorized", "message": "Authorization is not the token"})
            return
        self._serve_credentials(path)

    def _serve_credentials(self, path: str) -> None:
        try:
            route = self.server.routes.lookup(path)
        except UnknownRoute as exc:
            self._send(404, {"code": "NotFound", "message": str(exc)})
            return
        except ConfigError as exc:
            self._send(500, {"code": "ConfigError", "message": redact_text(str(exc))})
            return
        try:
            body = credentials_body(route)
        except Exception as exc:  # noqa: BLE001 - every failure is a 503 the SDK can retry
            self._send(503, error_body(exc))
            return
        self._send(200, body)

    def do_HEAD(self) -> None:
        self._send(405, {"code": "MethodNotAllowed", "message": "use GET"}, extra={"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD
