"""The final hop's credentials for ``credential-process``, ``env`` and ``exec``.

Order of work, cheapest first: settings (no botocore), the disk cache (no botocore), and
only on a miss the library (botocore, the source, STS). On a cold cache the entry's file
lock makes concurrent invocations wait for the first one instead of all calling STS.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING, Optional

from ..config.inputs import SettingInputs
from ..diskcache.entry import Entry
from ..diskcache.key import key_of
from ..diskcache.lock import FileLock, LockTimeout
from ..diskcache.store import CacheUnavailable, DiskCache, warn
from . import common
from .payload import iso8601
from .recursion import check_recursion, mark_for_children

if TYPE_CHECKING:
    from ..config.settings import Settings

# How long a process waits for another one fetching the same chain. STS calls time out
# well before this (connect 5 s + read 10 s, a few attempts); past it we fetch ourselves.
LOCK_TIMEOUT = 30.0


def load_cli_settings(inputs: SettingInputs) -> Settings:
    """Validated settings for a subcommand; ConfigError (exit 2) if no role is configured."""
    from ..config.settings import Origin, resolve_settings
    from ..errors import ConfigError
    from .no_role import no_role_message

    settings = resolve_settings(inputs, argument_origin=Origin.option)
    if not settings.active:
        raise ConfigError(no_role_message(inputs))
    return settings


class Obtained:
    """The credentials, and whether they came from the disk cache."""

    def __init__(self, entry: Entry, from_cache: bool) -> None:
        self.entry = entry
        self.from_cache = from_cache


def obtain(args: argparse.Namespace, environ: Optional[dict[str, str]] = None) -> Obtained:
    """The chain's credentials, from the disk cache when it holds a fresh entry."""
    env = os.environ if environ is None else environ
    profile_name = getattr(args, "profile", None)
    inputs = SettingInputs.from_environment(common.settings_arguments(args), env, profile_name)
    if inputs.raw("role_arn") is None:
        load_cli_settings(inputs)  # raises the "no role to assume" ConfigError
    key = key_of(inputs)
    cache: Optional[DiskCache] = None
    if not getattr(args, "no_cache", False):
        try:
            cache = DiskCache(inputs.cache_dir(), lock_timeout=LOCK_TIMEOUT).open()
        except CacheUnavailable as exc:
            warn(f"{exc}; continuing without the disk cache")
        if cache is not None:
            entry = cache.read(key)
            if entry is not None:
                cache.close()
                return Obtained(entry, from_cache=True)
    # A miss: validate (the hit path never needs to: entries exist only for valid inputs).
    settings = load_cli_settings(inputs)
    check_recursion(key, env)
    if cache is None:
        return Obtained(fetch(settings, key, profile_name), from_cache=False)
    lock: Optional[FileLock] = cache.lock(key)
    try:
        assert lock is not None
        lock.acquire()
    except LockTimeout as exc:
        warn(f"{exc}; fetching without waiting any longer")
        lock = None
    except OSError as exc:  # e.g. a directory or a symlink planted at the lock's path
        warn(f"cannot lock the disk cache entry in {cache.folder}: {exc}; fetching unlocked")
        lock = None
    try:
        entry = cache.read(key)  # written meanwhile by a process we waited for
        if entry is not None:
            return Obtained(entry, from_cache=True)
        entry = fetch(settings, key, profile_name)
        try:
            cache.write(key, entry)
            cache.sweep()
        except OSError as exc:
            warn(f"cannot write the disk cache in {cache.folder}: {exc}")
        return Obtained(entry, from_cache=False)
    finally:
        if lock is not None:
            lock.release()
        cache.close()


def botocore_session(profile_name: Optional[str]) -> object:
    import botocore.session

    return botocore.session.Session(profile=profile_name)


def fetch(settings: Settings, key: str, profile_name: Optional[str]) -> Entry:
    """Resolve the source and assume every hop (imports botocore; the slow path)."""
    # Any credential_process the source chain runs inherits the marker (recursion guard).
    mark_for_children(key, os.environ)
    from ..credentials.fetcher import ChainFetcher, fallback_regions
    from ..credentials.sources import SourceCredentials
    from ..credentials.sts import sts_client_factory, sts_target

    session = botocore_session(profile_name)
    target = sts_target(session)
    fetcher = ChainFetcher(
        settings,
        SourceCredentials(settings.source, session),
        sts_client_factory(session, target),
        fallback_regions(settings, target),
    )
    fetched_at = time.time()
    final = fetcher.hops()[-1].credentials
    if final.session_token is None or final.expiration is None:  # STS always sends both
        raise RuntimeError("STS returned credentials without a session token or expiry")
    if final.expiration <= time.time():
        # Never print or cache credentials that are dead on arrival (the library's engine
        # treats them as a failed refresh; here there is nothing older to fall back on).
        raise RuntimeError(
            f"STS returned credentials {final.access_key_id} that had already expired "
            f"(Expiration {iso8601(final.expiration)}); check the clock of this machine"
        )
    region = session.get_config_variable("region")  # type: ignore[attr-defined]
    return Entry(
        final.access_key_id,
        final.secret_access_key,
        final.session_token,
        final.expiration,
        fetched_at,
        region if isinstance(region, str) and region else None,
    )
