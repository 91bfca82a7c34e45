"""``assume-provider exec -- CMD [ARG...]``: run a command with the chain's credentials.

The command inherits stdin, stdout and stderr; its exit status is ours (128 + N if signal N
ended it).

Signals reach the command once each, whoever sends them. The command runs in a process group
of its own, which only it (and its children) belongs to:

- SIGINT, SIGTERM and SIGHUP sent to us, alone (``kill PID``) or with our process group
  (``kill -- -PGID``, ``kill %1``, a supervisor), reach only us, and we forward them to the
  command's group: once.
- When we are the foreground job of our controlling terminal, the command's group becomes the
  terminal's foreground group, as a shell does for each job: the command reads the terminal,
  and Ctrl-C, Ctrl-\\ and Ctrl-Z go to it straight from the terminal, not to us, so nothing is
  forwarded twice. We take the terminal back when it ends. When the command stops (Ctrl-Z, or
  reading the terminal from the background) we stop our own group with the same signal, so
  the shell sees the job stop, and continue the command when we are continued (``fg``/``bg``).
- Without a controlling terminal (CI, cron, containers, ``setsid``) there is no job control:
  the command simply has its own group, and every signal reaches it through us.

Why not the alternatives. With the command in our group, a signal sent to the group reaches
both, and nothing tells us whether the command got it too. ``siginfo`` (``sigwaitinfo``'s
``si_code``) tells the tty driver from ``kill()``, but not a ``kill()`` of the group from a
``kill()`` of us alone, and macOS has no ``sigwaitinfo``. Exec'ing the command in our place
would make a signal death ours instead of exit status 128 + N. The cost of this design: while
the command holds the terminal, the other processes of our group (a script that ran us) do not
get the terminal's signals; they see our exit status (130 after a Ctrl-C that ended it). A
SIGKILL of our group does not reach the command (no process can forward SIGKILL).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from types import FrameType
from typing import Any, Optional

from . import common
from .env_cmd import as_environment
from .obtain import obtain

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_TERMINAL_STOPS = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
# The command's own process group (pgid = its pid), set in the child before exec.
_OWN_PROCESS_GROUP: dict[str, Any] = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
)


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "exec",
        parents=parents,
        help="run a command with the credentials in its environment",
        description="Run CMD with the role chain's credentials in its environment.",
        usage="assume-provider exec [options] -- CMD [ARG...]",
    )
    common.add_cache_options(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        from ..errors import ConfigError

        raise ConfigError("exec needs a command: assume-provider exec -- CMD [ARG...]")
    # Taken before obtain(), which marks our own environment for the source's processes.
    environment: dict[str, str] = dict(os.environ)
    environment.update(as_environment(obtain(args).entry))
    return run_command(command, environment)


def run_command(command: list[str], environment: dict[str, str]) -> int:
    # Handlers go in before the command starts, so that a signal arriving while it starts is
    # forwarded once it exists rather than ending us (the command inherits none of them:
    # exec resets caught signals to their defaults).
    job: list[int] = []
    early: list[int] = []

    def forward(signum: int, frame: Optional[FrameType]) -> None:
        del frame
        if job:
            _signal_group(job[0], signum)
        else:
            early.append(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    terminal: Optional[int] = None
    try:
        try:
            child = subprocess.Popen(  # noqa: S603 - the user's command
                command, env=environment, **_OWN_PROCESS_GROUP
            )
        except OSError as exc:
            raise RuntimeError(f"cannot run {command[0]!r}: {exc.strerror or exc}") from None
        job.append(child.pid)
        for signum in early:
            _signal_group(child.pid, signum)
        terminal = _controlling_terminal()
        if terminal is None:
            status = _wait(child.pid)
        else:
            status = _Foreground(terminal, child.pid).wait()
        code = os.waitstatus_to_exitcode(status)
        child.returncode = code  # reaped here: Popen must not wait for it again
    finally:
        if terminal is not None:
            os.close(terminal)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


def _signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to the command's process group (to the command if it left it)."""
    for send in (os.killpg, os.kill):
        try:
            send(pgid, signum)
            return
        except ProcessLookupError:
            continue
        except PermissionError:  # e.g. a setuid command: it cannot be signalled by us
            return


def _wait(pid: int) -> int:
    # os.waitpid retries after a signal handler ran (PEP 475).
    return os.waitpid(pid, 0)[1]


def _controlling_terminal() -> Optional[int]:
    """A descriptor of our controlling terminal, or None if we have none."""
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None


class _Foreground:
    """Job control for a command run from a terminal: who holds it, stops and continues."""

    def __init__(self, terminal: int, pgid: int) -> None:
        self.terminal = terminal
        self.pgid = pgid
        self.own = os.getpgrp()
        self.handed_over = False

    def wait(self) -> int:
        # Changing the foreground group from the background raises SIGTTOU: ignored meanwhile.
        previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            if self._holder() == self.own:  # we are the foreground job: the command is now
                self._give(self.pgid)
            return self._wait_until_it_ends()
        finally:
            if self.handed_over:
                self._give(self.own)
            signal.signal(signal.SIGTTOU, previous)

    def _wait_until_it_ends(self) -> int:
        while True:
            status = os.waitpid(self.pgid, os.WUNTRACED)[1]
            if not os.WIFSTOPPED(status):
                return status
            stop = os.WSTOPSIG(status)
            if stop in (signal.SIGTTIN, signal.SIGTTOU) and self._holder() == self.pgid:
                # It touched the terminal just before we handed it over: it may now.
                _signal_group(self.pgid, signal.SIGCONT)
                continue
            if self.handed_over:
                self._give(self.own)
            self._stop_own_group(stop)
            # Continued: by `fg` if the shell gave our group the terminal, else by `bg`.
            if self._holder() == self.own:
                self._give(self.pgid)
            _signal_group(self.pgid, signal.SIGCONT)

    def _stop_own_group(self, stop: int) -> None:
        """Stop our group (us included) the way the command stopped; returns when continued.

        An orphaned group (no shell to continue it) is not stopped by the kernel: we go on
        at once and so does the command, as it would with no job control.
        """
        if stop not in _TERMINAL_STOPS:
            os.killpg(self.own, signal.SIGSTOP)
            return
        previous = signal.signal(stop, signal.SIG_DFL)
        try:
            os.killpg(self.own, stop)  # delivered to us before killpg returns
        finally:
            signal.signal(stop, previous)

    def _holder(self) -> int:
        try:
            return os.tcgetpgrp(self.terminal)
        except OSError:  # hung up
            return -1

    def _give(self, pgid: int) -> None:
        try:
            os.tcsetpgrp(self.terminal, pgid)
        except OSError:  # hung up, or the group is gone
            return
        self.handed_over = pgid != self.own
