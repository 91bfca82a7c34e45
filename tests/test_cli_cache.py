"""The CLI's disk cache: private, atomic, never through a symlink, single-flight."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import run_tool
from testbed import TestBed

from assume_provider.config.inputs import SETTING_NAMES, SettingInputs
from assume_provider.diskcache import entry as entry_module
from assume_provider.diskcache import key as cli_key
from assume_provider.diskcache.entry import Entry
from assume_provider.diskcache.lock import LockTimeout
from assume_provider.diskcache.store import CacheUnavailable, DiskCache
from assume_provider.engine import schedule

NOW = 1_800_000_000.0
KEY = "0123456789abcdef0123456789abcdef01234567"


def _entry(lifetime: float = 3600.0, fetched_at: float = NOW) -> Entry:
    return Entry("ASIAEXAMPLE", "secret/key+value", "token==", fetched_at + lifetime, fetched_at)


def _cache(folder: Path, now: float = NOW) -> DiskCache:
    return DiskCache(str(folder), clock=lambda: now).open()


def test_folder_is_0700_and_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        cache = _cache(tmp_path / "a" / "cache")
        cache.write(KEY, _entry())
        folder = tmp_path / "a" / "cache"
        with cache.lock(KEY):  # the lock file exists while it is held
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert modes == {f"{KEY}.entry": 0o600, f"{KEY}.lock": 0o600}
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_round_trip_and_freshness_margin_follows_the_engine(tmp_path: Path) -> None:
    # One rule, not a copy kept in step: the cache uses the engine's own function.
    assert entry_module.advisory_window_for is schedule.advisory_window_for
    cache = _cache(tmp_path)
    cache.write(KEY, _entry(3600))
    hit = cache.read(KEY)
    assert hit is not None and hit.secret_access_key == "secret/key+value"
    # 3600 s credentials: served until 15 minutes before expiry, not after.
    assert _cache(tmp_path, NOW + 3600 - 15 * 60).read(KEY) is not None
    assert _cache(tmp_path, NOW + 3600 - 15 * 60 + 1).read(KEY) is None
    # 15-minute credentials: the margin is 5 minutes, not 15 (botocore#2189).
    cache.write(KEY, _entry(900))
    assert _cache(tmp_path, NOW + 600).read(KEY) is not None
    assert _cache(tmp_path, NOW + 601).read(KEY) is None


@pytest.mark.parametrize(
    "content",
    [b"", b'{"Version": 1, "AccessKeyId": "ASIA', b"\xff\xfe not json", b"[]", b'{"Version": 2}'],
)
def test_corrupt_or_truncated_files_are_misses_and_get_replaced(
    tmp_path: Path, content: bytes
) -> None:
    cache = _cache(tmp_path)
    cache.write(KEY, _entry())
    path = tmp_path / DiskCache.file_name(KEY)
    path.write_bytes(content)
    assert cache.read(KEY) is None
    cache.write(KEY, _entry())
    assert cache.read(KEY) is not None


def test_a_symlink_in_place_of_an_entry_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    cache = _cache(folder)
    planted = tmp_path / "planted.json"
    planted.write_bytes(_entry().to_bytes().replace(b"ASIAEXAMPLE", b"ASIAATTACKER"))
    planted.chmod(0o600)
    link = folder / DiskCache.file_name(KEY)
    link.symlink_to(planted)
    assert cache.read(KEY) is None  # never read through the link
    cache.write(KEY, _entry())
    assert not link.is_symlink()  # the link itself was replaced...
    assert b"ASIAATTACKER" in planted.read_bytes()  # ...and its target left alone
    assert cache.read(KEY) is not None


def test_a_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    cache = _cache(folder)
    target = tmp_path / "elsewhere"
    target.write_text("x")
    (folder / f"{KEY}.lock").symlink_to(target)
    with pytest.raises(OSError):
        cache.lock(KEY).acquire()


def test_files_readable_by_others_are_ignored(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    cache.write(KEY, _entry())
    (tmp_path / DiskCache.file_name(KEY)).chmod(0o644)
    assert cache.read(KEY) is None


def test_a_group_or_world_writable_folder_is_repaired_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o777)
    _cache(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert "reset it to 0700" in capsys.readouterr().err


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(real)
    with pytest.raises(CacheUnavailable, match="symlink"):
        _cache(tmp_path / "cache")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the folder away")
def test_a_folder_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    os.chown(folder, 4321, -1)
    with pytest.raises(CacheUnavailable, match="owned by uid 4321"):
        _cache(folder)


def test_the_lock_waits_are_bounded(tmp_path: Path) -> None:
    cache = DiskCache(str(tmp_path), lock_timeout=0.05, poll_interval=0.01).open()
    with cache.lock(KEY) as first:
        assert not first.waited
        second = cache.lock(KEY)  # flock conflicts across descriptors, even in one process
        with pytest.raises(LockTimeout):
            second.acquire()
        assert second.waited
    with cache.lock(KEY):  # released: free again
        pass


def test_sixteen_processes_writing_at_once_never_leave_an_unreadable_file(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "cache"
    _cache(folder)
    writer = textwrap.dedent(
        f"""
        import sys, time
        from assume_provider.diskcache.entry import Entry
        from assume_provider.diskcache.store import DiskCache
        cache = DiskCache({str(folder)!r}).open()
        now = time.time()
        n = int(sys.argv[1])
        for i in range(60):
            cache.write({KEY!r}, Entry(f"ASIA{{n:02d}}{{i:03d}}", "s" * 40, "t" * 400,
                                       now + 3600, now))
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", writer, str(n)]) for n in range(16)
    ]
    reader = DiskCache(str(folder)).open()
    reads = 0
    while any(p.poll() is None for p in processes) or reads == 0:
        data = (folder / DiskCache.file_name(KEY)).read_bytes() if (
            folder / DiskCache.file_name(KEY)
        ).exists() else None
        if data is not None:
            assert Entry.from_bytes(data) is not None, data[:80]
            assert reader.read(KEY) is not None
            reads += 1
    assert all(p.wait(timeout=60) == 0 for p in processes)
    assert reader.read(KEY) is not None
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_every_setting_that_changes_the_credentials_is_in_the_key() -> None:
    # The refresh-tuning settings only change when the library refreshes, not what STS
    # returns; the cache folder only where the entry is kept; share only whether the library
    # uses the cache (so that it and credential-process find one entry).
    not_keyed = set(SETTING_NAMES) - set(cli_key.KEYED_SETTINGS)
    assert not_keyed == {"cache_dir", "prefetch", "refresh_window_seconds", "share"}


def _key(arguments: dict[str, str], environ: dict[str, str]) -> str:
    return cli_key.key_of(SettingInputs.from_environment(arguments, environ))


def test_the_key_covers_settings_and_source_identity_but_not_our_own_export(
    tmp_path: Path,
) -> None:
    base = {"AWS_CONFIG_FILE": str(tmp_path / "config"), "HOME": str(tmp_path)}
    role = {"role_arn": "arn:aws:iam::111111111111:role/TargetRole"}
    key = _key(role, base)
    assert key == _key(role, dict(base))
    assert key != _key({"role_arn": "arn:aws:iam::111111111111:role/Other"}, base)
    assert key != _key({**role, "external_id": "xyz123"}, base)
    assert key != _key({**role, "source": "environment"}, base)
    assert key != _key(role, {**base, "AWS_ACCESS_KEY_ID": "AKIASOURCE"})
    assert key != _key(role, {**base, "AWS_REGION": "eu-west-1"})
    assert key != _key(role, {**base, "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://x"})
    exported = {**base, "AWS_ACCESS_KEY_ID": "ASIAA", "ASSUME_PROVIDER_EXPORTED_KEY_ID": "ASIAA"}
    assert key == _key(role, exported)  # env's own export is not a source identity
    assert key == _key({}, {**base, "ASSUME_PROVIDER_ROLE_ARN": role["role_arn"]})


def test_cli_warns_and_works_without_a_cache_it_must_refuse(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    real = tmp_path / "real-cache"
    real.mkdir(mode=0o700)
    link = tmp_path / "link-cache"
    link.symlink_to(real)
    args = ["credential-process", "--cache-dir", str(link), "--role-arn",
            aws_env.world.target_role_arn]
    for _ in range(2):
        result = run_tool(args, subprocess_env)
        assert result.returncode == 0, result.stderr
        assert "assume-provider: warning: refusing cache folder" in result.stderr
    assert list(real.iterdir()) == []
    assert aws_env.proxy.count(action="AssumeRole") == 2


def test_cli_replaces_a_truncated_entry(aws_env: TestBed, subprocess_env: dict[str, str]) -> None:
    folder = Path(subprocess_env["HOME"]) / "cache"
    args = ["credential-process", "--cache-dir", str(folder), "--role-arn",
            aws_env.world.target_role_arn]
    assert run_tool(args, subprocess_env).returncode == 0
    (entry,) = folder.glob("*.entry")
    entry.write_bytes(entry.read_bytes()[:37])
    again = run_tool(args, subprocess_env)
    assert again.returncode == 0, again.stderr
    assert aws_env.proxy.count(action="AssumeRole") == 2
    assert Entry.from_bytes(entry.read_bytes()) is not None
    assert run_tool(args, subprocess_env).returncode == 0
    assert aws_env.proxy.count(action="AssumeRole") == 2


def test_sweep_deletes_expired_entries_and_dead_writers_temp_files_only(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    cache = _cache(folder, now=NOW)
    cache.write("expired" + "0" * 33, _entry(lifetime=3600.0, fetched_at=NOW - 7200))
    cache.write("fresh" + "0" * 35, _entry())
    for orphan in ("expired" + "0" * 33, "fresh" + "0" * 35):  # left by holders that died
        (folder / f"{orphan}.lock").touch(mode=0o600)
    dead_temp, live_temp = folder / ".x.entry.1.aa.tmp", folder / ".y.entry.2.bb.tmp"
    for temp in (dead_temp, live_temp):
        temp.write_bytes(b"half")
    os.utime(dead_temp, (NOW - 3600, NOW - 3600))
    os.utime(live_temp, (NOW - 5, NOW - 5))
    foreign = folder / "notes.txt"
    foreign.write_text("not ours to delete")

    assert cache.sweep() == 2

    remaining = sorted(path.name for path in folder.iterdir())
    assert remaining == sorted(
        [
            "fresh" + "0" * 35 + ".entry",
            live_temp.name,
            foreign.name,
        ]
    )
    cache.close()


def test_a_miss_sweeps_the_folder(aws_env: TestBed, subprocess_env: dict[str, str]) -> None:
    folder = Path(subprocess_env["HOME"]) / ".aws" / "assume-provider" / "cache"
    old = _cache(folder, now=NOW)
    old.write("old" + "0" * 37, _entry(lifetime=900.0, fetched_at=1_000_000_000.0))  # 2001
    old.close()

    result = run_tool(
        ["credential-process", "--role-arn", aws_env.world.target_role_arn], subprocess_env
    )

    assert result.returncode == 0, result.stderr
    assert [path.suffix for path in folder.glob("*.entry")] == [".entry"]
    assert not (folder / ("old" + "0" * 37 + ".entry")).exists()
    assert list(folder.glob("*.lock")) == []  # the miss's own lock went with its release
