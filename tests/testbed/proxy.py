"""A recording, fault-injecting reverse proxy in front of moto.

Clients talk to the proxy (``AWS_ENDPOINT_URL``); the proxy forwards to moto. For every
request it records which service and action were called, with which parameters, signed
with which access key, so tests can assert "exactly one AssumeRole per hop". Faults
(throttling, 5xx, delays, dropped connections, raw bodies) are injected for the next N
requests that match an action and/or service.

It is also a forward proxy for plain http, to loopback only: a client configured with it as
its HTTP proxy (botocore's ``Config(proxies={"http": url})``) sends absolute-form request
lines (``POST http://127.0.0.1:PORT/ HTTP/1.1``), which it forwards to that address and
records with ``proxied=True``.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from testbed.local_http import BackgroundServer, QuietHandler

# Headers that describe one hop's connection, not the message (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",  # recomputed: we always send the full body with a length
    }
)
_CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the proxy saw it."""

    service: str | None  # from the SigV4 credential scope, e.g. "sts", "dynamodb"
    action: str | None  # "AssumeRole" (query protocol) or "GetItem" (JSON X-Amz-Target)
    # Query protocol: the form fields (RoleArn, RoleSessionName, ExternalId, ...), values
    # as sent (strings). JSON protocols: the decoded top-level JSON object.
    params: dict[str, Any] = field(hash=False)
    access_key_id: str | None  # the key that signed it
    region: str | None
    method: str
    path: str
    at: float  # time.monotonic() when it arrived
    fault: str | None  # name of the fault applied, None when forwarded untouched
    proxied: bool = False  # sent to this server as an HTTP proxy (an absolute-form target)


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) forwarding a request. Build with the classmethods."""

    kind: str  # "error", "delay", "drop" or "body"
    status: int = 200
    code: str | None = None  # error code; None = protocol's throttling code
    message: str = ""
    body: bytes = b""
    content_type: str = "text/xml"
    seconds: float = 0.0
    gate: threading.Event | None = field(default=None, compare=False)  # see hold()

    @classmethod
    def throttle(cls) -> Fault:
        """HTTP 400 ``Throttling`` (XML services) / ``ThrottlingException`` (JSON ones)."""
        return cls("error", status=400, code=None, message="Rate exceeded")

    @classmethod
    def error(cls, code: str, status: int = 400, message: str = "injected by test proxy") -> Fault:
        """An AWS error response, e.g. ``Fault.error("AccessDenied", 403, "...")``."""
        return cls("error", status=status, code=code, message=message)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        code = "ServiceUnavailable" if status == 503 else "InternalFailure"
        return cls("error", status=status, code=code, message="injected server error")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait, then forward normally (for read-timeout and concurrency tests)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def hold(cls, gate: threading.Event, limit: float = 60.0) -> Fault:
        """Forward normally once the test sets ``gate`` (or after ``limit`` seconds): a slow
        call that lasts exactly until the test has seen what it waits for, however loaded
        the machine. Pair with ``ReverseProxy.wait_for_count`` to know the call has arrived."""
        return cls("delay", seconds=limit, gate=gate)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without sending any response."""
        return cls("drop")

    @classmethod
    def raw_body(cls, body: bytes, status: int = 200, content_type: str = "text/xml") -> Fault:
        """Answer with exactly these bytes (malformed STS responses and the like)."""
        return cls("body", status=status, body=body, content_type=content_type)

    @property
    def name(self) -> str:
        if self.kind == "error":
            return f"error:{self.code or 'Throttling'}"
        return self.kind


class Injection:
    """A fault armed for the next ``times`` matching requests (``times=None``: until cleared)."""

    def __init__(
        self,
        fault: Fault,
        action: str | None,
        service: str | None,
        times: int | None,
        chance: Callable[[], bool] | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
    ) -> None:
        self.fault = fault
        self.action = action
        self.service = service
        self.region = region  # the SigV4 signing region; None: any
        self.access_key_id = access_key_id  # the key that signed the request; None: any
        self._remaining = times
        self._chance = chance  # None: every matching request; else asked per request
        self.applied = 0

    @property
    def remaining(self) -> int | None:
        return self._remaining

    @property
    def exhausted(self) -> bool:
        return self._remaining is not None and self._remaining <= 0

    def _matches(
        self, service: str | None, action: str | None, region: str | None, key: str | None
    ) -> bool:
        return (
            (self.action is None or self.action == action)
            and (self.service is None or self.service == service)
            and (self.region is None or self.region == region)
            and (self.access_key_id is None or self.access_key_id == key)
            and (self._chance is None or self._chance())
        )

    def _consume(self) -> None:
        self.applied += 1
        if self._remaining is not None:
            self._remaining -= 1

    def __repr__(self) -> str:
        return (
            f"Injection({self.fault.name}, action={self.action!r}, service={self.service!r}, "
            f"remaining={self._remaining}, applied={self.applied})"
        )


class ReverseProxy:
    """Counts and perturbs traffic to ``upstream_url`` (moto)."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified for each request recorded
        self._records: list[RecordedRequest] = []
        self._injections: list[Injection] = []
        self._server = BackgroundServer(partial(_ProxyHandler, proxy=self), name="aws-proxy")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> str:
        return self._server.start()

    def stop(self) -> None:
        self._server.stop()

    # -- records -----------------------------------------------------------------------

    @property
    def records(self) -> list[RecordedRequest]:
        """A snapshot, oldest first."""
        with self._lock:
            return list(self._records)

    def calls(self, action: str | None = None, service: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.records
            if (action is None or r.action == action) and (service is None or r.service == service)
        ]

    def count(self, action: str | None = None, service: str | None = None) -> int:
        """Requests that reached the proxy, faulted ones included (they are attempts)."""
        return len(self.calls(action=action, service=service))

    def wait_for_count(
        self,
        count: int,
        action: str | None = None,
        service: str | None = None,
        timeout: float = 60.0,
    ) -> bool:
        """Block until ``count`` requests matching action and service have arrived (False
        after ``timeout`` seconds): waiting for a request without polling or sleeping."""

        def arrived() -> bool:
            matching = [
                r for r in self._records
                if (action is None or r.action == action)
                and (service is None or r.service == service)
            ]
            return len(matching) >= count

        with self._arrived:
            return self._arrived.wait_for(arrived, timeout)

    # -- faults ------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        action: str | None = None,
        service: str | None = None,
        times: int | None = 1,
        chance: Callable[[], bool] | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
    ) -> Injection:
        """Apply ``fault`` to the next ``times`` requests matching action and service (and,
        when given, signed for ``region``, or with ``access_key_id``).

        ``chance``, when given, is asked for each matching request and the fault applies only
        when it returns True (e.g. a seeded ``lambda: rng.random() < 0.05``).
        Earlier injections win when several match the same request.
        """
        injection = Injection(fault, action, service, times, chance, region, access_key_id)
        with self._lock:
            self._injections.append(injection)
        return injection

    def clear_faults(self) -> None:
        with self._lock:
            self._injections.clear()

    def reset(self) -> None:
        """Forget records and faults."""
        with self._lock:
            self._records.clear()
            self._injections.clear()

    # -- used by the handler -----------------------------------------------------------

    def _admit(
        self, service: str | None, action: str | None, record: dict[str, Any]
    ) -> Fault | None:
        """Record a request and pick the fault (if any) it gets, atomically."""
        with self._lock:
            fault = None
            for injection in self._injections:
                region, key = record.get("region"), record.get("access_key_id")
                if not injection.exhausted and injection._matches(service, action, region, key):
                    injection._consume()
                    fault = injection.fault
                    break
            self._injections = [i for i in self._injections if not i.exhausted]
            self._records.append(RecordedRequest(fault=fault.name if fault else None, **record))
            self._arrived.notify_all()
            return fault

    def _forward(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        upstream: tuple[str, int] | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        # A fresh upstream connection per request: moto's werkzeug server answers
        # "Connection: close" anyway, and on loopback a connect costs microseconds.
        connection = http.client.HTTPConnection(*(upstream or self._upstream), timeout=60)
        try:
            connection.connect()
            assert connection.sock is not None
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # The Host header is forwarded untouched: it is part of the SigV4 signature,
            # which moto verifies once identity-policy checks are on.
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, kept, payload
        finally:
            connection.close()


class _ProxyHandler(QuietHandler):
    def __init__(self, *args: Any, proxy: ReverseProxy, **kwargs: Any) -> None:
        self.proxy = proxy  # set before super().__init__, which handles the request
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _handle(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Not needed for STS/IAM/DynamoDB/KMS; refuse loudly rather than mis-forward.
            self.send_bytes(501, b"test proxy: chunked request bodies are not supported")
            self.close_connection = True
            return
        body = self.read_body()
        self.upstream, self.target = _proxied_target(self.path)
        if self.upstream is not None and not _is_loopback(self.upstream[0]):
            self.send_bytes(403, b"test proxy: forwards to loopback addresses only")
            self.close_connection = True
            return
        access_key_id, region, service = _credential_scope(self.headers, self.target)
        action, params = _action_and_params(self.headers, self.target, body)
        fault = self.proxy._admit(
            service,
            action,
            {
                "service": service,
                "action": action,
                "params": params,
                "access_key_id": access_key_id,
                "region": region,
                "method": self.command,
                "path": self.target,
                "at": time.monotonic(),
                "proxied": self.upstream is not None,
            },
        )
        try:
            if fault is None or fault.kind == "delay":
                if fault is not None and fault.gate is not None:
                    fault.gate.wait(fault.seconds)  # held until the test lets it go
                elif fault is not None:
                    time.sleep(fault.seconds)  # the one deliberate sleep: an injected delay
                self._relay(body)
            elif fault.kind == "drop":
                self.close_connection = True  # returning without a response closes the socket
            elif fault.kind == "body":
                self.send_bytes(fault.status, fault.body, fault.content_type)
            else:
                self._send_error(fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up first (e.g. its read timeout)

    def _relay(self, body: bytes) -> None:
        try:
            status, headers, payload = self.proxy._forward(
                self.command, self.target, list(self.headers.items()), body, self.upstream
            )
        except OSError as error:  # moto is gone (bed stopping) or timed out
            self.send_bytes(502, f"test proxy: upstream failed: {error}".encode())
            self.close_connection = True
            return
        # send_response_only: moto already supplies Date and Server.
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_error(self, fault: Fault) -> None:
        request_id = str(uuid.uuid4())
        headers = {"x-amzn-RequestId": request_id}
        if self.headers.get("X-Amz-Target"):  # JSON protocol (DynamoDB, KMS)
            code = fault.code or "ThrottlingException"
            headers["x-amzn-ErrorType"] = code
            document = {"__type": code, "message": fault.message}
            content_type = self.headers.get("Content-Type", "application/x-amz-json-1.0")
            self.send_bytes(fault.status, json.dumps(document).encode(), content_type, headers)
            return
        code = fault.code or "Throttling"
        sender = "Sender" if fault.status < 500 else "Receiver"
        xml = (
            "<ErrorResponse><Error>"
            f"<Type>{sender}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(fault.message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        self.send_bytes(fault.status, xml.encode(), "text/xml", headers)


def _proxied_target(target: str) -> tuple[tuple[str, int] | None, str]:
    """(where to forward, origin-form path): the address of an absolute-form request target
    (the client uses us as its HTTP proxy), or None for an origin-form one (reverse proxy)."""
    if not target.startswith("http://"):
        return None, target
    parts = urlsplit(target)
    path = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
    return (parts.hostname or "", parts.port or 80), path


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _credential_scope(headers: Any, path: str) -> tuple[str | None, str | None, str | None]:
    """(access key id, region, service) from SigV4 header or presigned-URL credential."""
    source = headers.get("Authorization", "")
    if "Credential=" not in source:
        query = dict(parse_qsl(urlsplit(path).query))
        source = "Credential=" + query.get("X-Amz-Credential", "")
    match = _CREDENTIAL_SCOPE.search(source)
    if match is None:
        return None, None, None
    access_key_id, region, service = match.groups()
    return access_key_id, region, service


def _action_and_params(headers: Any, path: str, body: bytes) -> tuple[str | None, dict[str, Any]]:
    target = headers.get("X-Amz-Target")
    if target:  # JSON protocols: "DynamoDB_20120810.GetItem", "TrentService.Decrypt"
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return target.rpartition(".")[2], params if isinstance(params, dict) else {}
    # Query protocol (STS, IAM): Action and parameters in the form body or the URL query.
    params = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
    if "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params.get("Action"), params
