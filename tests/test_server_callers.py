"""Who may call (INTERFACE.md "The server on a shared host"): the kernel's owner of a loopback
connection, and `serve`'s allow lists on `/` and on a profile route, by user and by group.

Two real users make the requests: root (this process, or its children) and ``nobody``
(65534, primary group ``nogroup``), through ``setpriv``, with a raw HTTP GET carrying the
token, which the child gets in its environment (nobody cannot read the 0600 token file).
The tests that need nobody run only as root with setpriv (CI runs as root).
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import run_tool, write_config
from server_support import RunningServer, serving
from testbed import TestBed

from assume_provider.config.profiles import ConfigFiles
from assume_provider.errors import ConfigError
from assume_provider.server import callers
from assume_provider.server.callers import (
    AllowList,
    CallerPolicy,
    RefusalLog,
    option_list,
    profile_list,
)
from assume_provider.server.sock_diag import LookupUnavailable, SocketOwners

NOBODY = 65534
SETPRIV = shutil.which("setpriv")
AS_ROOT = os.geteuid() == 0

GET = """\
import json, os, socket, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
connection = socket.create_connection((host.strip("[]"), port), timeout=60)
head = f"GET {path} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\nConnection: close\\r\\n"
head += f"Authorization: {os.environ['SERVER_TOKEN']}\\r\\n\\r\\n"
connection.sendall(head.encode())
data = b""
while True:
    chunk = connection.recv(65536)
    if not chunk:
        break
    data += chunk
status, _, body = data.partition(b"\\r\\n\\r\\n")
print(json.dumps([int(status.split()[1]), json.loads(body)]))
"""

HOLD = """\
import socket, sys
connection = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
print(connection.getsockname()[1], flush=True)
sys.stdin.read()
"""


def _interpreter_for_nobody() -> str | None:
    """A Python that user nobody can run (``-I -S``: the standard library only)."""
    if not (AS_ROOT and SETPRIV):
        return None
    for candidate in (os.path.realpath(sys._base_executable), "/usr/bin/python3"):
        done = subprocess.run(
            [*_as_nobody(), candidate, "-I", "-S", "-c", "pass"],
            cwd="/",
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            return candidate
    return None


def _as_nobody() -> list[str]:
    assert SETPRIV is not None
    return [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


PYTHON_FOR_NOBODY = _interpreter_for_nobody()
needs_nobody = pytest.mark.skipif(
    PYTHON_FOR_NOBODY is None,
    reason="needs root, setpriv and a Python user nobody can run (CI has them)",
)


def get_as(user: str, server: RunningServer, path: str, token: str | None = None) -> Any:
    """(status, JSON body) of a GET by ``user`` ("root": this process's children, "nobody":
    through setpriv) with the token (or ``token``), asked again while the route's first
    refresh is under way, as an SDK does."""
    host, port = server.url.split("//")[1].rstrip("/").rsplit(":", 1)
    prefix = _as_nobody() if user == "nobody" else []
    python = PYTHON_FOR_NOBODY if user == "nobody" else sys.executable
    assert python is not None
    env = {"SERVER_TOKEN": server.token if token is None else token, "PATH": "/usr/bin:/bin"}
    for _ in range(60):
        done = subprocess.run(
            [*prefix, python, "-I", "-S", "-c", GET, host, port, path],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        status, body = json.loads(done.stdout)
        if body.get("code") != "RefreshInProgress":
            return status, body
        time.sleep(0.5)
    return status, body


def _start(bed: TestBed, env: dict[str, str], tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    return serving(env, ["--role-arn", bed.world.target_role_arn, *extra], tmp_path / "token")


def _is_credential(answer: Any) -> bool:
    return answer[0] == 200 and {"AccessKeyId", "SecretAccessKey", "Token"} <= set(answer[1])


def _refused(answer: Any, uid: int, route: str) -> bool:
    status, body = answer
    return status == 403 and body == {
        "code": "CallerNotAllowed",
        "message": f"user ID {uid} may not use route {route}",
    }


# -- the kernel's answer -------------------------------------------------------------------


@contextlib.contextmanager
def _held_by_nobody(host: str, port: int) -> Iterator[int]:
    """A connection to ``host:port`` held open by a process of user nobody; its local port."""
    assert PYTHON_FOR_NOBODY is not None
    child = subprocess.Popen(
        [*_as_nobody(), PYTHON_FOR_NOBODY, "-I", "-S", "-c", HOLD, host, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert child.stdout is not None
        yield int(child.stdout.readline())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_kernel_names_the_owner_of_each_end_of_a_loopback_connection(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    owners = SocketOwners.open_checked(host)
    with owners_closed(owners), socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(8)
        me = os.geteuid()
        own = socket.create_connection(listener.getsockname()[:2])
        accepted, peer = listener.accept()
        with accepted:
            server_end = accepted.getsockname()
            with own:
                assert owners.owner_uid(peer, server_end) == me
                assert owners.owner_uid(server_end, peer) == me  # the server's end, the other way
                assert owners.owner_uid((host, peer[1] ^ 1), server_end) is None  # no such one
            # The client closed first: what is left of its end belongs to no process (the
            # kernel reports user 0 for it), and must never pass for root.
            assert owners.owner_uid(peer, server_end) is None
        if PYTHON_FOR_NOBODY is None:
            return
        with _held_by_nobody(host, listener.getsockname()[1]) as port:
            accepted, peer = listener.accept()
            assert peer[1] == port
            assert owners.owner_uid(peer, accepted.getsockname()) == NOBODY
            assert owners.owner_uid(accepted.getsockname(), peer) == me
        with accepted:  # nobody's process has exited: its end is the kernel's now
            assert owners.owner_uid(peer, accepted.getsockname()) is None


@contextlib.contextmanager
def owners_closed(owners: SocketOwners) -> Iterator[None]:
    try:
        yield
    finally:
        owners.close()


# -- the lists -----------------------------------------------------------------------------


def test_users_and_groups_by_name_or_id_and_a_group_by_its_member_list() -> None:
    assert option_list([], []) is None
    by_name = option_list(["root", "nobody"], [])
    assert by_name is not None and by_name.uids == {0, NOBODY}
    assert by_name.allows(0) and by_name.allows(NOBODY) and not by_name.allows(1)
    numeric = option_list(["4242000"], [])  # no passwd entry: taken as it is
    assert numeric is not None and numeric.allows(4242000) and not numeric.allows(0)
    nogroup = option_list([], [grp.getgrgid(NOBODY).gr_name])
    assert nogroup is not None and nogroup.allows(NOBODY) and not nogroup.allows(0)
    root_group = option_list([], ["0"])
    assert root_group is not None and root_group.allows(0) and not root_group.allows(NOBODY)
    assert not root_group.allows(4242000)  # no passwd entry: in no group
    # A group that lists a user as a member who has another primary group: nobody is
    # named in the member list of a group ID that is not nobody's primary one (built as
    # resolve() builds it from the group database, so no system group has to exist).
    unrelated_gid = 4242001
    assert pwd.getpwuid(NOBODY).pw_gid != unrelated_gid
    listed = AllowList(frozenset(), frozenset({unrelated_gid}), frozenset({"nobody"}), "test")
    assert listed.allows(NOBODY) and not listed.allows(0)


def test_unknown_names_and_empty_keys_are_config_errors_naming_their_origin(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"user 'no-such-user-x' \(from option --allow-user\)"):
        option_list(["no-such-user-x"], [])
    with pytest.raises(ConfigError, match=r"group 'no-such-group-x' \(from option --allow-group\)"):
        option_list([], ["no-such-group-x"])
    config = tmp_path / "config"
    config.write_text(
        "[profile bad]\nassume_provider_allow_groups = nogroup, no-such-group-x\n"
        "[profile empty]\nassume_provider_allow_users = ,\n"
    )
    files = ConfigFiles(str(config), None)
    with pytest.raises(ConfigError) as bad:
        profile_list(files, "bad")
    assert str(bad.value) == (
        "invalid group 'no-such-group-x' (from key assume_provider_allow_groups in profile "
        f"'bad' of {config}): no such group in this system's group database (a numeric ID is "
        "taken as it is)"
    )
    with pytest.raises(ConfigError, match=r"assume_provider_allow_users.*an empty list"):
        profile_list(files, "empty")


def test_lists_where_the_kernel_cannot_name_callers_are_refused_not_ignored(
    tmp_path: Path,
) -> None:
    unavailable = LookupUnavailable("this system has no netlink (Linux only)")
    allowed = option_list(["root"], [])
    with pytest.raises(ConfigError, match="cannot learn a caller's user: this system has no"):
        CallerPolicy(allowed, unavailable, {})
    config = tmp_path / "config"
    config.write_text("[profile p]\nassume_provider_allow_users = root\n")
    policy = CallerPolicy(None, unavailable, {"AWS_CONFIG_FILE": str(config)})
    with pytest.raises(ConfigError, match="profile 'p'"):
        policy.check_profiles()
    with pytest.raises(ConfigError, match="profile 'p'"):
        policy.lookup("/profile/p")
    assert policy.lookup("/") is None  # no list on / : nothing to refuse


def test_a_list_read_when_a_reload_comes_is_read_again_at_the_next_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile route's list whose read was under way when a reload forgot the lists (from
    the files as they were, perhaps) answers that one request only: a reload that narrowed
    the list is never undone by a read that began before it. The read is paused between
    the file and the table by wrapping the real reader."""
    config = tmp_path / "config"
    config.write_text("[profile p]\nassume_provider_allow_users = 4242000\n")
    environ = {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "c")}
    owners = SocketOwners.open()
    policy = CallerPolicy(None, owners, environ)
    read, go = threading.Event(), threading.Event()
    real = callers.profile_list

    def read_then_wait(files: ConfigFiles, name: str) -> AllowList | None:
        allowed = real(files, name)
        if threading.current_thread().name == "early":
            read.set()
            go.wait(60)
        return allowed

    monkeypatch.setattr(callers, "profile_list", read_then_wait)
    early = threading.Thread(target=policy.lookup, args=("/profile/p",), name="early")
    early.start()
    try:
        assert read.wait(60)
        config.write_text("[profile p]\nassume_provider_allow_users = 4242001\n")
        policy.reload()  # what SIGHUP does
    finally:
        go.set()
        early.join(60)
    now = policy.lookup("/profile/p")
    owners.close()
    assert now is not None and now.uids == {4242001}


def test_refusals_are_one_line_per_user_and_route_a_minute_in_bounded_memory() -> None:
    lines: list[str] = []
    now = [1000.0]
    log = RefusalLog(lines.append, lambda: now[0])
    for _ in range(5):
        log.refused(NOBODY, "/", "--allow-user/--allow-group")
    log.refused(NOBODY, "/profile/p", "profile 'p'")
    assert lines == [
        "route /: CallerNotAllowed: user ID 65534 is not in --allow-user/--allow-group",
        "route /profile/p: CallerNotAllowed: user ID 65534 is not in profile 'p' "
        "(4 earlier refusals not shown)",
    ]
    now[0] += 59.0
    log.refused(NOBODY, "/", "--allow-user/--allow-group")
    now[0] += 1.0
    log.refused(NOBODY, "/", "--allow-user/--allow-group")
    assert lines[2:] == [
        "route /: CallerNotAllowed: user ID 65534 is not in --allow-user/--allow-group "
        "(1 earlier refusals not shown)"
    ]

    flood: list[str] = []
    log = RefusalLog(flood.append, lambda: now[0])
    for uid in range(1000, 1000 + 3 * RefusalLog.MAX_KEYS):  # a flood of users
        log.refused(uid, "/", "x")
    assert len(flood) == RefusalLog.MAX_KEYS  # the table is full: the rest go unsaid
    assert len(log._said) == RefusalLog.MAX_KEYS
    now[0] += 60.0
    log.refused(None, "/", "x")  # room again once the old entries are a minute old
    assert flood[-1] == (
        "route /: CallerNotAllowed: a caller whose user is unknown is not in x "
        f"({2 * RefusalLog.MAX_KEYS} earlier refusals not shown)"
    )
    assert len(log._said) == 1


# -- through serve -------------------------------------------------------------------------


@needs_nobody
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_root_only_on_slash_refuses_nobody_whatever_token(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path, host: str
) -> None:
    options = ("--host", host, "--allow-user", "root")
    with _start(aws_env, subprocess_env, tmp_path, *options) as server:
        assert _is_credential(get_as("root", server, "/"))
        refused = [get_as("nobody", server, "/") for _ in range(3)]  # the right token
        wrong_token = get_as("nobody", server, "/", token="wrong-" + server.token)
        root_wrong_token = get_as("root", server, "/", token="wrong-" + server.token)
        health = get_as("nobody", server, "/healthz")
        code, err = server.stop()
    assert code == 0
    assert all(_refused(answer, NOBODY, "/") for answer in refused), refused
    assert wrong_token[0] == 401 and root_wrong_token[0] == 401  # the token is checked first
    assert health[0] == 200  # no credential there, no list
    lines = [line for line in err.splitlines() if "CallerNotAllowed" in line]
    assert lines == [
        "assume-provider: serve: route /: CallerNotAllowed: user ID 65534 is not in "
        "--allow-user/--allow-group"
    ]
    assert server.token not in err and "every local process" not in err


@needs_nobody
@pytest.mark.parametrize(
    ("options", "allowed", "refused"),
    [
        (["--allow-user", "nobody"], "nobody", "root"),
        (["--allow-user", "65534", "--allow-user", "4242000"], "nobody", "root"),
        (["--allow-group", "nogroup"], "nobody", "root"),
        (["--allow-group", "root"], "root", "nobody"),
        (["--allow-group", "0", "--allow-user", "nobody"], "both", None),
    ],
)
def test_slash_by_user_and_by_group(
    aws_env: TestBed,
    subprocess_env: dict[str, str],
    tmp_path: Path,
    options: list[str],
    allowed: str,
    refused: str | None,
) -> None:
    with _start(aws_env, subprocess_env, tmp_path, *options) as server:
        answers = {user: get_as(user, server, "/") for user in ("root", "nobody")}
        assert server.stop()[0] == 0
    for user, answer in answers.items():
        if user == refused:
            assert _refused(answer, 0 if user == "root" else NOBODY, "/"), answer
        else:
            assert allowed in (user, "both") and _is_credential(answer), (user, answer)


@needs_nobody
def test_profile_routes_by_user_and_by_group_and_slash_open_to_token_holders(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    hop = aws_env.world.hop_role_arn
    write_config(
        subprocess_env,
        f"[profile for-nobody]\nassume_provider_role_arn = {hop}\n"
        "assume_provider_allow_users = nobody\n"
        f"[profile for-root-group]\nassume_provider_role_arn = {hop}\n"
        "assume_provider_allow_groups = root, 4242000\n"
        f"[profile open]\nassume_provider_role_arn = {hop}\n",
    )
    with _start(aws_env, subprocess_env, tmp_path) as server:
        answers = {
            (user, path): get_as(user, server, path)
            for path in ("/", "/profile/for-nobody", "/profile/for-root-group", "/profile/open")
            for user in ("root", "nobody")
        }
        code, err = server.stop()
    assert code == 0
    refused = {("root", "/profile/for-nobody"): 0, ("nobody", "/profile/for-root-group"): NOBODY}
    for (user, path), answer in answers.items():
        if (user, path) in refused:
            assert _refused(answer, refused[(user, path)], path), (user, path, answer)
        else:
            assert _is_credential(answer), (user, path, answer)
    assert "every local process" not in err  # the profiles have lists
    assert err.count("route / names no callers") == 1  # but / has none: said once
    assert sum("CallerNotAllowed" in line for line in err.splitlines()) == 2


def test_no_list_anywhere_is_said_once_at_start(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    with _start(aws_env, subprocess_env, tmp_path) as server:
        status, _, _ = server.get("/")
        code, err = server.stop()
    assert (code, status) == (0, 200)
    assert err.count("every local process that holds the token is served") == 1
    with _start(aws_env, subprocess_env, tmp_path, "--allow-group", "root") as server:
        code, err = server.stop()
    assert code == 0 and "every local process" not in err
    assert "route / names no callers" not in err


@pytest.mark.parametrize(
    ("options", "config", "named"),
    [
        (
            ["--allow-user", "no-such-user-x"],
            "",
            "user 'no-such-user-x' (from option --allow-user)",
        ),
        (
            ["--allow-user", "root", "--allow-group", "no-such-group-x"],
            "",
            "group 'no-such-group-x' (from option --allow-group)",
        ),
        ([], "assume_provider_allow_users = root, no-such-user-x\n", "profile 'p' of "),
        ([], "assume_provider_allow_groups = no-such-group-x\n", "profile 'p' of "),
    ],
)
def test_an_unknown_user_or_group_exits_2_naming_where_it_came_from(
    aws_env: TestBed,
    subprocess_env: dict[str, str],
    tmp_path: Path,
    options: list[str],
    config: str,
    named: str,
) -> None:
    role = aws_env.world.target_role_arn
    write_config(subprocess_env, f"[profile p]\nassume_provider_role_arn = {role}\n{config}")
    token = tmp_path / "token"
    done = run_tool(
        ["serve", "--port", "0", "--token-file", str(token), "--role-arn", role, *options],
        subprocess_env,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and named in done.stderr, done.stderr
    assert not token.exists()  # nothing left behind


def test_a_profile_list_made_invalid_after_start_is_its_route_500(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    hop = aws_env.world.hop_role_arn
    write_config(subprocess_env, f"[profile p]\nassume_provider_role_arn = {hop}\n")
    with _start(aws_env, subprocess_env, tmp_path) as server:
        write_config(
            subprocess_env,
            f"[profile p]\nassume_provider_role_arn = {hop}\n"
            "assume_provider_allow_users = no-such-user-x\n",
        )
        status, _, body = server.get("/profile/p")
        again = server.get("/profile/p")
        assert server.stop()[0] == 0
    assert status == 500 and body["code"] == "ConfigError"
    assert "no-such-user-x" in body["message"] and "assume_provider_allow_users" in body["message"]
    assert again[0] == 500  # never served
