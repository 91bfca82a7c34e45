"""`exec` and signals: each reaches the command once, whoever sends it, with or without a
terminal; Ctrl-C, Ctrl-Z and `fg` at a real pseudo-terminal under a job-control shell.

The command and the shell report every event they see; each test waits for those events
with a deadline (see exec_job_control.py) and never sleeps, so a loaded machine makes the
tests slower, not flaky.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from exec_job_control import PlainExec, Terminal
from testbed import TestBed

linux_only = pytest.mark.skipif(
    not (hasattr(signal, "sigwaitinfo") and Path("/proc/self/status").exists()),
    reason="the counting command needs sigwaitinfo; a test reads pending signals in /proc",
)


def _pending(pid: int, signum: int) -> bool:
    """Whether ``signum`` is pending at ``pid``, sent to it or to its process (Linux /proc)."""
    bit = 1 << (signum - 1)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & bit:
            return True
    return False


@linux_only
def test_exec_sigint_to_its_process_group_reaches_the_command_once(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """What a terminal or a supervisor does: one SIGINT to the whole group of the tool.

    The tool is held stopped while the SIGINT is sent. A signal sent to a group is pending at
    each member before kill() returns, so if the command got a copy too (it would share the
    tool's group) it is pending now, and the test waits until the command has counted it: a
    copy forwarded once the tool is continued can then only arrive as a second delivery. Two
    SIGINTs pending at once would merge into one (standard signals do not queue) and hide it.
    """
    with PlainExec(aws_env, subprocess_env, tmp_path) as run:
        tool = run.process.pid
        os.kill(tool, signal.SIGSTOP)
        os.killpg(tool, signal.SIGINT)
        if _pending(run.command, signal.SIGINT):
            assert run.events.wait_for("sigints") == "1"
        os.kill(tool, signal.SIGCONT)
        assert run.events.wait_for("sigints") == "1"
        assert run.finish() == (128 + signal.SIGTERM, b"", "1")


@linux_only
def test_exec_sigint_to_the_tool_alone_reaches_the_command_once(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    with PlainExec(aws_env, subprocess_env, tmp_path) as run:
        os.kill(run.process.pid, signal.SIGINT)
        assert run.events.wait_for("sigints") == "1"
        assert run.finish() == (128 + signal.SIGTERM, b"", "1")


@linux_only
@pytest.mark.parametrize("group", [False, True], ids=["tool", "group"])
def test_exec_forwards_sigterm_and_returns_128_plus_the_signal(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path, group: bool
) -> None:
    with PlainExec(aws_env, subprocess_env, tmp_path) as run:
        (os.killpg if group else os.kill)(run.process.pid, signal.SIGTERM)
        assert run.ended() == (128 + signal.SIGTERM, b"")
        assert run.events.wait_for("final") == "0"
        assert "sigints" not in run.events.names()


@linux_only
def test_exec_ctrl_c_at_a_terminal_reaches_the_command_once(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """Ctrl-C while the tool is held stopped: the command takes it from the terminal, and a
    copy forwarded once the tool is continued would be a second delivery (see above)."""
    with Terminal(aws_env, subprocess_env, tmp_path) as terminal:
        os.kill(terminal.tool, signal.SIGSTOP)
        terminal.type(b"\x03")  # Ctrl-C: the tty driver signals the foreground group
        assert terminal.events.wait_for("sigints") == "1"
        # The shell must see the stop before the continue: a stop continued before its
        # parent waits is never reported.
        assert terminal.events.wait_for("stops") == "1"
        os.kill(terminal.tool, signal.SIGCONT)
        final, report = terminal.finish()
    assert final == "1"
    # The tool gave the terminal back to its own group before it exited.
    assert report == {
        "status": 128 + signal.SIGTERM, "stops": [signal.SIGSTOP], "holder_is_job": True,
        "holder_is_shell": False,
    }, terminal.transcript()


@linux_only
def test_exec_ctrl_z_stops_the_job_and_fg_continues_the_command(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    with Terminal(aws_env, subprocess_env, tmp_path) as terminal:
        terminal.type(b"\x1a")  # Ctrl-Z: the command stops, the tool stops its job, the shell
        assert terminal.events.wait_for("continued") == "1"  # sees it and continues it (`fg`)
        # Back in the foreground: Ctrl-C still reaches the command once.
        terminal.type(b"\x03")
        assert terminal.events.wait_for("sigints") == "1"
        final, report = terminal.finish()
    assert final == "1"
    assert report == {
        "status": 128 + signal.SIGTERM, "stops": [signal.SIGTSTP], "holder_is_job": True,
        "holder_is_shell": False,
    }, terminal.transcript()
