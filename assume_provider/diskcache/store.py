"""The cache folder: entries read, written atomically and swept, never through a symlink.

Why it looks like this:

- ``credential-process`` runs once per ``aws`` command, so a hit must be cheap: this module
  imports neither botocore nor anything heavy (no ``json``, no ``typing`` at run time), and
  a hit is one ``open`` + ``read`` of a file of plain lines (``entry.py``).
- Other local users must not read or plant credentials: the folder is 0700 and owned by us
  (a group/world-writable one we own is repaired with a warning, anyone else's is refused),
  files are 0600, and every path is opened relative to a folder descriptor with
  ``O_NOFOLLOW``, so a symlink planted in place of a file is never followed.
- Concurrent writers never leave a partial file: each writes its own temporary file and
  renames it over the entry (atomic on POSIX). A corrupt or truncated file is a miss.
- N processes starting on a cold cache make one STS call: the first takes the entry's lock
  (``lock.py``), the others wait for it (bounded by a timeout) and then find the fresh entry.
- An entry is served only while it stays valid for at least the refresh engine's early
  refresh window, so a caller never gets credentials that are about to expire.
- Nothing here writes to stderr or logs on its own: what deserves a word goes to the
  ``warn`` callable the caller passes (the command line prints it; the library may log it).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time

from .entry import MAX_FILE_SIZE, Entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Optional

    from .lock import FileLock

# A temporary file older than this was left by a writer that died between write and rename.
STALE_TEMP_SECONDS = 600.0


class CacheUnavailable(Exception):
    """The cache folder cannot be used safely; the caller goes on without the cache."""


def warn(message: str) -> None:
    """The command line's way to say what the cache could not do (the default ``warn``)."""
    sys.stderr.write(f"assume-provider: warning: {message}\n")


class DiskCache:
    """The cache folder; every operation goes through a descriptor of that folder."""

    def __init__(
        self,
        folder: str,
        *,
        clock: Callable[[], float] = time.time,
        lock_timeout: float = 60.0,
        poll_interval: float = 0.02,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] = warn,
    ) -> None:
        self.folder = folder
        self._clock = clock
        self._lock_timeout = lock_timeout
        self._poll_interval = poll_interval
        self._sleep = sleep
        self._warn = warn
        self._dir_fd: Optional[int] = None

    # -- the folder ----------------------------------------------------------------------

    def open(self) -> DiskCache:
        """Create or check the folder; raise CacheUnavailable if it is not safe to use."""
        if self._dir_fd is not None:
            return self
        try:
            self._dir_fd = self._open_folder()
        except OSError as exc:
            raise CacheUnavailable(f"cannot use cache folder {self.folder}: {exc}") from None
        return self

    def close(self) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def __enter__(self) -> DiskCache:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_folder(self) -> int:
        parent = os.path.dirname(self.folder)
        if parent and not os.path.isdir(parent):
            os.makedirs(parent, mode=0o700, exist_ok=True)
        try:
            os.mkdir(self.folder, 0o700)
        except FileExistsError:
            pass
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.folder, flags)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise CacheUnavailable(
                    f"refusing cache folder {self.folder}: it is a symlink or not a folder"
                ) from None
            raise
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid():
                raise CacheUnavailable(
                    f"refusing cache folder {self.folder}: owned by uid {info.st_uid}, "
                    f"not by this user (uid {os.geteuid()})"
                )
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                # Ours but open to others: others could plant or swap entries. Close it.
                os.fchmod(fd, 0o700)
                self._warn(
                    f"cache folder {self.folder} was accessible to group/others "
                    f"(mode {mode:04o}); reset it to 0700"
                )
        except BaseException:
            os.close(fd)
            raise
        return fd

    @property
    def _fd(self) -> int:
        if self._dir_fd is None:
            self.open()
        assert self._dir_fd is not None
        return self._dir_fd

    # -- entries -------------------------------------------------------------------------

    @staticmethod
    def file_name(key: str) -> str:
        return f"{key}.entry"

    def read(self, key: str) -> Optional[Entry]:
        """The entry if present, well-formed, ours, private and still comfortably valid."""
        entry = self._load(self.file_name(key))
        if entry is None or not entry.fresh_at(self._clock()):
            return None
        return entry

    def read_any(self, key: str) -> Optional[Entry]:
        """The entry if present, well-formed, ours and private, fresh or not: for a caller
        with a freshness rule of its own (the library's configured refresh window)."""
        return self._load(self.file_name(key))

    def _load(self, name: str) -> Optional[Entry]:
        """The entry in file ``name`` if it is well-formed, ours and private, fresh or not."""
        try:
            # O_NONBLOCK: a FIFO planted in place of the entry must not hang the reader.
            fd = os.open(
                name,
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                dir_fd=self._fd,
            )
        except OSError:  # missing, or a symlink (ELOOP): a miss either way
            return None
        try:
            info = os.fstat(fd)
            if (
                not stat.S_ISREG(info.st_mode)
                or info.st_uid != os.geteuid()
                or stat.S_IMODE(info.st_mode) & 0o077
                or info.st_size > MAX_FILE_SIZE
            ):
                return None  # not a file we wrote: ignore it, the next write replaces it
            data = os.read(fd, MAX_FILE_SIZE + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        return Entry.from_bytes(data)

    def sweep(self) -> int:
        """Delete expired entries with their lock files, orphaned lock files and temporary
        files of dead writers; return how many entries and temporary files went.

        Every edit of the config file starts a new entry (its stamp is in the key), so old
        ones would pile up. Run after a write, i.e. on a miss, never on the hit path. Files
        that are not ours are left alone. An expired entry is deleted under its lock (taken
        without waiting): a process fetching that key right now keeps both. A lock file
        nobody holds is one whose holder died before removing it; taking its lock and
        releasing it removes it by the protocol of ``lock.py``, safe for anyone waiting.
        """
        now = self._clock()
        removed = 0
        for name in os.listdir(self._fd):
            try:
                info = os.stat(name, dir_fd=self._fd, follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                continue
            if name.startswith(".") and name.endswith(".tmp"):
                if now - info.st_mtime > STALE_TEMP_SECONDS and self._unlink(name):
                    removed += 1
            elif name.endswith(".entry"):
                removed += self._sweep_entry(name[: -len(".entry")], now)
            elif name.endswith(".lock"):
                self._sweep_lock(name[: -len(".lock")])
        return removed

    def _sweep_entry(self, key: str, now: float) -> int:
        """Delete the key's entry (1) if it has expired and nobody is fetching it (else 0)."""
        if not self._expired(key, now):
            return 0
        lock = self.lock(key)
        try:
            if not lock.try_acquire():
                return 0  # being fetched again right now: the fetcher replaces it
            # Checked again under the lock: a fetcher may have replaced it meanwhile.
            return int(self._expired(key, now) and self._unlink(self.file_name(key)))
        except OSError:
            return 0  # e.g. something planted at the lock's path: leave the entry alone
        finally:
            lock.release()  # removes the lock file too, if we held it

    def _sweep_lock(self, key: str) -> None:
        """Remove a lock file whose holder died before removing it (nobody holds it)."""
        lock = self.lock(key)
        try:
            lock.try_acquire()
        except OSError:
            pass  # not a lock file of ours: leave it alone
        finally:
            lock.release()  # removes the file only if we held it

    def _expired(self, key: str, now: float) -> bool:
        entry = self._load(self.file_name(key))
        return entry is not None and entry.expires_at <= now

    def _unlink(self, name: str) -> bool:
        try:
            os.unlink(name, dir_fd=self._fd)
        except OSError:
            return False  # another process swept it first
        return True

    def write(self, key: str, entry: Entry) -> None:
        """Replace the entry atomically: a reader sees the old file or the new one, never half."""
        name = self.file_name(key)
        temp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(temp, flags, 0o600, dir_fd=self._fd)
        try:
            try:
                data = entry.to_bytes()
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
            # rename replaces a symlink planted at ``name`` itself; its target is untouched.
            os.replace(temp, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
        except BaseException:
            try:
                os.unlink(temp, dir_fd=self._fd)
            except OSError:
                pass
            raise

    def lock(self, key: str) -> FileLock:
        """The entry's lock; its file exists only while someone holds or waits for it."""
        from .lock import FileLock  # only a miss locks: a hit does not pay for fcntl

        return FileLock(
            self._fd, f"{key}.lock", self._lock_timeout, self._poll_interval, sleep=self._sleep
        )
