"""``share = disk``: the engine's fetch through the disk cache of ``credential-process``.

N short-lived processes with equal settings and source would each run the whole chain; with
``share = disk`` the first one runs it and the others read its result from the same folder,
key and file as ``credential-process`` (``diskcache/``), so they cost one AssumeRole per hop
in all, and ``credential-process`` answers from the entry a library process wrote.

The sharing sits in the engine's ``fetch``, not in the engine: the engine stays pure and
decides, as before, when to fetch (its windows, its single flight, its backoff); a fetch then
takes the entry's cross-process lock, serves the entry if another process refreshed it and it
is still outside the refresh windows, and otherwise runs the chain and writes the result
back. A failed chain is the engine's to handle, exactly as without sharing.

A ``DiskCache`` is opened per fetch: its folder handle is set up lazily and not guarded for
threads, and fetches may run on different threads (the caller's, the prefetch thread's).
Nothing here prints: what the cache could not do is logged as a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Optional

from ..diskcache.entry import Entry
from ..diskcache.lock import FileLock, LockTimeout
from ..diskcache.store import CacheUnavailable, DiskCache
from ..engine.model import TemporaryCredentials
from ..engine.windows import advisory_window_for
from ..redaction import register_secret
from . import fetcher

logger = logging.getLogger(__name__)

# How long a process waits for another one fetching the same chain: as ``credential-process``
# (cli/obtain.py); STS calls time out well before this, and past it we fetch ourselves.
LOCK_TIMEOUT = 30.0
# The engine's blocking window (engine/refresh.py's mandatory_window): an entry with less
# left is never served, whatever the early window.
MANDATORY_WINDOW = 60.0


def log_warning(message: str) -> None:
    """The library's ``warn`` for the disk cache: a log record, never a line on stderr."""
    logger.warning("assume-provider disk cache: %s", message)


class DiskSharedFetch:
    """The engine's ``fetch`` for ``share = disk``: the entry if usable, else the chain,
    written back. ``chain`` is the plain fetch (``ChainFetcher``)."""

    def __init__(
        self,
        chain: Callable[[], TemporaryCredentials],
        folder: str,
        key: str,
        *,
        advisory_window: Optional[float] = None,
        region: Optional[str] = None,
        clock: Optional[Callable[[], float]] = None,
        lock_timeout: float = LOCK_TIMEOUT,
        warn: Callable[[str], None] = log_warning,
    ) -> None:
        self._chain = chain
        self.folder = folder
        self.key = key
        self._advisory_window = advisory_window
        self._region = region
        self._clock = clock if clock is not None else (lambda: fetcher.clock())
        self._lock_timeout = lock_timeout
        self._warn = warn
        # The access key ID this fetch last handed the engine: asked again while the entry
        # still holds it, the engine wants new credentials (an invalidate after ExpiredToken),
        # not the ones it has.
        self._served: Optional[str] = None

    def __call__(self) -> TemporaryCredentials:
        try:
            cache = DiskCache(
                self.folder, clock=self._clock, lock_timeout=self._lock_timeout, warn=self._warn
            ).open()
        except CacheUnavailable as exc:
            self._warn(f"{exc}; continuing without the disk cache")
            return self._hand_out(self._chain())
        try:
            found = self._usable(cache)
            if found is not None:
                return self._hand_out(found)
            lock = self._lock(cache)
            try:
                found = self._usable(cache)  # written meanwhile by a process we waited for
                if found is not None:
                    return self._hand_out(found)
                fetched_at = self._clock()
                credentials = self._chain()
                self._write_back(cache, credentials, fetched_at)
                return self._hand_out(credentials)
            finally:
                if lock is not None:
                    lock.release()
        finally:
            cache.close()

    def _hand_out(self, credentials: TemporaryCredentials) -> TemporaryCredentials:
        self._served = credentials.access_key_id
        return credentials

    def _usable(self, cache: DiskCache) -> Optional[TemporaryCredentials]:
        """The entry's credentials if they are outside the engine's refresh windows."""
        entry = cache.read_any(self.key)
        if entry is None or entry.access_key_id == self._served:
            return None
        lifetime = max(entry.expires_at - entry.fetched_at, 0.0)
        window = self._advisory_window
        if window is None:
            window = advisory_window_for(lifetime)
        if entry.expires_at - self._clock() <= max(window, MANDATORY_WINDOW):
            return None
        # Another process's STS answer: this one never saw it, so the secrets are registered
        # here, as assume_role.py registers those it reads, to be masked in every log record.
        register_secret(entry.secret_access_key, entry.session_token)
        return TemporaryCredentials(
            entry.access_key_id, entry.secret_access_key, entry.session_token, entry.expires_at
        )

    def _lock(self, cache: DiskCache) -> Optional[FileLock]:
        """The entry's lock (single flight across processes), or None if it cannot be had."""
        lock = cache.lock(self.key)
        try:
            lock.acquire()
        except LockTimeout as exc:
            self._warn(f"{exc}; fetching without waiting any longer")
            return None
        except OSError as exc:  # e.g. a directory or a symlink planted at the lock's path
            self._warn(f"cannot lock the entry in {cache.folder}: {exc}; fetching unlocked")
            return None
        return lock

    def _write_back(
        self, cache: DiskCache, credentials: TemporaryCredentials, fetched_at: float
    ) -> None:
        if credentials.session_token is None or credentials.expiration is None:
            return  # STS always sends both; anything else is not shared
        entry = Entry(
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.session_token,
            credentials.expiration,
            fetched_at,
            self._region,
        )
        try:
            cache.write(self.key, entry)
            cache.sweep()
        except (OSError, ValueError) as exc:
            self._warn(f"cannot write the disk cache in {cache.folder}: {exc}")
