"""``share = disk``: processes of one user share credentials through the disk cache of
``credential-process`` (INTERFACE.md, "Sharing across processes").

Real processes against the test bed; counts, not times. Processes meant to start together
wait on a pipe the test closes once every one of them has said it is ready (no sleeps).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import pytest
from cli_support import run_tool
from testbed import TestBed

import assume_provider
from assume_provider.botocore.provider import AssumeRoleChainProvider
from assume_provider.config.inputs import SettingInputs
from assume_provider.diskcache.entry import Entry
from assume_provider.diskcache.key import key_of
from assume_provider.diskcache.store import DiskCache
from assume_provider.errors import ConfigError

# One child process: activated by zero-code (the variables), install() or register() with
# arguments; waits at the barrier (the read end of a pipe: EOF once the test closes it);
# prints the access key ID its session's credentials have (fetching them).
CHILD = textwrap.dedent(
    """
    import os, sys
    mode, barrier = sys.argv[1], int(sys.argv[2])
    import boto3, assume_provider
    arguments = {}
    if mode != "zero-code":
        arguments = dict(arg.split("=", 1) for arg in sys.argv[3:])
    if mode == "install":
        assume_provider.install(**arguments)
    session = boto3.Session()
    if mode == "register":
        assume_provider.register(session, **arguments)
    print("ready", flush=True)
    while os.read(barrier, 1):
        pass
    print(session.get_credentials().get_frozen_credentials().access_key, flush=True)
    """
)


@pytest.fixture
def env(subprocess_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    subprocess_env["ASSUME_PROVIDER_CACHE_DIR"] = str(tmp_path / "cache")
    return subprocess_env


def role_env(bed: TestBed, env: dict[str, str], **settings: str) -> dict[str, str]:
    """``env`` with the target role (and its external ID) and ``settings`` as variables."""
    variables = {
        "role_arn": bed.world.target_role_arn,
        "external_id": bed.world.external_id,
        "share": "disk",
        **settings,
    }
    return {**env, **{f"ASSUME_PROVIDER_{name.upper()}": v for name, v in variables.items()}}


def start_together(
    envs: list[dict[str, str]], mode: str = "zero-code", arguments: tuple[str, ...] = ()
) -> list[str]:
    """Start one process per environment, release them together, return their key IDs."""
    read_end, write_end = os.pipe()
    processes = []
    try:
        for child_env in envs:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", CHILD, mode, str(read_end), *arguments],
                    env=child_env,
                    pass_fds=(read_end,),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line == "ready\n", process.communicate(timeout=60)
    finally:
        os.close(read_end)
        os.close(write_end)  # the barrier opens: every child's read gets EOF
    key_ids = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        key_ids.append(stdout.strip())
    return key_ids


def assume_roles(bed: TestBed) -> int:
    return bed.proxy.count(action="AssumeRole")


def only_entry(folder: Path) -> Path:
    (entry,) = folder.glob("*.entry")
    return entry


# -- N processes, one AssumeRole ---------------------------------------------------------


def test_eight_zero_code_processes_started_together_cost_one_assume_role(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    key_ids = start_together([role_env(aws_env, env)] * 8)
    assert len(set(key_ids)) == 1 and key_ids[0].startswith("ASIA")
    assert assume_roles(aws_env) == 1
    assert aws_env.imds.credential_request_count == 1  # the others never asked the source


@pytest.mark.parametrize("mode", ["install", "register"])
def test_eight_processes_with_share_disk_as_an_argument_cost_one_assume_role(
    aws_env: TestBed, env: dict[str, str], mode: str
) -> None:
    world = aws_env.world
    arguments = (f"role_arn={world.target_role_arn}", f"external_id={world.external_id}")
    key_ids = start_together([env] * 8, mode, (*arguments, "share=disk"))
    assert len(set(key_ids)) == 1
    assert assume_roles(aws_env) == 1


def test_without_share_disk_every_process_assumes_the_role(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    key_ids = start_together([role_env(aws_env, env, share="process")] * 3)
    assert len(set(key_ids)) == 3
    assert assume_roles(aws_env) == 3
    assert not list((Path(env["ASSUME_PROVIDER_CACHE_DIR"])).glob("*.entry"))


def test_different_settings_never_share(aws_env: TestBed, env: dict[str, str]) -> None:
    world = aws_env.world
    by_name = [role_env(aws_env, env, session_name=name) for name in ("alpha", "beta")]
    two_hops = role_env(aws_env, env, role_arn=f"{world.hop_role_arn},{world.target_role_arn}")
    key_ids = start_together([*by_name * 3, *[two_hops] * 3])
    # Three chains, each fetched once: two of one hop, one of two hops.
    assert len(set(key_ids)) == 3
    assert key_ids[0] == key_ids[2] == key_ids[4] and key_ids[1] == key_ids[3] == key_ids[5]
    assert assume_roles(aws_env) == 1 + 1 + 2
    assert len(list(Path(env["ASSUME_PROVIDER_CACHE_DIR"]).glob("*.entry"))) == 3


# A process that finds a usable entry: which sessions it made, and its key.
COUNTING_CHILD = textwrap.dedent(
    """
    import botocore, boto3
    made = []
    botocore.register_initializer(lambda session: made.append(type(session).__name__))
    key = boto3.Session().get_credentials().get_frozen_credentials().access_key
    print(key, made.count("PrivateSession"))
    """
)


def test_a_process_served_by_the_entry_makes_no_private_session_and_no_source(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    """What a process that finds a valid entry still does is as little as possible: no copy
    of its session (nor the source resolver or STS client built on one), no IMDS request."""
    shared_env = role_env(aws_env, env)
    (first,) = start_together([shared_env])
    done = subprocess.run(
        [sys.executable, "-c", COUNTING_CHILD],
        env=shared_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [first, "0"]
    assert assume_roles(aws_env) == 1
    assert aws_env.imds.credential_request_count == 1  # the first process's, only


# -- one entry for the library and credential-process -----------------------------------


def test_credential_process_after_a_shared_process_answers_from_its_entry(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    shared_env = role_env(aws_env, env)
    (key_id,) = start_together([shared_env])
    result = run_tool(["credential-process"], shared_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["AccessKeyId"] == key_id
    assert assume_roles(aws_env) == 1


def test_a_shared_process_after_credential_process_uses_its_entry(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    shared_env = role_env(aws_env, env)
    without_share = {k: v for k, v in shared_env.items() if k != "ASSUME_PROVIDER_SHARE"}
    result = run_tool(["credential-process"], without_share)
    assert result.returncode == 0, result.stderr
    assert start_together([shared_env]) == [json.loads(result.stdout)["AccessKeyId"]]
    assert assume_roles(aws_env) == 1


def test_the_library_key_is_the_command_line_key(aws_env: TestBed, env: dict[str, str]) -> None:
    shared_env = role_env(aws_env, env)
    start_together([shared_env])
    cli_key = key_of(SettingInputs.from_environment({}, shared_env))
    assert only_entry(Path(env["ASSUME_PROVIDER_CACHE_DIR"])).name == f"{cli_key}.entry"


# -- refresh windows ---------------------------------------------------------------------


def _craft(path: Path, key_id: str, left: float, lifetime: float = 3600.0) -> None:
    """Replace the entry at ``path`` with one that has ``left`` seconds to live."""
    now = time.time()
    entry = Entry(key_id, "crafted/secret", "crafted-token", now + left, now + left - lifetime)
    DiskCache(str(path.parent)).open().write(path.name[: -len(".entry")], entry)


def test_an_entry_outside_its_refresh_windows_is_used(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    shared_env = role_env(aws_env, env)
    start_together([shared_env])
    entry = only_entry(Path(env["ASSUME_PROVIDER_CACHE_DIR"]))
    _craft(entry, "ASIACRAFTEDOUTSIDE01", left=3000.0)  # the 1-hour window starts at 900 s
    assert start_together([shared_env]) == ["ASIACRAFTEDOUTSIDE01"]
    assert assume_roles(aws_env) == 1


@pytest.mark.parametrize("left", [600.0, 30.0, -10.0])  # early window, last minute, expired
def test_an_entry_inside_its_refresh_windows_is_refreshed_and_written_back(
    aws_env: TestBed, env: dict[str, str], left: float
) -> None:
    shared_env = role_env(aws_env, env)
    start_together([shared_env])
    entry = only_entry(Path(env["ASSUME_PROVIDER_CACHE_DIR"]))
    _craft(entry, "ASIACRAFTEDINSIDE001", left=left)
    (key_id,) = start_together([shared_env])
    assert key_id != "ASIACRAFTEDINSIDE001"
    assert assume_roles(aws_env) == 2
    written = Entry.from_bytes(entry.read_bytes())
    assert written is not None and written.access_key_id == key_id
    assert written.expires_at - time.time() > 900  # the new credentials, fresh


def test_a_configured_refresh_window_decides_whether_an_entry_is_used(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    shared_env = role_env(aws_env, env, refresh_window_seconds="3300")
    start_together([shared_env])
    entry = only_entry(Path(env["ASSUME_PROVIDER_CACHE_DIR"]))
    _craft(entry, "ASIACRAFTEDWINDOW001", left=3000.0)  # outside the default window only
    assert start_together([shared_env]) != ["ASIACRAFTEDWINDOW001"]
    assert assume_roles(aws_env) == 2


# -- invalid values ----------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_provider_state")
def test_an_invalid_share_in_the_environment_is_a_config_error_naming_it(
    aws_env: TestBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSUME_PROVIDER_ROLE_ARN", aws_env.world.target_role_arn)
    monkeypatch.setenv("ASSUME_PROVIDER_SHARE", "everywhere")
    with pytest.raises(ConfigError) as caught:
        AssumeRoleChainProvider().load()
    assert "invalid share 'everywhere'" in str(caught.value)
    assert "environment variable ASSUME_PROVIDER_SHARE" in str(caught.value)
    assert aws_env.proxy.count() == 0


@pytest.mark.usefixtures("fresh_provider_state")
def test_an_invalid_share_in_the_config_file_is_a_config_error_naming_it(
    aws_env: TestBed, aws_config_file: Path
) -> None:
    aws_config_file.write_text(
        f"[default]\nassume_provider_role_arn = {aws_env.world.target_role_arn}\n"
        "assume_provider_share = host\n"
    )
    assume_provider.install()
    with pytest.raises(ConfigError) as caught:
        boto3.Session().get_credentials()
    message = str(caught.value)
    assert "invalid share 'host'" in message and "expected one of process, disk" in message
    assert f"key assume_provider_share in profile 'default' of {aws_config_file}" in message
    assert aws_env.proxy.count() == 0


def test_an_invalid_share_argument_fails_at_install() -> None:
    with pytest.raises(ConfigError, match="invalid share 'yes' \\(from argument share\\)"):
        AssumeRoleChainProvider(share="yes")


def test_an_invalid_share_fails_a_zero_code_process_before_any_request(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    code = "import boto3; boto3.client('sts').get_caller_identity()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=role_env(aws_env, env, share="Disk drive"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "invalid share 'Disk drive' (from environment variable ASSUME_PROVIDER_SHARE)" in (
        done.stderr
    )
    assert aws_env.proxy.count() == 0


# -- the cache rules on the library's path -----------------------------------------------


@pytest.fixture
def shared_session(aws_env: TestBed, fresh_provider_state: None, tmp_path: Path) -> boto3.Session:
    """A session registered in this process with ``share = disk`` and its own cache folder."""
    session = boto3.Session()
    world = aws_env.world
    assume_provider.register(
        session,
        role_arn=world.target_role_arn,
        external_id=world.external_id,
        share="disk",
        cache_dir=str(tmp_path / "cache"),
    )
    return session


def _key_id(session: boto3.Session) -> str:
    return str(session.get_credentials().get_frozen_credentials().access_key)


def test_the_library_writes_a_0700_folder_and_0600_entries_whatever_the_umask(
    shared_session: boto3.Session, tmp_path: Path
) -> None:
    old = os.umask(0)
    try:
        _key_id(shared_session)
    finally:
        os.umask(old)
    folder = tmp_path / "cache"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(only_entry(folder).stat().st_mode) == 0o600


def test_the_library_never_follows_a_symlink_planted_at_the_entry(
    aws_env: TestBed, shared_session: boto3.Session, tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    world = aws_env.world
    inputs = SettingInputs.from_environment(
        {"role_arn": world.target_role_arn, "external_id": world.external_id}, os.environ
    )
    folder.mkdir(mode=0o700)
    planted = tmp_path / "planted"
    now = time.time()
    planted.write_bytes(Entry("ASIAPLANTED000000001", "s", "t", now + 3600, now).to_bytes())
    planted.chmod(0o600)
    link = folder / f"{key_of(inputs)}.entry"
    link.symlink_to(planted)
    key_id = _key_id(shared_session)
    assert key_id != "ASIAPLANTED000000001"
    assert aws_env.proxy.count(action="AssumeRole") == 1
    assert not link.is_symlink()  # replaced by a file of ours
    assert Entry.from_bytes(planted.read_bytes()).access_key_id == "ASIAPLANTED000000001"  # type: ignore[union-attr]


def test_a_symlinked_cache_folder_is_refused_with_a_log_record_and_nothing_printed(
    aws_env: TestBed,
    shared_session: boto3.Session,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(target)
    with caplog.at_level(logging.WARNING, logger="assume_provider"):
        assert _key_id(shared_session).startswith("ASIA")
    assert list(target.iterdir()) == []
    assert any("symlink" in record.getMessage() for record in caplog.records)
    assert capsys.readouterr().err == ""


def test_an_edit_of_the_config_file_starts_a_new_entry(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    shared_env = role_env(aws_env, env)
    start_together([shared_env])
    with open(shared_env["AWS_CONFIG_FILE"], "a", encoding="utf-8") as handle:
        handle.write("[profile unrelated]\nregion = eu-west-1\n")
    start_together([shared_env])
    assert len(list(Path(env["ASSUME_PROVIDER_CACHE_DIR"]).glob("*.entry"))) == 2
    assert assume_roles(aws_env) == 2


@pytest.mark.usefixtures("fresh_provider_state")
def test_process_and_disk_sessions_in_one_process_do_not_share_an_engine(
    aws_env: TestBed, tmp_path: Path
) -> None:
    world = aws_env.world
    settings = {"role_arn": world.target_role_arn, "external_id": world.external_id}
    sessions = {share: boto3.Session() for share in ("process", "disk")}
    for share, session in sessions.items():
        assume_provider.register(session, share=share, cache_dir=str(tmp_path / "c"), **settings)
    assert _key_id(sessions["process"]) != _key_id(sessions["disk"])
    assert aws_env.proxy.count(action="AssumeRole") == 2


def test_credentials_the_engine_gave_back_are_not_served_again_from_the_disk(
    aws_env: TestBed, shared_session: boto3.Session
) -> None:
    # After an ExpiredToken, the engine is invalidated and asks again: the entry on disk
    # still holds the rejected credentials, which must not come back.
    credentials = shared_session.get_credentials()
    rejected = credentials.get_frozen_credentials().access_key
    credentials.invalidate(rejected)
    assert credentials.get_frozen_credentials().access_key != rejected
    assert aws_env.proxy.count(action="AssumeRole") == 2


def test_the_disk_cache_is_imported_only_by_processes_that_share(
    env: dict[str, str], aws_env: TestBed
) -> None:
    code = (
        "import sys, boto3; boto3.Session().get_credentials();"
        "print(sorted(m for m in sys.modules if m.startswith('assume_provider.diskcache')))"
    )
    for share, imported in (("process", "[]"), ("disk", "assume_provider.diskcache.store")):
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=role_env(aws_env, env, share=share),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert imported in done.stdout


def test_credentials_read_from_the_disk_are_masked_in_logs_like_fetched_ones(
    aws_env: TestBed,
    shared_session: boto3.Session,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A process that reads another's entry never saw STS's answer, so the secrets it holds
    # must be registered for redaction where they are read, or a DEBUG record carrying one
    # in a shape the patterns do not know would print it.
    world = aws_env.world
    inputs = SettingInputs.from_environment(
        {"role_arn": world.target_role_arn, "external_id": world.external_id}, os.environ
    )
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    secret, token = f"diskSecret{os.urandom(8).hex()}", f"diskToken{os.urandom(8).hex()}"
    now = time.time()
    entry = Entry("ASIADISKREAD00000001", secret, token, now + 3000, now - 600)
    DiskCache(str(folder)).open().write(key_of(inputs), entry)
    assert _key_id(shared_session) == "ASIADISKREAD00000001"
    assert aws_env.proxy.count(action="AssumeRole") == 0  # read from the disk, not fetched
    with caplog.at_level(logging.DEBUG, logger="botocore"):
        logging.getLogger("botocore.endpoint").debug("signed with %s and %s", secret, token)
    assert caplog.records
    assert all(secret not in r.getMessage() and token not in r.getMessage() for r in caplog.records)


CALLER = textwrap.dedent(
    """
    import boto3
    session = boto3.Session()
    session.client("sts").get_caller_identity()
    print(session.get_credentials().get_frozen_credentials().access_key, flush=True)
    """
)


def _call_sts(child_env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CALLER], env=child_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_entry_aws_rejected_is_replaced_by_the_next_process_not_read_by_every_one(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    # Process A wrote credentials AWS now answers ExpiredToken for; process B reads them,
    # is rejected once, fetches new ones and writes them back; process C reads B's.
    from testbed.proxy import Fault

    shared_env = role_env(aws_env, env)
    (rejected,) = start_together([shared_env])
    aws_env.proxy.inject(
        Fault.error("ExpiredToken", 400, "The security token included in the request is expired"),
        action="GetCallerIdentity",
        access_key_id=rejected,
        times=None,
    )
    second = _call_sts(shared_env)
    assert second != rejected
    assert _call_sts(shared_env) == second
    assert assume_roles(aws_env) == 2
    written = Entry.from_bytes(only_entry(Path(env["ASSUME_PROVIDER_CACHE_DIR"])).read_bytes())
    assert written is not None and written.access_key_id == second


HOLDER = textwrap.dedent(
    """
    import sys
    from assume_provider.diskcache.store import DiskCache
    lock = DiskCache(sys.argv[1]).open().lock(sys.argv[2])
    lock.acquire()
    print("holding", flush=True)
    sys.stdin.read()  # until killed
    """
)


def test_a_process_killed_while_holding_the_lock_does_not_hold_up_the_next(
    aws_env: TestBed, env: dict[str, str]
) -> None:
    shared_env = role_env(aws_env, env)
    folder = env["ASSUME_PROVIDER_CACHE_DIR"]
    key = key_of(SettingInputs.from_environment({}, shared_env))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, folder, key],
        env=shared_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert (Path(folder) / f"{key}.lock").exists()  # left behind by the dead holder
    done = subprocess.run(
        [sys.executable, "-c", CALLER], env=shared_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "lock" not in done.stderr  # no lock timeout, no warning: the lock was free
    assert assume_roles(aws_env) == 1
    assert not (Path(folder) / f"{key}.lock").exists()
