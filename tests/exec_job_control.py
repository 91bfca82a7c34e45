"""The processes the `exec` signal tests run, and how a test hears from them.

Nothing here sleeps or polls. The command and the job shell each write one line per event
("ready ...", "sigints 1", "stops 1", ...) into a FIFO that the test holds open, and the test
waits for a line with select() and a deadline: a wait ends the moment its event happens, or
fails with every line seen so far once the deadline passes. Under load an event comes late,
never too early, so no ordering the scheduler picks can make a test fail or hang.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_support import TOOL
from testbed import TestBed

# Generous: an event that comes at all comes within seconds, even on a loaded machine.
EVENT_TIMEOUT = 60.0

# The command counts the SIGINTs it gets: it blocks them and takes them one at a time with
# sigwaitinfo (lowest signal number first, so none overtakes another, as they could in
# handlers). A SIGTERM (forwarded by the tool) ends it: it reports the count it had then and
# dies of that SIGTERM, so the tool exits 143. Signals the tool forwards keep their order,
# so a second SIGINT from the tool would be counted before the SIGTERM.
# At a terminal it first reads a line the test typed: a read from the terminal returns only
# once its process group holds the terminal (from the background it is stopped by SIGTTIN
# until the tool, having handed the terminal over, continues it), so "ready ... foreground"
# needs no polling. SIGCONT is blocked (and so counted) only after that read.
COUNTING_COMMAND = """
import os, signal, sys

events, terminal = os.open(sys.argv[1], os.O_WRONLY), sys.argv[2] == "terminal"

def report(name, value):
    os.write(events, f"{name} {value}\\n".encode())  # one short write to a FIFO: atomic

if terminal:
    sys.stdin.buffer.readline()
holds = "foreground" if terminal and os.tcgetpgrp(0) == os.getpgrp() else "no-terminal"
counts = {"sigints": 0, "continued": 0}
names = {signal.SIGINT: "sigints", signal.SIGCONT: "continued"}
taken = {signal.SIGINT, signal.SIGTERM, signal.SIGCONT}
signal.pthread_sigmask(signal.SIG_BLOCK, taken)
report("ready", f"{os.getpid()} {os.getppid()} {holds}")
while True:
    signum = signal.sigwaitinfo(taken).si_signo
    if signum == signal.SIGTERM:
        report("final", counts["sigints"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    counts[names[signum]] += 1
    report(names[signum], counts[names[signum]])
"""

# A minimal job-control shell on a pseudo-terminal: it takes the terminal as its controlling
# terminal, runs the tool as a foreground job in its own process group (as bash does), and
# reports each stop of the job (continuing it in the foreground, as `fg`, after Ctrl-Z or a
# terminal access from the background; a SIGSTOP's sender continues it), then the exit status
# and which process group holds the terminal once the job has ended.
JOB_SHELL = """
import fcntl, json, os, signal, subprocess, sys, termios

events, command = os.open(sys.argv[1], os.O_WRONLY), sys.argv[2:]
fcntl.ioctl(0, termios.TIOCSCTTY, 0)

def report(name, value):
    os.write(events, f"{name} {value}\\n".encode())

def foreground_job():
    os.setpgrp()
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    os.tcsetpgrp(0, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)

job = subprocess.Popen(command, preexec_fn=foreground_job)  # we have no other thread
report("job", job.pid)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
stops = []
while True:
    status = os.waitpid(job.pid, os.WUNTRACED)[1]
    if not os.WIFSTOPPED(status):
        break
    stops.append(os.WSTOPSIG(status))
    report("stops", len(stops))
    if stops[-1] != signal.SIGSTOP:
        os.tcsetpgrp(0, job.pid)
        os.killpg(job.pid, signal.SIGCONT)
holder = os.tcgetpgrp(0)
report("shell", json.dumps({"status": os.waitstatus_to_exitcode(status), "stops": stops,
                            "holder_is_job": holder == job.pid,
                            "holder_is_shell": holder == os.getpgrp()}))
"""


class Events:
    """The lines the command and the shell write into a FIFO, each waited for with a deadline.

    The test opens the FIFO read-write: opening it never blocks (nor do the writers' opens),
    and a read never sees end-of-file when a writer exits. Other descriptors (the terminal's
    master side) can be drained in the same select(), so no thread reads for the test.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / "events"
        os.mkfifo(self.path, 0o600)
        self._fifo = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        self._partial = b""
        self._unclaimed: list[tuple[str, str]] = []
        self.seen: list[str] = []
        self._drained: dict[int, bytearray] = {}

    def drain(self, fd: int, into: bytearray) -> None:
        """Read ``fd`` into ``into`` whenever waiting, until it hangs up."""
        os.set_blocking(fd, False)
        self._drained[fd] = into

    def wait_for(self, name: str, timeout: float = EVENT_TIMEOUT) -> str:
        """The value of the first line named ``name`` not yet waited for (others stay)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, (seen_name, value) in enumerate(self._unclaimed):
                if seen_name == name:
                    del self._unclaimed[index]
                    return value
            left = deadline - time.monotonic()
            assert left > 0, f"no {name!r} event in {timeout:.0f} s; events: {self.seen}"
            readable, _, _ = select.select([self._fifo, *self._drained], [], [], left)
            for fd in readable:
                self._read(fd)

    def names(self) -> list[str]:
        """The names of every line written so far, in order (those not yet read included)."""
        self._read(self._fifo)
        return [line.split(" ", 1)[0] for line in self.seen]

    def close(self) -> None:
        os.close(self._fifo)

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: every process closed the terminal
            if exc.errno != errno.EIO:
                raise
            chunk = b""
        if fd != self._fifo:
            if chunk:
                self._drained[fd] += chunk
            else:
                del self._drained[fd]
            return
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            name, _, value = line.decode().partition(" ")
            self._unclaimed.append((name, value))
            self.seen.append(line.decode())


class Ready:
    """What the command reports once it counts signals: its pid, its parent's (the tool)."""

    def __init__(self, line: str) -> None:
        command, tool, self.holds = line.split()
        self.command, self.tool = int(command), int(tool)


def command_line(bed: TestBed, folder: Path, events: Events, mode: str) -> list[str]:
    """``exec`` running the counting command, which reports into ``events``."""
    script = folder / "command.py"
    script.write_text(COUNTING_COMMAND)
    return [*TOOL, "exec", "--role-arn", bed.world.target_role_arn, "--",
            sys.executable, str(script), str(events.path), mode]


class _Processes:
    """Process groups started for one test: on a failure, each still there gets SIGKILL, the
    newest first, so that a failed test leaves nothing behind holding a terminal or a port.
    (On success every one has exited; its number may already belong to someone else.)"""

    def __init__(self) -> None:
        self.groups: list[int] = []

    def kill_all(self) -> None:
        for group in reversed(self.groups):
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class PlainExec(_Processes):
    """The tool in a session and process group of its own, no terminal (as in CI), running
    the counting command; a context manager."""

    def __init__(self, bed: TestBed, env: dict[str, str], folder: Path) -> None:
        super().__init__()
        self.bed, self.env, self.folder = bed, env, folder
        self.events = Events(folder)

    def __enter__(self) -> PlainExec:
        self.process = subprocess.Popen(
            command_line(self.bed, self.folder, self.events, "plain"),
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        self.groups.append(self.process.pid)
        try:
            ready = Ready(self.events.wait_for("ready"))
            self.groups.append(ready.command)
            assert ready.tool == self.process.pid and ready.holds == "no-terminal"
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        self.command = ready.command
        return self

    def ended(self) -> tuple[int, bytes]:
        """The tool's exit status and stderr, once it exits."""
        _, stderr = self.process.communicate(timeout=EVENT_TIMEOUT)
        return self.process.returncode, stderr

    def finish(self) -> tuple[int, bytes, str]:
        """SIGTERM to the tool alone; the command dies of it, after reporting its final
        SIGINT count: (the tool's status, its stderr, that count)."""
        self.process.send_signal(signal.SIGTERM)
        status, stderr = self.ended()
        return status, stderr, self.events.wait_for("final")

    def __exit__(self, *failure: object) -> None:
        if failure[0] is not None:
            self.kill_all()
        try:
            self.process.wait(timeout=EVENT_TIMEOUT)
        finally:
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.events.close()


class Terminal(_Processes):
    """The job shell on a new pseudo-terminal, running `exec` with the counting command, which
    holds the terminal once `with` has entered; a context manager."""

    def __init__(self, bed: TestBed, env: dict[str, str], folder: Path) -> None:
        super().__init__()
        self.bed, self.env, self.folder = bed, env, folder
        self.events = Events(folder)
        self.output = bytearray()

    def __enter__(self) -> Terminal:
        self.master, slave = os.openpty()
        shell = self.folder / "shell.py"
        shell.write_text(JOB_SHELL)
        command = command_line(self.bed, self.folder, self.events, "terminal")
        try:
            self.shell = subprocess.Popen(
                [sys.executable, str(shell), str(self.events.path), *command],
                env=self.env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            )
        finally:
            os.close(slave)
        self.groups.append(self.shell.pid)
        self.events.drain(self.master, self.output)
        try:
            self.groups.append(int(self.events.wait_for("job")))  # the tool's group
            self.type(b"go\n")  # the line the command reads once it holds the terminal
            ready = Ready(self.events.wait_for("ready"))
            self.groups.append(ready.command)
            assert ready.holds == "foreground", self.transcript()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        self.tool = ready.tool
        return self

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self) -> tuple[str, dict[str, object]]:
        """SIGTERM to the tool: the command's final SIGINT count, and the shell's report."""
        os.kill(self.tool, signal.SIGTERM)
        final = self.events.wait_for("final")
        report: dict[str, object] = json.loads(self.events.wait_for("shell"))
        assert self.shell.wait(timeout=EVENT_TIMEOUT) == 0, self.transcript()
        return final, report

    def transcript(self) -> str:
        return f"events {self.events.seen}, terminal {bytes(self.output)!r}"

    def __exit__(self, *failure: object) -> None:
        if failure[0] is not None:
            self.kill_all()
        try:
            self.shell.wait(timeout=EVENT_TIMEOUT)
        finally:
            os.close(self.master)
            self.events.close()
