"""SIGHUP re-reads the config files (a real ``serve`` process, and the server in this process),
and a profile route nobody asks for stops refreshing in the background (the server in this
process, with the engine's clock moved by the test: hours pass without sleeping)."""

from __future__ import annotations

import os
import select
import signal
import threading
from pathlib import Path

import pytest
from fake_time import FakeClock
from inprocess_server import expiry_of as _expiry
from inprocess_server import get_json as _get
from serve_process import NotifyListener, ServeProcess, get
from server_support import RunningServer, serving
from testbed import TestBed

import assume_provider
from assume_provider.engine import events
from assume_provider.server.http import CredentialHTTPServer
from assume_provider.server.route import Route
from assume_provider.server.upkeep import IDLE_LIFETIMES


def _profiles(**roles: str) -> str:
    return "".join(
        f"[profile {name}]\nassume_provider_role_arn = {arn}\n" for name, arn in roles.items()
    )


def _wait_for_stderr_line(server: RunningServer, containing: str) -> str:
    """The first stderr line containing ``containing``, read as it arrives (60 s: a
    failure-only bound); the lines before it are kept in ``server.stderr_lines``."""
    assert server.process.stderr is not None
    fd = server.process.stderr.fileno()
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        chunk = os.read(fd, 4096) if ready else b""
        assert chunk, f"serve said no line with {containing!r}: {server.stderr_lines}"
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            text = line.decode()
            server.stderr_lines.append(text)
            if containing in text:
                return text


def test_sighup_rereads_the_config_files(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    bed = aws_env
    world = bed.world
    config = Path(subprocess_env["AWS_CONFIG_FILE"])
    hop = world.hop_role_arn
    config.write_text(_profiles(keep=hop, change=hop, gone=hop))
    args = ["--role-arn", world.target_role_arn]
    with serving(subprocess_env, args, tmp_path / "t" / "token") as server:
        before = {path: server.get(path) for path in ("/", "/profile/keep", "/profile/change")}
        assert server.get("/profile/gone")[0] == 200
        assert all(answer[0] == 200 for answer in before.values())
        assert before["/profile/change"][2]["AccountId"] == world.account_b  # HopRole's
        assumed = bed.proxy.count(action="AssumeRole")
        assert assumed == 4

        config.write_text(_profiles(keep=hop, change=world.target_role_arn, new=hop))
        server.process.send_signal(signal.SIGHUP)
        line = _wait_for_stderr_line(server, "reload:")
        assert "changed /profile/change" in line
        assert "unchanged /profile/keep" in line
        assert "removed /profile/gone" in line
        assert str(config) in line

        for path in ("/", "/profile/keep"):  # their cached credentials, no AssumeRole
            status, _, body = server.get(path)
            assert status == 200
            assert body["AccessKeyId"] == before[path][2]["AccessKeyId"]
        assert bed.proxy.count(action="AssumeRole") == assumed
        status, _, missing = server.get("/profile/gone")
        assert status == 404 and missing["code"] == "NotFound"
        status, _, changed = server.get("/profile/change")  # the new settings: TargetRole
        assert status == 200
        assert changed["AccountId"] == world.account_a
        assert changed["AccessKeyId"] != before["/profile/change"][2]["AccessKeyId"]
        calls = bed.proxy.calls(action="AssumeRole")
        assert len(calls) == assumed + 1
        assert calls[-1].params["RoleArn"] == world.target_role_arn

        server.process.send_signal(signal.SIGHUP)  # again: nothing changed this time
        again = _wait_for_stderr_line(server, "reload:")
        assert "unchanged /profile/keep, /profile/change" in again  # in order of creation
        assert bed.proxy.count(action="AssumeRole") == assumed + 1
        code, err = server.stop()
    assert code == 0
    text = err + "\n".join(server.stderr_lines)
    for body in (*(answer[2] for answer in before.values()), changed):
        assert body["SecretAccessKey"] not in text and body["Token"] not in text


def test_a_config_file_that_cannot_be_parsed_changes_no_route(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path
) -> None:
    aws_config_file.write_text(_profiles(team=aws_env.world.hop_role_arn))
    status, body = _get(server, "/profile/team")
    assert status == 200
    aws_config_file.write_text("[profile team\nbroken")
    line = server.routes.reload()
    assert "not reloaded" in line and line in server.lines  # type: ignore[attr-defined]
    status, again = _get(server, "/profile/team")
    assert status == 200 and again["AccessKeyId"] == body["AccessKeyId"]
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_a_reload_reads_allow_lists_again_and_a_refused_one_keeps_them(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path
) -> None:
    """Through the server's own reload (what SIGHUP runs): a changed allow list applies from
    the route's next request; a refused reload (a file that cannot be parsed) changes no
    list either. Forgotten there, the list would be read again from the broken file, which
    names no callers: the route would be open to every token holder."""
    me, other = os.geteuid(), os.geteuid() + 1  # this process is the only caller here
    profile = _profiles(team=aws_env.world.hop_role_arn)
    aws_config_file.write_text(profile + f"assume_provider_allow_users = {other}\n")
    status, body = _get(server, "/profile/team")
    assert (status, body.get("code")) == (403, "CallerNotAllowed"), sorted(body)
    aws_config_file.write_text(profile + f"assume_provider_allow_users = {me}\n")
    assert "unchanged /profile/team" in server.upkeep.reload_config()
    assert _get(server, "/profile/team")[0] == 200
    aws_config_file.write_text(profile + f"assume_provider_allow_users = {other}\n")
    assert "unchanged /profile/team" in server.upkeep.reload_config()
    assert _get(server, "/profile/team")[0] == 403
    aws_config_file.write_text("[profile team\nbroken")
    assert "not reloaded" in server.upkeep.reload_config()
    status, body = _get(server, "/profile/team")
    assert (status, body.get("code")) == (403, "CallerNotAllowed"), sorted(body)


def test_sighup_while_starting_neither_kills_the_server_nor_stops_it_serving(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """Before the server can reload there is nothing to re-read (profile routes read their
    profile at their first request): a SIGHUP then is ignored, not the default's death."""
    token_file = tmp_path / "t" / "token"
    args = ["--role-arn", aws_env.world.target_role_arn, "--port", "0", "--token-file"]
    notify = NotifyListener(tmp_path)
    env = {**subprocess_env, "NOTIFY_SOCKET": notify.address}
    serve = ServeProcess(env, [*args, str(token_file), "--debug"])
    try:
        # Building its botocore session: nothing is bound yet, no reload to run.
        assert serve.wait_for_stderr("botocore.hooks DEBUG Changing event name")
        serve.process.send_signal(signal.SIGHUP)
        url = serve.variables()["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        assert notify.next() == "READY=1"  # the first fetch has ended: / is cached
        status, body = get(url, token_file.read_text())
        assert status == 200, body
        serve.process.send_signal(signal.SIGTERM)
        assert serve.finish() == 0
    finally:
        serve.kill()
        notify.close()


def test_a_removed_profile_that_comes_back_is_served_again(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path
) -> None:
    aws_config_file.write_text(_profiles(team=aws_env.world.hop_role_arn))
    assert _get(server, "/profile/team")[0] == 200
    aws_config_file.write_text("[profile team]\nregion = us-east-1\n")  # no role any more
    assert "removed /profile/team" in server.routes.reload()
    assert _get(server, "/profile/team")[0] == 404
    aws_config_file.write_text(_profiles(team=aws_env.world.hop_role_arn))
    status, body = _get(server, "/profile/team")  # created again at its request
    assert status == 200 and body["AccountId"] == aws_env.world.account_b


def test_a_setting_botocore_reads_is_read_again_at_reload(
    server: CredentialHTTPServer,
    aws_env: TestBed,
    aws_config_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The region comes from the profile's botocore session, not from this package's own
    reading of the files: a reload builds a new session, so it sees the new one."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # it would win over the profile's region
    profile = _profiles(team=aws_env.world.hop_role_arn)
    aws_config_file.write_text(profile + "region = us-west-2\n")
    status, first = _get(server, "/profile/team")
    assert status == 200
    assert aws_env.proxy.calls(action="AssumeRole")[-1].region == "us-west-2"
    aws_config_file.write_text(profile + "region = eu-central-1\n")
    assert "changed /profile/team" in server.routes.reload()
    status, second = _get(server, "/profile/team")
    assert status == 200 and second["AccessKeyId"] != first["AccessKeyId"]
    calls = aws_env.proxy.calls(action="AssumeRole")
    assert len(calls) == 2 and calls[-1].region == "eu-central-1"


class _Refreshed:
    """Set when the server's listener has taken in a refresh event of ``route`` (this one is
    added after the server's, and listeners run in that order)."""

    def __init__(self) -> None:
        self.events: list[events.RefreshEvent] = []
        self.arrived = threading.Condition()

    def __call__(self, event: events.RefreshEvent) -> None:
        with self.arrived:
            self.events.append(event)
            self.arrived.notify_all()

    def wait_for(self, count: int) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.events) >= count, 60)


def _prefetch_thread(route: Route) -> threading.Thread | None:
    return route.engine._prefetcher.thread


def test_an_idle_profile_route_stops_refreshing_until_its_next_request(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path, fake_clock: FakeClock
) -> None:
    aws_config_file.write_text(_profiles(team=aws_env.world.hop_role_arn))
    refreshed = _Refreshed()
    assume_provider.add_refresh_listener(refreshed)
    try:
        status, first = _get(server, "/profile/team")
        assert status == 200 and refreshed.wait_for(1)
        route = server.routes.known("/profile/team")
        assert route is not None and abs(route.lifetime - (_expiry(first) - fake_clock())) < 1
        thread = _prefetch_thread(route)
        assert thread is not None and thread.is_alive()

        fake_clock.advance(IDLE_LIFETIMES * route.lifetime - 1)  # not yet two lifetimes
        server.routes.sweep_idle()
        assert not route.idle and _prefetch_thread(route) is thread
        fake_clock.advance(1)
        server.routes.sweep_idle()  # the loop does this every minute; here, now
        assert route.idle and _prefetch_thread(route) is None
        thread.join(60)
        assert not thread.is_alive()  # no background refresh any more
        assert any("/profile/team: no request for 2" in x for x in server.lines)  # type: ignore[attr-defined]
        assert aws_env.proxy.count(action="AssumeRole") == 1
        assert server.routes.idle() == {"/profile/team": True}  # /metrics' idle gauge

        status, second = _get(server, "/profile/team")  # expired: waits for a fetch
        assert status == 200 and second["AccessKeyId"] != first["AccessKeyId"]
        assert aws_env.proxy.count(action="AssumeRole") == 2
        assert not route.idle
        resumed = _prefetch_thread(route)
        assert resumed is not None and resumed.is_alive()
        assert any("/profile/team: asked again" in x for x in server.lines)  # type: ignore[attr-defined]
    finally:
        assume_provider.remove_refresh_listener(refreshed)


def test_an_idle_route_with_valid_credentials_serves_them_at_its_next_request(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path, fake_clock: FakeClock
) -> None:
    aws_config_file.write_text(_profiles(team=aws_env.world.hop_role_arn))
    refreshed = _Refreshed()
    assume_provider.add_refresh_listener(refreshed)
    try:
        status, first = _get(server, "/profile/team")
        assert status == 200 and refreshed.wait_for(1)
        route = server.routes.known("/profile/team")
        assert route is not None
        idle_after = IDLE_LIFETIMES * route.lifetime
        # Just before the route turns idle, its background refresh fetches (the refresh the
        # prefetch thread runs: the engine's one flight), and no request asks meanwhile.
        fake_clock.advance(idle_after - 60)
        fetched = route.refresh().result(60)
        assert fetched.access_key_id != first["AccessKeyId"] and refreshed.wait_for(2)
        fake_clock.advance(60)
        server.routes.sweep_idle()
        assert route.idle
        status, served = _get(server, "/profile/team")
        assert status == 200 and served["AccessKeyId"] == fetched.access_key_id  # the cached
        assert aws_env.proxy.count(action="AssumeRole") == 2
        assert not route.idle
    finally:
        assume_provider.remove_refresh_listener(refreshed)


def test_the_default_route_and_a_route_asked_for_never_turn_idle(
    server: CredentialHTTPServer, aws_env: TestBed, aws_config_file: Path, fake_clock: FakeClock
) -> None:
    aws_config_file.write_text(_profiles(team=aws_env.world.hop_role_arn))
    assert _get(server)[0] == 200
    assert _get(server, "/profile/team")[0] == 200
    route = server.routes.known("/profile/team")
    assert route is not None
    for _ in range(4):  # asked once per lifetime, as botocore asks
        fake_clock.advance(route.lifetime)
        assert _get(server, "/profile/team")[0] == 200
        server.routes.sweep_idle()
        assert not route.idle
    fake_clock.advance(IDLE_LIFETIMES * route.lifetime)
    server.routes.sweep_idle()
    assert route.idle
    default = server.routes.known("/")
    assert default is not None and not default.idle
