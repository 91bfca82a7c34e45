"""Single flight across processes: an exclusive ``flock`` on a lock file removed after use.

``flock`` locks die with their process, so a crashed holder never blocks the others. A lock
file is needed only while a fetch is in flight, so its holder removes it on release: lock
files do not pile up (one per cache key ever used) and the folder holds only live state.

Removing a lock file that others may have opened is safe because every process follows
one protocol:

- *acquire*: open the file by name (creating it), ``flock`` it, then check that the name
  still leads to the very file locked (``fstat`` of the descriptor against a ``stat`` of the
  name that does not follow links). If the name is gone or leads to another file, the file
  was removed while we waited: it guards nothing any more, so close it and start again.
- *remove*: only the holder removes the file, and it does so before it drops the lock.

So the lock is held by whoever holds the ``flock`` of the file the name leads to, and a
waiter that opened a file since removed learns it once its ``flock`` succeeds, never
mistaking that for the lock. (A process of an older version, which does not check, may
still take an orphaned file's ``flock``; the worst it does is one fetch of its own.)
"""

from __future__ import annotations

import fcntl
import os
import stat
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Optional

_OPEN_FLAGS = (
    # O_NONBLOCK: a FIFO planted at the lock's path must not hang the opener.
    os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
)


class LockTimeout(Exception):
    """Another process held the entry's lock for longer than the timeout."""


class NotALockFile(OSError):
    """Something other than a lock file of ours sits at the lock's path (planted?)."""


class FileLock:
    """The lock file ``name`` in the folder ``dir_fd``, waited for at most ``timeout`` s.

    ``sleep`` and ``monotonic`` are injectable so that tests can stop a waiter between two
    tries instead of racing it.
    """

    def __init__(
        self,
        dir_fd: int,
        name: str,
        timeout: float,
        poll_interval: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dir_fd = dir_fd
        self.name = name
        self._timeout = timeout
        self._poll = poll_interval
        self._sleep = sleep
        self._monotonic = monotonic
        self._fd: Optional[int] = None  # open while waiting, and while held
        self.held = False
        self.waited = False  # whether another process held it when we asked

    def acquire(self) -> None:
        """Take the lock, waiting at most the timeout (LockTimeout), polling meanwhile."""
        deadline = self._monotonic() + self._timeout
        while not self.try_acquire():
            self.waited = True
            if self._monotonic() >= deadline:
                self._close()
                raise LockTimeout(
                    f"another assume-provider process held the cache lock "
                    f"{self.name} for more than {self._timeout:g} s"
                )
            self._sleep(self._poll)

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it, without waiting; False if someone does."""
        if self.held:
            return True
        try:
            while True:
                if self._fd is None:
                    self._fd = self._open()
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False  # keep the file open: the next try locks the same one
                if self._still_named(self._fd):
                    self.held = True
                    return True
                # Removed (or replaced) while we waited for it: try the file named now.
                self._close()
        except BaseException:
            self._close()
            raise

    def release(self) -> None:
        """Remove the lock file while still holding it, then drop the lock."""
        if self.held:
            self.held = False
            try:
                # Only our own file: one put there by someone outside the protocol (a user's
                # rm, then another process's new file) is theirs to remove.
                if self._fd is not None and self._still_named(self._fd):
                    os.unlink(self.name, dir_fd=self._dir_fd)
            except OSError:
                pass  # gone already: nothing guards it, and closing below is all that is left
        self._close()

    def _open(self) -> int:
        fd = os.open(self.name, _OPEN_FLAGS, 0o600, dir_fd=self._dir_fd)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                raise NotALockFile(f"{self.name} is not a lock file of this user's")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _still_named(self, fd: int) -> bool:
        """Whether the lock's name still leads to the file open at ``fd``."""
        try:
            named = os.stat(self.name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock, if we had it
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
