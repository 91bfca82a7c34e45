"""``GET /metrics``: the server's counters in the Prometheus text format (version 0.0.4).

Written by hand, not with ``prometheus-client``: four counter and gauge families are a few
lines of text, and the server then needs no dependency the library and the command line do
not (the tests parse the output with that library's reference parser).

Every label set is bounded, so no caller can grow the page or the process:
- a ``route`` is ``/``, ``/healthz``, ``/metrics`` or a ``/profile/NAME`` route the server
  has created (creating one reads the profile from the config files); any other path is
  counted as ``other``;
- a refresh ``result`` is ``refreshed`` or the AWS error code, which comes from AWS or the
  network: the first ``MAX_RESULTS`` distinct codes by name, any later one as ``other``;
- a refusal ``reason`` comes from the refusal's JSON code (``REASONS``; a code of a new
  refusal is named after it, within ``MAX_REASONS``).
Labels are paths, status codes, error codes and reasons: never a key ID, secret or token.

Counts arrive from the event loop (answers) and from refresh listeners (other threads):
one lock, held for a dictionary increment. Rendering copies under it and formats outside.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from typing import Any, Optional

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"
#: Distinct refresh results (AWS error codes) kept by name; later ones count as ``other``.
MAX_RESULTS = 16
#: Distinct refusal reasons kept by name (the server makes fewer; a bound all the same).
MAX_REASONS = 16

#: A refused request's reason, from the code of its JSON answer (a 4xx of the server's own).
REASONS = {
    "MethodNotAllowed": "method",
    "Forbidden": "host",  # the Host check is the one 403 Forbidden
    "Unauthorized": "token",
    "CallerNotAllowed": "caller",
    "NotFound": "route",
    "BadRequest": "bad_request",
}
#: Refused requests of the transport (a head the parser refuses), before any answer.
BAD_REQUEST = "bad_request"
#: A connection closed unanswered because every connection slot is busy answering.
CONNECTION_LIMIT = "connection_limit"

#: (name, type, help) of each family, in the page's order.
FAMILIES = (
    ("assume_provider_requests_total", "counter", "Requests answered, by route and HTTP code."),
    (
        "assume_provider_refreshes_total",
        "counter",
        "Refresh attempts of a route's credentials, by result (refreshed or the AWS error code).",
    ),
    (
        "assume_provider_credentials_expiry_seconds",
        "gauge",
        "Seconds until the credentials a route serves expire (negative: expired).",
    ),
    ("assume_provider_refused_total", "counter", "Requests refused, by reason."),
    (
        "assume_provider_route_idle",
        "gauge",
        "1 while a profile route nobody asked for has its background refresh stopped.",
    ),
)


class BoundedValues:
    """The first ``limit`` distinct values as themselves, every later one as ``other``."""

    def __init__(self, limit: int, initial: Iterable[str] = ()) -> None:
        self._limit = limit
        self._seen = set(initial)

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value


class ServerMetrics:
    """The counters; ``render`` adds the gauges the routes report at that moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._refreshes: dict[tuple[str, str], int] = {}
        # Known reasons start at 0, so a rate over them is defined from the first scrape.
        self._refused: dict[str, int] = dict.fromkeys(
            sorted({*REASONS.values(), BAD_REQUEST, CONNECTION_LIMIT}), 0
        )
        self._result = BoundedValues(MAX_RESULTS, ["refreshed"])
        self._reason = BoundedValues(MAX_REASONS, self._refused)

    def count_answer(self, route: str, status: int, body: Any) -> None:
        """One answered request; a 4xx also counts as a refusal, by its JSON code."""
        with self._lock:
            key = (route, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            if 400 <= status < 500:
                code = body.get("code") if isinstance(body, dict) else None
                self._refuse(reason_of(code if isinstance(code, str) else ""))

    def count_refusal(self, reason: str) -> None:
        """A refusal that never became an answer of ``Answers`` (the transport's own)."""
        with self._lock:
            self._refuse(reason)

    def _refuse(self, reason: str) -> None:
        reason = self._reason(reason)
        self._refused[reason] = self._refused.get(reason, 0) + 1

    def count_refresh(self, route: str, result: str) -> None:
        with self._lock:
            key = (route, self._result(result))
            self._refreshes[key] = self._refreshes.get(key, 0) + 1

    def render(self, expiries: dict[str, Optional[float]], idle: dict[str, bool]) -> bytes:
        """The page: every family's HELP and TYPE, then its samples (sorted, stable)."""
        with self._lock:
            requests = dict(self._requests)
            refreshes = dict(self._refreshes)
            refused = dict(self._refused)
        samples: dict[str, list[tuple[dict[str, str], float]]] = {
            "assume_provider_requests_total": [
                ({"route": route, "code": code}, n) for (route, code), n in sorted(requests.items())
            ],
            "assume_provider_refreshes_total": [
                ({"route": route, "result": result}, n)
                for (route, result), n in sorted(refreshes.items())
            ],
            "assume_provider_credentials_expiry_seconds": [
                ({"route": route}, seconds)
                for route, seconds in sorted(expiries.items())
                if seconds is not None
            ],
            "assume_provider_refused_total": [
                ({"reason": reason}, n) for reason, n in sorted(refused.items())
            ],
            "assume_provider_route_idle": [
                ({"route": route}, 1 if is_idle else 0) for route, is_idle in sorted(idle.items())
            ],
        }
        lines = []
        for name, kind, text in FAMILIES:
            lines.append(f"# HELP {name} {escape_help(text)}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(sample_line(name, labels, value) for labels, value in samples[name])
        return ("\n".join(lines) + "\n").encode("utf-8")


def reason_of(code: str) -> str:
    """The ``reason`` label of a refusal whose JSON code is ``code``."""
    known = REASONS.get(code)
    if known is not None:
        return known
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", code).lower()
    return re.sub(r"[^a-z0-9_]", "", words) or OTHER


def sample_line(name: str, labels: dict[str, str], value: float) -> str:
    inside = ",".join(f'{key}="{escape_label(text)}"' for key, text in labels.items())
    return f"{name}{{{inside}}} {format_value(value)}"


def escape_label(value: str) -> str:
    """A label value as the format wants it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text: backslash and newline escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
