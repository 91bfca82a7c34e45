"""A stdlib HTTP server on a free loopback port, served from a background thread.

Shared by the IMDS fake and the proxy, which differ only in their request handler.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalHTTPServer(ThreadingHTTPServer):
    # The default backlog of 5 makes 32 concurrent clients see connection time-outs.
    request_queue_size = 512
    daemon_threads = True
    # Clients keep connections alive in their pools, so handler threads sit in a blocking
    # read; waiting for them on close would hang stop(). They are daemons: let them go.
    block_on_close = False


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive capable handler that does not log every request to stderr."""

    # HTTP/1.1 keeps connections open, as botocore's urllib3 pool expects; every response
    # must then carry Content-Length (see send_bytes).
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, headers and body written separately wait ~40 ms for delayed ACKs.
    disable_nagle_algorithm = True
    # Idle keep-alive connections are closed after this many seconds; clients reconnect.
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class BackgroundServer:
    """Runs a handler class on 127.0.0.1:<free port> until stop()."""

    def __init__(
        self, handler_factory: Callable[..., socketserver.BaseRequestHandler], name: str
    ) -> None:
        # A factory (e.g. functools.partial(Handler, owner=...)) lets each handler reach
        # the object that owns its state without a global.
        self._handler_factory: Any = handler_factory
        self._name = name
        self._server: LocalHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def server(self) -> LocalHTTPServer:
        if self._server is None:
            raise RuntimeError("server is not started")
        return self._server

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        self._server = LocalHTTPServer(("127.0.0.1", 0), self._handler_factory)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self._name, daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
