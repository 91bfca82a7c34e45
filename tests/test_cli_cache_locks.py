"""The disk cache's lock files: removed with their use, safely for anyone waiting on them.

A waiter is stopped between two tries by its injected ``sleep`` (a queue hand-off), never by
a real sleep, so every interleaving below is forced, not hoped for.
"""

from __future__ import annotations

import fcntl
import os
import queue
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from assume_provider.diskcache.entry import Entry
from assume_provider.diskcache.store import DiskCache

NOW = 1_800_000_000.0
KEY = "0123456789abcdef0123456789abcdef01234567"
HAND_OFF = 60.0  # a bound on each hand-off, so that a broken lock fails instead of hanging


def _entry(expires_at: float) -> Entry:
    return Entry("ASIAEXAMPLE", "secret", "token", expires_at, expires_at - 3600.0)


def _put_entry(folder: Path, key: str, entry: Entry) -> None:
    """An entry file as ``DiskCache.write`` leaves it, minus its fsync (1,000 of them are slow)."""
    fd = os.open(folder / DiskCache.file_name(key), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(entry.to_bytes())


def _lock_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".lock"))


class StoppedWaiter:
    """A thread acquiring ``KEY``'s lock that reports each wait and waits for the test's word.

    ``events`` receives "waiting" each time the lock was found held, and "acquired" (or the
    exception) when ``acquire`` returns; ``resume()`` lets it try once more.
    """

    def __init__(self, folder: Path) -> None:
        self.events: queue.Queue[object] = queue.Queue()
        self._resume: queue.Queue[None] = queue.Queue()
        self.cache = DiskCache(str(folder), sleep=self._pause).open()
        self.lock = self.cache.lock(KEY)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pause(self, _seconds: float) -> None:
        self.events.put("waiting")
        self._resume.get(timeout=HAND_OFF)

    def _run(self) -> None:
        try:
            self.lock.acquire()
            self.events.put("acquired")
        except BaseException as exc:  # handed to the test, which fails on it
            self.events.put(exc)

    def start(self) -> None:
        self._thread.start()

    def next_event(self) -> object:
        return self.events.get(timeout=HAND_OFF)

    def resume(self) -> None:
        self._resume.put(None)

    def finish(self) -> None:
        self._thread.join(timeout=HAND_OFF)
        assert not self._thread.is_alive()
        self.lock.release()
        self.cache.close()


def test_a_released_lock_leaves_no_file_behind(tmp_path: Path) -> None:
    cache = DiskCache(str(tmp_path)).open()
    with cache.lock(KEY) as lock:
        assert lock.held
        assert _lock_files(tmp_path) == [f"{KEY}.lock"]
    assert _lock_files(tmp_path) == []
    cache.close()


def test_a_thousand_keys_leave_no_lock_file_once_their_entries_are_gone(tmp_path: Path) -> None:
    cache = DiskCache(str(tmp_path), clock=lambda: NOW).open()
    keys = [f"{index:040x}" for index in range(1000)]
    for key in keys:
        with cache.lock(key):  # what a miss does: lock, fetch, write, release
            _put_entry(tmp_path, key, _entry(expires_at=NOW + 60.0))
    assert _lock_files(tmp_path) == []
    assert len(list(tmp_path.glob("*.entry"))) == 1000
    later = DiskCache(str(tmp_path), clock=lambda: NOW + 61.0).open()
    assert later.sweep() == 1000
    assert list(tmp_path.iterdir()) == []
    cache.close()
    later.close()


def test_lock_files_left_by_dead_holders_go_at_the_next_sweep(tmp_path: Path) -> None:
    """A holder that died before its release (or an older version) left its lock file."""
    cache = DiskCache(str(tmp_path), clock=lambda: NOW).open()
    for index in range(1000):
        key = f"{index:040x}"
        _put_entry(tmp_path, key, _entry(expires_at=NOW - 1.0 if index % 2 else NOW + 3600.0))
        os.close(os.open(tmp_path / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600))
    assert cache.sweep() == 500  # the expired entries
    assert _lock_files(tmp_path) == []
    assert len(list(tmp_path.glob("*.entry"))) == 500  # the fresh ones stay
    cache.close()


def test_a_lock_somebody_holds_and_its_expired_entry_survive_the_sweep(tmp_path: Path) -> None:
    cache = DiskCache(str(tmp_path), clock=lambda: NOW).open()
    cache.write(KEY, _entry(expires_at=NOW - 1.0))
    other = DiskCache(str(tmp_path), clock=lambda: NOW).open()
    with other.lock(KEY):  # a process fetching this key right now
        assert cache.sweep() == 0
        assert _lock_files(tmp_path) == [f"{KEY}.lock"]
        assert (tmp_path / DiskCache.file_name(KEY)).exists()
    assert cache.sweep() == 1
    assert list(tmp_path.iterdir()) == []
    cache.close()
    other.close()


def test_a_waiter_whose_file_was_removed_and_replaced_does_not_take_the_lock(
    tmp_path: Path,
) -> None:
    holder = DiskCache(str(tmp_path)).open()
    first = holder.lock(KEY)
    first.acquire()
    waiter = StoppedWaiter(tmp_path)
    waiter.start()
    assert waiter.next_event() == "waiting"  # it opened the first file and found it held
    first.release()  # the file is removed, then its flock dropped
    second = holder.lock(KEY)
    second.acquire()  # a third process creates the file anew and takes it
    waiter.resume()  # the waiter's flock of the removed file now succeeds...
    assert waiter.next_event() == "waiting"  # ...but it is not the lock: it waits again
    assert not waiter.lock.held
    assert _lock_files(tmp_path) == [f"{KEY}.lock"]
    second.release()
    waiter.resume()
    assert waiter.next_event() == "acquired"
    assert waiter.lock.held
    # It holds the file the name leads to: nobody else can take the lock now.
    assert not holder.lock(KEY).try_acquire()
    waiter.finish()
    assert _lock_files(tmp_path) == []
    holder.close()


def test_a_waiter_whose_file_was_removed_takes_a_fresh_one(tmp_path: Path) -> None:
    holder = DiskCache(str(tmp_path)).open()
    first = holder.lock(KEY)
    first.acquire()
    waiter = StoppedWaiter(tmp_path)
    waiter.start()
    assert waiter.next_event() == "waiting"
    first.release()
    assert _lock_files(tmp_path) == []
    waiter.resume()
    assert waiter.next_event() == "acquired"  # without waiting again: a fresh file, free
    late = holder.lock(KEY)
    assert not late.try_acquire()
    late.release()  # not held: closes its descriptor, leaves the waiter's file alone
    assert _lock_files(tmp_path) == [f"{KEY}.lock"]
    waiter.finish()
    assert _lock_files(tmp_path) == []
    holder.close()


def test_a_sweep_racing_a_waiter_never_gives_the_lock_to_two(tmp_path: Path) -> None:
    """The sweep removes a dead holder's lock file while a waiter has that file open."""
    DiskCache(str(tmp_path)).open().close()
    dead_holder = os.open(tmp_path / f"{KEY}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(dead_holder, fcntl.LOCK_EX)
    waiter = StoppedWaiter(tmp_path)
    waiter.start()
    assert waiter.next_event() == "waiting"
    os.close(dead_holder)  # it dies before its release: the file stays, its flock goes
    assert _lock_files(tmp_path) == [f"{KEY}.lock"]
    sweeper = DiskCache(str(tmp_path), clock=lambda: NOW).open()
    sweeper.sweep()  # takes the orphaned file's lock and removes the file
    assert _lock_files(tmp_path) == []
    taker = sweeper.lock(KEY)
    assert taker.try_acquire()  # another process takes the lock, on a new file
    waiter.resume()
    assert waiter.next_event() == "waiting"  # the waiter's old file is not the lock
    assert not waiter.lock.held
    taker.release()
    waiter.resume()
    assert waiter.next_event() == "acquired"
    waiter.finish()
    assert _lock_files(tmp_path) == []
    sweeper.close()


def test_a_release_removes_only_its_own_file(tmp_path: Path) -> None:
    """Someone outside the protocol (a user's rm) removed the held file, and another process
    took the lock on a new one: the first holder's release must leave that one alone."""
    cache = DiskCache(str(tmp_path)).open()
    first = cache.lock(KEY)
    first.acquire()
    (tmp_path / f"{KEY}.lock").unlink()
    second = cache.lock(KEY)
    assert second.try_acquire()
    first.release()
    assert _lock_files(tmp_path) == [f"{KEY}.lock"]
    assert not cache.lock(KEY).try_acquire()  # still the second's
    second.release()
    assert _lock_files(tmp_path) == []
    cache.close()


def test_sixteen_processes_on_a_cold_entry_fetch_once_and_leave_no_lock_file(
    tmp_path: Path,
) -> None:
    """Single flight across processes survives the lock files' removal: whatever the order
    in which they lock, re-check and remove, one of them fetches and the rest read."""
    folder = tmp_path / "cache"
    DiskCache(str(folder)).open().close()
    fetches = tmp_path / "fetches"
    worker = textwrap.dedent(
        f"""
        import os, sys, time
        from assume_provider.diskcache.entry import Entry
        from assume_provider.diskcache.store import DiskCache
        os.read(0, 1)  # every process waits here until the test closes the pipe
        cache = DiskCache({str(folder)!r}).open()
        with cache.lock({KEY!r}):
            if cache.read({KEY!r}) is None:
                with open({str(fetches)!r}, "a") as log:
                    log.write("fetch\\n")
                now = time.time()
                cache.write({KEY!r}, Entry("ASIAONE", "s" * 40, "t" * 40, now + 3600, now))
        """
    )
    gate_read, gate_write = os.pipe()
    processes = [
        subprocess.Popen([sys.executable, "-c", worker], stdin=gate_read) for _ in range(16)
    ]
    os.close(gate_read)
    os.close(gate_write)  # all of them go at once
    assert [process.wait(timeout=120) for process in processes] == [0] * 16
    assert fetches.read_text() == "fetch\n"
    assert _lock_files(folder) == []
