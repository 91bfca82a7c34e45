"""``GET /metrics`` parsed by the Prometheus reference parser (``prometheus_client``), what
``/healthz`` shows without the token, and the bounded de-duplication of the loop's log lines.
The server runs in this process (``server`` fixture); its clients are plain HTTP requests."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from inprocess_server import get_json as _get
from prometheus_client.parser import text_string_to_metric_families
from testbed import TestBed
from testbed.proxy import Fault

import assume_provider
from assume_provider.engine import events
from assume_provider.server import limits as server_limits
from assume_provider.server.http import CredentialHTTPServer
from assume_provider.server.limits import OncePerInterval
from assume_provider.server.metrics import MAX_RESULTS, OTHER, ServerMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _raw_get(
    server: CredentialHTTPServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def _scrape(server: CredentialHTTPServer) -> tuple[str, Samples]:
    """The page, and every sample by (name, sorted labels), as the reference parser reads it."""
    status, headers, body = _raw_get(server, "/metrics")  # no token
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return body.decode("utf-8"), _parse(body.decode("utf-8"))


def _parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _labels(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(labels)[label] for sample, labels in samples if sample == name}


class _Heard:
    """Set once the server's own refresh listener has taken in ``count`` events: listeners
    run in the order they were added, and this one is added after the server's."""

    def __init__(self, count: int = 1) -> None:
        self.count = count
        self.seen: list[events.RefreshEvent] = []
        self.done = threading.Event()

    def __call__(self, event: events.RefreshEvent) -> None:
        self.seen.append(event)
        if len(self.seen) >= self.count:
            self.done.set()


def test_metrics_count_answers_refusals_and_refreshes_and_parse(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path
) -> None:
    aws_config_file.write_text(
        f"[profile other]\nassume_provider_role_arn = {aws_env.world.hop_role_arn}\n"
        "[profile plain]\nregion = us-east-1\n"
    )
    heard = _Heard(count=2)
    assume_provider.add_refresh_listener(heard)
    try:
        first = _get(server)
        assert first[0] == 200
        assert _get(server)[0] == 200
        other = _get(server, "/profile/other")
        assert other[0] == 200
        assert heard.done.wait(60)  # both fetches' events have reached the server too
    finally:
        assume_provider.remove_refresh_listener(heard)
    token = server.token.decode()
    assert _raw_get(server, "/")[0] == 401  # no token
    assert _raw_get(server, "/", {"Authorization": "wrong"})[0] == 401
    assert _raw_get(server, "/", {"Host": "evil.example", "Authorization": token})[0] == 403
    assert _raw_get(server, "/metrics", {"Host": "evil.example"})[0] == 403  # the Host check
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/", body=b"", headers={"Authorization": token})
    assert connection.getresponse().status == 405
    connection.close()
    for path in ("/nope", "/profile/missing", "/profile/plain"):
        assert _get(server, path)[0] == 404
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        raw.sendall(b"GARBAGE\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400 ")

    text, samples = _scrape(server)
    requests = "assume_provider_requests_total"
    assert samples[(requests, (("code", "200"), ("route", "/")))] == 2
    assert samples[(requests, (("code", "200"), ("route", "/profile/other")))] == 1
    assert samples[(requests, (("code", "401"), ("route", "/")))] == 2
    assert samples[(requests, (("code", "403"), ("route", "/")))] == 1
    assert samples[(requests, (("code", "403"), ("route", "/metrics")))] == 1
    assert samples[(requests, (("code", "405"), ("route", "/")))] == 1
    assert samples[(requests, (("code", "404"), ("route", OTHER)))] == 3
    refused = {
        dict(labels)["reason"]: value
        for (name, labels), value in samples.items()
        if name == "assume_provider_refused_total"
    }
    assert refused["token"] == 2 and refused["host"] == 2 and refused["method"] == 1
    assert refused["route"] == 3 and refused["bad_request"] == 1 and refused["caller"] == 0
    refreshes = "assume_provider_refreshes_total"
    assert samples[(refreshes, (("result", "refreshed"), ("route", "/")))] == 1
    assert samples[(refreshes, (("result", "refreshed"), ("route", "/profile/other")))] == 1
    expiry = "assume_provider_credentials_expiry_seconds"
    assert 3000 < samples[(expiry, (("route", "/"),))] <= 3600
    assert 3000 < samples[(expiry, (("route", "/profile/other"),))] <= 3600
    assert samples[("assume_provider_route_idle", (("route", "/profile/other"),))] == 0
    for name in (requests, refreshes, expiry, "assume_provider_refused_total"):
        assert f"# HELP {name} " in text and f"# TYPE {name} " in text
    # Scraped again, /metrics itself is counted, and nothing else moved.
    _, again = _scrape(server)
    assert again[(requests, (("code", "200"), ("route", "/metrics")))] == 1
    assert again[(requests, (("code", "200"), ("route", "/")))] == 2

    body = first[1]
    for secret in (body["AccessKeyId"], body["SecretAccessKey"], body["Token"], token):
        assert secret not in text
    assert other[1]["AccessKeyId"] not in text


def test_unknown_paths_do_not_grow_the_label_set(server: CredentialHTTPServer) -> None:
    for number in range(200):
        path = f"/x{number}" if number % 2 else f"/profile/nobody-{number}"
        assert _get(server, path)[0] == 404
    _, samples = _scrape(server)
    assert _labels(samples, "assume_provider_requests_total", "route") == {OTHER}
    assert samples[("assume_provider_requests_total", (("code", "404"), ("route", OTHER)))] == 200
    reasons = _labels(samples, "assume_provider_refused_total", "reason")
    assert len(reasons) <= 16


def test_refresh_failures_are_counted_by_aws_error_code(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path
) -> None:
    aws_config_file.write_text(
        f"[profile denied]\nassume_provider_role_arn = {aws_env.world.hop_role_arn}\n"
    )
    aws_env.proxy.inject(Fault.error("AccessDenied", 403), action="AssumeRole", times=None)
    heard = _Heard()
    assume_provider.add_refresh_listener(heard)
    try:
        status, body = _get(server, "/profile/denied")
        assert status == 503 and body["code"] == "AccessDenied"
        assert heard.done.wait(60)
    finally:
        assume_provider.remove_refresh_listener(heard)
    _, samples = _scrape(server)
    key = (
        "assume_provider_refreshes_total",
        (("result", "AccessDenied"), ("route", "/profile/denied")),
    )
    assert samples[key] == 1
    assert (
        "assume_provider_credentials_expiry_seconds",
        (("route", "/profile/denied"),),
    ) not in samples


def test_refresh_results_beyond_the_bound_count_as_other() -> None:
    metrics = ServerMetrics()
    for number in range(100):
        metrics.count_refresh("/", f"Error{number}")
        metrics.count_refresh("/", "refreshed")
    samples = _parse(metrics.render({}, {}).decode())
    results = _labels(samples, "assume_provider_refreshes_total", "result")
    assert len(results) == MAX_RESULTS + 1  # "refreshed" and the first codes, then "other"
    assert OTHER in results and "refreshed" in results and "Error99" not in results
    other = ("assume_provider_refreshes_total", (("result", OTHER), ("route", "/")))
    assert samples[other] == 100 - (MAX_RESULTS - 1)
    assert (
        samples[("assume_provider_refreshes_total", (("result", "refreshed"), ("route", "/")))]
        == 100
    )


def test_label_values_are_escaped_so_the_reference_parser_reads_them_back() -> None:
    metrics = ServerMetrics()
    awkward = '/profile/a"b\\c\nd'
    metrics.count_answer(awkward, 200, {})
    metrics.count_refresh(awkward, 'Code"\\')
    text = metrics.render({awkward: 12.5, "/": None}, {awkward: True}).decode()
    samples = _parse(text)
    labels = (("code", "200"), ("route", awkward))
    assert samples[("assume_provider_requests_total", labels)] == 1
    result = (("result", 'Code"\\'), ("route", awkward))
    assert samples[("assume_provider_refreshes_total", result)] == 1
    assert samples[("assume_provider_credentials_expiry_seconds", (("route", awkward),))] == 12.5
    assert samples[("assume_provider_route_idle", (("route", awkward),))] == 1
    assert ("assume_provider_credentials_expiry_seconds", (("route", "/"),)) not in samples
    for line in text.splitlines():  # no raw newline inside a label value
        assert line.startswith(("# HELP ", "# TYPE ", "assume_provider_")), line


def test_healthz_names_profile_routes_only_to_token_holders(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path
) -> None:
    aws_config_file.write_text(
        f"[profile secret-team]\nassume_provider_role_arn = {aws_env.world.hop_role_arn}\n"
    )
    assert _get(server)[0] == 200
    assert _get(server, "/profile/secret-team")[0] == 200
    status, _, plain = _raw_get(server, "/healthz")
    assert status == 200
    health = json.loads(plain)
    assert set(health) == {"status", "routes", "profile_routes"}
    assert set(health["routes"]) == {"/"}
    assert health["profile_routes"] == {"ok": 1, "degraded": 0, "failing": 0, "idle": 0}
    assert b"secret-team" not in plain
    status, detailed = _get(server, "/healthz")  # with the token
    assert status == 200
    assert set(detailed) == {"status", "routes"}
    assert set(detailed["routes"]) == {"/", "/profile/secret-team"}
    assert detailed["routes"]["/profile/secret-team"]["last_error"] is None


def test_log_de_duplication_is_bounded_and_says_each_kind_once_a_minute() -> None:
    now = [0.0]
    said = OncePerInterval(60.0, max_kinds=8, clock=lambda: now[0])
    assert said("a") and not said("a")
    for number in range(10_000):
        said(("flood", number))
    assert len(said) == 8  # the oldest kinds were forgotten
    now[0] = 59.0
    assert not said(("flood", 9_999))
    now[0] = 60.0
    assert said(("flood", 9_999))


def test_loop_errors_are_said_once_a_minute_per_kind_in_bounded_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flood of distinct errors (each naming its connection) is one line per kind."""
    caplog.set_level(logging.WARNING, logger="assume_provider.server.limits")
    loop = asyncio.new_event_loop()
    try:
        for number in range(5_000):
            context: dict[str, Any] = {
                "message": "socket.accept() out of system resource (test)",
                "exception": OSError(24, f"Too many open files, connection {number}"),
            }
            server_limits.quiet_loop_errors(loop, context)
    finally:
        loop.close()
    lines = [r.getMessage() for r in caplog.records if "(test)" in r.getMessage()]
    assert len(lines) == 1 and "connection 0" in lines[0]
    assert len(server_limits._once_a_minute) <= server_limits._once_a_minute.max_kinds
