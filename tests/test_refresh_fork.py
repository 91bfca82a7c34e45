"""A forked child inherits the cache but never a held lock or the parent's in-flight refresh."""

from __future__ import annotations

import os
import signal
import threading
import warnings
from collections.abc import Callable

import pytest

from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

T0 = 1_700_000_000.0
TIMEOUT = 60.0  # failure-only: a deadlocked child or parent is the only way to reach it


def in_child(check: Callable[[], bool]) -> int:
    """Fork; the child runs check and exits 0 if it holds; return the child's exit code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            signal.alarm(int(TIMEOUT))  # a deadlocked child must not hang the suite
            code = 0 if check() else 1
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_child_refreshes_while_parent_is_mid_refresh() -> None:
    parent_pid = os.getpid()
    entered, release = threading.Event(), threading.Event()
    parent_new = TemporaryCredentials("AKID-PARENT", "S", "T", T0 + 3600)
    child_new = TemporaryCredentials("AKID-CHILD", "S", "T", T0 + 3600)
    calls: list[int] = []

    def fetch() -> TemporaryCredentials:
        calls.append(os.getpid())
        if os.getpid() != parent_pid:
            return child_new
        entered.set()
        assert release.wait(TIMEOUT)
        return parent_new

    cached = TemporaryCredentials("AKID-OLD", "S", "T", T0 + 30)  # blocking window
    engine = RefreshingCredentials(fetch, clock=lambda: T0, initial=cached)
    box: list[TemporaryCredentials] = []
    parent_thread = threading.Thread(target=lambda: box.append(engine.get()))
    parent_thread.start()
    try:
        assert entered.wait(TIMEOUT)  # the parent thread holds the refresh lock now

        def child() -> bool:
            first = engine.get()  # must not wait for the parent's refresh: it never ends here
            second = engine.get()
            return first is child_new and second is child_new and len(calls) == 2

        assert in_child(child) == 0
    finally:
        release.set()
        parent_thread.join(TIMEOUT)
    assert box == [parent_new]
    assert calls == [parent_pid]  # the child's fetch happened in the child only


def test_child_keeps_valid_cached_credentials_and_restarts_prefetch() -> None:
    cached = TemporaryCredentials("AKID-OLD", "S", "T", T0 + 7200)
    fetched: list[int] = []

    def fetch() -> TemporaryCredentials:
        fetched.append(os.getpid())
        return cached

    engine = RefreshingCredentials(fetch, clock=lambda: T0, initial=cached, prefetch=True)
    try:
        parent_thread = engine._prefetcher.thread
        assert parent_thread is not None and parent_thread.is_alive()

        def child() -> bool:
            no_thread_yet = engine._prefetcher.thread is None
            served = engine.get() is cached and engine.get() is cached
            thread = engine._prefetcher.thread
            restarted = thread is not None and thread.is_alive() and thread is not parent_thread
            engine.close()
            return no_thread_yet and served and restarted and not fetched

        assert in_child(child) == 0
        assert engine._prefetcher.thread is parent_thread  # the parent's engine is untouched
    finally:
        engine.close()
    assert not fetched
