"""The CLI's cross-process credential cache: one small file per chain, safe to share.

Why it looks like this:

- ``credential-process`` runs once per ``aws`` command, so a hit must be cheap: this module
  imports neither botocore nor anything heavy (not even ``json`` or ``typing``: each pulls
  in modules worth milliseconds at start-up), and a hit is one ``open`` + ``read`` of a
  file of plain lines.
- Other local users must not read or plant credentials: the folder is 0700 and owned by us
  (a group/world-writable one we own is repaired with a warning, anyone else's is refused),
  files are 0600, and every path is opened relative to a folder descriptor with
  ``O_NOFOLLOW``, so a symlink planted in place of a file is never followed.
- Concurrent writers never leave a partial file: each writes its own temporary file and
  renames it over the entry (atomic on POSIX). A corrupt or truncated file is a miss.
- N processes starting on a cold cache make one STS call: the first takes an exclusive
  ``flock`` on the entry's lock file, the others wait for it (bounded by a timeout) and then
  find the fresh entry.
- An entry is served only while it stays valid for at least the refresh engine's early
  refresh window, so a caller never gets credentials that are about to expire.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Optional

# Must match refresh.advisory_window_for (importing refresh costs ~5 ms of threading/logging
# imports on the cache-hit path); tests check the two agree.
_WINDOWS = ((20 * 60, 5 * 60.0), (90 * 60, 15 * 60.0))
_LONG_WINDOW = 60 * 60.0

# An entry file: this header, then one value per line (see Entry.to_bytes).
FORMAT_HEADER = "assume-provider cache 2"
_LINES = 8  # header, 6 values, and the empty string after the final newline
_MAX_FILE_SIZE = 64 * 1024
# A temporary file older than this was left by a writer that died between write and rename.
STALE_TEMP_SECONDS = 600.0


def advisory_window_for(lifetime: float) -> float:
    """The early-refresh margin for credentials of this lifetime (as the refresh engine's)."""
    for limit, window in _WINDOWS:
        if lifetime <= limit:
            return window
    return _LONG_WINDOW


class CacheUnavailable(Exception):
    """The cache folder cannot be used safely; the caller goes on without the cache."""


class Entry:
    """One cached result: the final hop's credentials and what ``env`` needs besides."""

    __slots__ = (
        "access_key_id",
        "expires_at",
        "fetched_at",
        "region",
        "secret_access_key",
        "session_token",
    )

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str,
        expires_at: float,
        fetched_at: float,
        region: Optional[str] = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expires_at = expires_at
        self.fetched_at = fetched_at
        self.region = region

    def __repr__(self) -> str:
        return f"Entry(access_key_id={self.access_key_id!r}, expires_at={self.expires_at!r})"

    def fresh_at(self, now: float) -> bool:
        """Valid for at least the early-refresh margin of its own lifetime."""
        lifetime = max(self.expires_at - self.fetched_at, 0.0)
        return self.expires_at - now >= advisory_window_for(lifetime)

    def to_bytes(self) -> bytes:
        """Plain lines, so that reading needs no parser (``json`` costs a cache hit ~2 ms)."""
        values = (self.access_key_id, self.secret_access_key, self.session_token)
        if not all(_is_token(value) for value in values):
            raise ValueError("credentials with whitespace or control characters are not cached")
        lines = (
            FORMAT_HEADER,
            *values,
            repr(float(self.expires_at)),
            repr(float(self.fetched_at)),
            self.region or "",
        )
        return ("\n".join(lines) + "\n").encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> Optional[Entry]:
        """The entry, or None for anything malformed (truncated, foreign, old format)."""
        try:
            lines = data.decode("ascii").split("\n")
        except UnicodeDecodeError:
            return None
        # The final newline is written last: a truncated file lacks it, or lines.
        if len(lines) != _LINES or lines[0] != FORMAT_HEADER or lines[-1] != "":
            return None
        access_key_id, secret_access_key, session_token = lines[1:4]
        if not all(_is_token(value) for value in (access_key_id, secret_access_key, session_token)):
            return None
        expires_at, fetched_at = _timestamp(lines[4]), _timestamp(lines[5])
        if expires_at is None or fetched_at is None:
            return None
        region = lines[6]
        if region and not _is_token(region):
            return None
        return cls(
            access_key_id, secret_access_key, session_token, expires_at, fetched_at, region or None
        )


def _is_token(value: str) -> bool:
    """Non-empty printable ASCII without spaces: what STS's keys and tokens are."""
    return bool(value) and value.isascii() and value.isprintable() and " " not in value


# The last second of year 9999: an expiry past it (or inf/NaN, which float() accepts)
# cannot be printed by ``credential-process`` and is never one STS issued.
_MAX_TIMESTAMP = 253402300799.0


def _timestamp(text: str) -> Optional[float]:
    """A POSIX timestamp the CLI can print (finite, year 1970 to 9999), or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0.0 <= value <= _MAX_TIMESTAMP else None  # NaN fails both comparisons


def warn(message: str) -> None:
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
    ) -> None:
        self.folder = folder
        self._clock = clock
        self._lock_timeout = lock_timeout
        self._poll_interval = poll_interval
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
                warn(
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
                or info.st_size > _MAX_FILE_SIZE
            ):
                return None  # not a file we wrote: ignore it, the next write replaces it
            data = os.read(fd, _MAX_FILE_SIZE + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        return Entry.from_bytes(data)

    def sweep(self) -> int:
        """Delete entries whose credentials have expired and temporary files of dead writers.

        Every edit of the config file starts a new entry (its stamp is in the key), so old
        ones would pile up. Run after a write, i.e. on a miss, never on the hit path. Files
        that are not ours are left alone, and so are lock files: deleting one that another
        process holds or waits on would break their mutual exclusion. Returns the count.
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
                stale = now - info.st_mtime > STALE_TEMP_SECONDS
            elif name.endswith(".entry"):
                entry = self._load(name)
                stale = entry is not None and entry.expires_at <= now
            else:
                continue
            if stale:
                try:
                    os.unlink(name, dir_fd=self._fd)
                    removed += 1
                except OSError:
                    pass  # another process swept it first
        return removed

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
        return FileLock(self._fd, f"{key}.lock", self._lock_timeout, self._poll_interval)


class LockTimeout(Exception):
    """Another process held the entry's lock for longer than the timeout."""


class FileLock:
    """An exclusive ``flock`` on one lock file, waited for at most ``timeout`` seconds.

    ``flock`` locks die with their process, so a crashed holder never blocks the others.
    """

    def __init__(self, dir_fd: int, name: str, timeout: float, poll_interval: float) -> None:
        self._dir_fd = dir_fd
        self._name = name
        self._timeout = timeout
        self._poll = poll_interval
        self._fd: Optional[int] = None
        self.waited = False  # whether another process held it when we asked

    def acquire(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self._name, flags, 0o600, dir_fd=self._dir_fd)
        deadline = time.monotonic() + self._timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    self.waited = True
                    if time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"another assume-provider process held the cache lock "
                            f"{self._name} for more than {self._timeout:g} s"
                        ) from None
                    time.sleep(self._poll)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
