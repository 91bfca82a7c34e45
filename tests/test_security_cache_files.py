"""Attacks on the disk cache (beyond tests/test_cli_cache.py) and resource bounds.

Each planted object must be refused or repaired with a message, never followed, never a
crash or a hang; memory and waits stay bounded whatever a process is asked to do.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import stat
from pathlib import Path

import boto3
import botocore.session
import pytest
from cli_support import run_tool
from testbed import TestBed

from assume_provider import redaction
from assume_provider.botocore.provider import AssumeRoleChainProvider
from assume_provider.cli import obtain as cli_credentials
from assume_provider.cli import recursion
from assume_provider.config.inputs import SettingInputs
from assume_provider.diskcache.entry import Entry
from assume_provider.diskcache.key import key_of
from assume_provider.diskcache.store import CacheUnavailable, DiskCache
from assume_provider.engine import shared

NOW = 1_800_000_000.0
KEY = "f" * 40
ATTACKER_KEY_ID = "ASIAATTACKERPLANTED1"


def _entry(access_key_id: str = "ASIAEXAMPLE") -> Entry:
    return Entry(access_key_id, "secret/value", "token==", NOW + 3600, NOW)


def _cache(folder: Path) -> DiskCache:
    return DiskCache(str(folder), clock=lambda: NOW).open()


def _nobody() -> int:
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 65534


@pytest.mark.parametrize("mode", [0o770, 0o750, 0o707, 0o705, 0o701, 0o1777, 0o2770])
def test_any_group_or_other_bit_on_the_folder_is_repaired_with_a_message(
    tmp_path: Path, mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(mode)
    _cache(folder).write(KEY, _entry())
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0
    assert "reset it to 0700" in capsys.readouterr().err


def test_a_dangling_symlink_at_the_folder_path_is_refused_and_its_target_not_created(
    tmp_path: Path,
) -> None:
    target = tmp_path / "attacker-chosen"
    (tmp_path / "cache").symlink_to(target)
    with pytest.raises(CacheUnavailable, match="symlink"):
        _cache(tmp_path / "cache")
    assert not target.exists()


def test_a_file_at_the_folder_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("not a folder")
    with pytest.raises(CacheUnavailable):
        _cache(tmp_path / "cache")


def test_a_fifo_in_place_of_the_entry_is_a_miss_not_a_hang(tmp_path: Path) -> None:
    cache = _cache(tmp_path / "cache")
    os.mkfifo(tmp_path / "cache" / DiskCache.file_name(KEY), 0o600)
    assert cache.read(KEY) is None  # a hang would be ended by the test timeout: a failure
    cache.write(KEY, _entry())  # replaced by the next write
    assert cache.read(KEY) is not None


def test_a_folder_in_place_of_the_entry_is_a_miss_and_the_write_fails_cleanly(
    tmp_path: Path,
) -> None:
    cache = _cache(tmp_path / "cache")
    (tmp_path / "cache" / DiskCache.file_name(KEY)).mkdir()
    assert cache.read(KEY) is None
    with pytest.raises(OSError):
        cache.write(KEY, _entry())
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files away")
def test_an_entry_owned_by_another_user_is_ignored_and_replaced(tmp_path: Path) -> None:
    cache = _cache(tmp_path / "cache")
    path = tmp_path / "cache" / DiskCache.file_name(KEY)
    path.write_bytes(_entry(ATTACKER_KEY_ID).to_bytes())
    path.chmod(0o600)
    os.chown(path, _nobody(), -1)
    assert cache.read(KEY) is None
    cache.write(KEY, _entry())
    assert path.stat().st_uid == os.geteuid()
    hit = cache.read(KEY)
    assert hit is not None and hit.access_key_id == "ASIAEXAMPLE"


def test_a_file_replaced_while_it_is_read_gives_the_opened_file_or_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between open and read, the entry is swapped for an attacker's file and a symlink: the
    reader keeps reading the descriptor it checked, never the new path."""
    folder = tmp_path / "cache"
    cache = _cache(folder)
    cache.write(KEY, _entry())
    path = folder / DiskCache.file_name(KEY)
    elsewhere = tmp_path / "attacker.json"
    elsewhere.write_bytes(_entry(ATTACKER_KEY_ID).to_bytes())
    elsewhere.chmod(0o600)
    real_fstat = os.fstat

    def swapping_fstat(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        if not path.is_symlink():
            path.unlink()
            path.symlink_to(elsewhere)
        return result

    monkeypatch.setattr(os, "fstat", swapping_fstat)
    hit = cache.read(KEY)
    monkeypatch.undo()
    assert hit is not None and hit.access_key_id == "ASIAEXAMPLE"
    assert cache.read(KEY) is None  # now a symlink: never followed


# -- the command line under attack --------------------------------------------------------


def _credential_process(bed: TestBed, env: dict[str, str], folder: Path) -> tuple[int, str, str]:
    result = run_tool(
        ["credential-process", "--cache-dir", str(folder), "--role-arn", bed.world.target_role_arn],
        env,
    )
    return result.returncode, result.stdout, result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to nobody")
def test_cli_refuses_a_folder_owned_by_nobody_and_still_works(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    planted = folder / "planted.json"
    planted.write_text("{}")
    os.chown(folder, _nobody(), -1)
    status, stdout, stderr = _credential_process(aws_env, subprocess_env, folder)
    assert status == 0, stderr
    assert f"owned by uid {_nobody()}" in stderr and "continuing without the disk cache" in stderr
    assert json.loads(stdout)["Version"] == 1
    assert sorted(p.name for p in folder.iterdir()) == ["planted.json"]  # nothing written


@pytest.mark.parametrize("plant", ["directory", "symlink", "fifo"])
def test_cli_with_a_planted_lock_path_warns_and_works(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path, plant: str
) -> None:
    folder = tmp_path / "cache"
    _credential_process(aws_env, subprocess_env, folder)  # creates the folder and the entry
    (entry,) = folder.glob("*.entry")
    entry.unlink()
    lock = entry.with_suffix(".lock")
    target = tmp_path / "lock-target"
    target.write_text("x")
    if plant == "directory":
        lock.mkdir()
    elif plant == "symlink":
        lock.symlink_to(target)
    else:
        os.mkfifo(lock, 0o600)
    status, stdout, stderr = _credential_process(aws_env, subprocess_env, folder)
    assert status == 0, stderr
    assert json.loads(stdout)["Version"] == 1
    assert "assume-provider: warning: cannot lock" in stderr  # a FIFO is no lock file either
    assert target.read_text() == "x"
    assert lock.is_symlink() or lock.exists()  # what was planted is left alone


# -- resource bounds -----------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_provider_state")
def test_the_shared_cache_stays_bounded_whatever_the_number_of_settings(
    aws_env: TestBed,
) -> None:
    # load() builds the shared objects without any network I/O: no request is made here.
    # A quarter beyond the bound: an unbounded cache fails at the first one past it (each
    # iteration costs a botocore session, so three times the bound only cost time).
    count = shared.MAX_SHARED_OBJECTS + shared.MAX_SHARED_OBJECTS // 4
    for index in range(count):
        session = botocore.session.Session()
        provider = AssumeRoleChainProvider(
            session, role_arn=aws_env.world.target_role_arn, session_name=f"session-{index}"
        )
        assert provider.load() is not None
        assert len(shared._objects) <= shared.MAX_SHARED_OBJECTS
    assert len(shared._objects) == shared.MAX_SHARED_OBJECTS
    assert aws_env.proxy.count() == 0 and aws_env.imds.request_count == 0
    # An evicted object keeps working for the session that holds it.
    first = boto3.Session()
    from assume_provider import register

    register(first, role_arn=aws_env.world.target_role_arn, session_name="session-0")
    assert aws_env.world.account_a in first.client("sts").get_caller_identity()["Arn"]


def test_the_redaction_registry_stays_bounded() -> None:
    for index in range(redaction._MAX_SECRETS * 4):
        redaction.register_secret(f"secret-number-{index:08d}")
    assert len(redaction._secrets) <= redaction._MAX_SECRETS
    newest = f"secret-number-{redaction._MAX_SECRETS * 4 - 1:08d}"
    assert redaction.MASK in redaction.redact_text(f"x {newest} y")


def test_the_cli_waits_for_a_held_lock_only_a_bounded_time(
    aws_env: TestBed,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another process holding the entry's lock forever cannot block credential-process."""
    from assume_provider.cli import main

    for name in (recursion.DEPTH_VAR, recursion.CHAIN_KEYS_VAR):
        monkeypatch.setenv(name, "")  # main() marks os.environ for children: restore it after
    monkeypatch.setattr(cli_credentials, "LOCK_TIMEOUT", 0.3)
    folder = tmp_path / "cache"
    role = aws_env.world.target_role_arn
    key = key_of(SettingInputs.from_environment({"role_arn": role}, os.environ))
    _cache(folder).close()
    holder = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        status = main(["credential-process", "--cache-dir", str(folder), "--role-arn", role])
    finally:
        os.close(holder)
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "held the cache lock" in err and "fetching without waiting any longer" in err
    assert json.loads(out)["Version"] == 1  # fetched while the lock was still held
    assert (folder / DiskCache.file_name(key)).exists()
