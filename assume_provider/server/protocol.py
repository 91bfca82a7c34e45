"""The server's HTTP/1.1 wire format: the strict request-head parser and the JSON answers.

Nothing here knows sockets, tokens or routes: a request head in, a ``Request`` (or
``BadRequest``) out; a status and a body in, the answer's bytes out. The parsing is
deliberately narrow and strict (``parse_head``): a request head of at most
``MAX_HEAD_BYTES`` ending in an empty line; a request line of three words and HTTP/1.0 or
1.1; header lines with token names and no CR, LF or NUL inside. Nothing here reads bodies:
a request that may carry one is not kept alive (``Request.keep_alive``), so no body can be
taken for the next request.
"""

from __future__ import annotations

import email.utils
import json
import time
from http import HTTPStatus
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from ..engine.model import TemporaryCredentials, utc_text
from ..errors import AssumeRoleError
from ..redaction import redact_text

MAX_HEAD_BYTES = 16 * 1024  # an SDK's request head is a few hundred bytes
MAX_HEADERS = 100
SERVER_NAME = "assume-provider"


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


JSON = "application/json"


class TextBody:
    """An answer's body that is not JSON: its bytes and their media type."""

    __slots__ = ("content_type", "data")

    def __init__(self, data: bytes, content_type: str) -> None:
        self.data = data
        self.content_type = content_type


def response(
    status: int, body: Any, *, keep_alive: bool, extra: Optional[dict[str, str]] = None
) -> bytes:
    """The whole answer in one buffer: one write, so headers and body leave together. A
    ``TextBody`` is sent as it is (``/metrics``); anything else as JSON."""
    if isinstance(body, TextBody):
        data, content_type = body.data, body.content_type
    else:
        data, content_type = json.dumps(body, separators=(",", ":")).encode("utf-8"), JSON
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Server: {SERVER_NAME}",
        f"Date: {_http_date()}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(data)}",
        "Cache-Control: no-store",
    ]
    if not keep_alive:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in (extra or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header's value, made once a second (it names a wall-clock second)."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


def credentials_body(
    credentials: TemporaryCredentials, account_id: Optional[str]
) -> dict[str, Any]:
    """The 200 answer of the container-credentials protocol."""
    return {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "Token": credentials.session_token,
        "Expiration": utc_text(credentials.expiration),
        "AccountId": account_id,
    }


def error_body(exc: BaseException) -> dict[str, str]:
    """``{"code", "message"}`` naming hop, role and AWS error code; never a secret or key ID."""
    code = getattr(exc, "error_code", None) or type(exc).__name__
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, AssumeRoleError) and exc.role_arn not in message:
        message = f"hop {exc.hop} ({exc.role_arn}): {message}"
    return {"code": str(code), "message": redact_text(message, key_ids=True)}


def status_body(status: HTTPStatus, message: str) -> dict[str, str]:
    """``{"code", "message"}`` for a refusal of the server's own (the code is the status's
    phrase without spaces: ``Unauthorized``, ``Forbidden``, ``NotFound``)."""
    return {"code": status.phrase.replace(" ", ""), "message": message}
