"""Module locks held by another thread at fork time are free in the child."""

from __future__ import annotations

import os
import threading

import pytest

from assume_provider.engine.forksafe import ForkSafeLock


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("factory", [threading.Lock, threading.RLock])
def test_a_lock_held_by_another_thread_at_fork_is_free_in_the_child(factory: object) -> None:
    lock = ForkSafeLock(factory)  # type: ignore[arg-type]
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(60)  # else the fork below would not test a held lock
    try:
        pid = os.fork()
        if pid == 0:
            # The holder thread does not exist here: a plain lock would block forever.
            acquired = lock._lock.acquire(timeout=2)  # type: ignore[attr-defined]
            os._exit(0 if acquired else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        holder.join(60)
    assert os.waitstatus_to_exitcode(status) == 0
