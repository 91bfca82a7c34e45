"""collector_paused: the package's pause of the garbage collector ends when the last of its
pauses ends, never ends a pause of the application's, and a forked child gets it back."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator

import pytest

from assume_provider.collector import collector_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_two_threads_pausing_at_once_resume_when_both_are_done() -> None:
    gc.enable()
    first_in, second_in, first_may_leave, first_left = (threading.Event() for _ in range(4))
    seen = {}

    def first() -> None:
        with collector_paused():
            first_in.set()
            first_may_leave.wait(30)
        first_left.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(30)
    with collector_paused():
        second_in.set()
        first_may_leave.set()
        assert first_left.wait(30)
        seen["after the first left"] = gc.isenabled()
    thread.join(30)
    assert seen == {"after the first left": False}
    assert gc.isenabled()


def test_the_applications_own_pause_is_left_alone() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_child_forked_during_a_pause_has_the_collector() -> None:
    gc.enable()
    with collector_paused():
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report and leave at once
            os.write(write, b"1" if gc.isenabled() else b"0")
            os._exit(0)
        os.close(write)
        reported = os.read(read, 1)
        os.close(read)
        os.waitpid(pid, 0)
        assert not gc.isenabled()  # the parent's pause goes on
    assert reported == b"1"
    assert gc.isenabled()
