"""`env` (eval'd by real shells) and `exec` (exit codes, signals, nesting)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_support import AWS, TOOL, run_aws, run_tool, tool_command_line
from testbed import TestBed

from assume_provider.cli.env_cmd import export_line, quote, unset_line

NASTY = [
    "plain",
    "it's",
    'dou"ble',
    "back\\slash\\",
    "$HOME `id` $(id) ${x}",
    "new\nline",
    "tab\tand space ",
    "semi;colon & pipe | star * ? [a]",
    "'",
    "\\'",
    "ünïcödé ✓",
    "",
]

VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_DEFAULT_REGION",
    "ASSUME_PROVIDER_EXPORTED_KEY_ID",
)


def _shell_roundtrip(shell: list[str], script: str) -> str:
    return subprocess.run(
        [*shell, script], capture_output=True, text=True, check=True, timeout=30
    ).stdout


@pytest.mark.parametrize("value", NASTY)
def test_sh_quoting_round_trips_any_value(value: str) -> None:
    script = export_line("sh", "V", value) + '\nprintf "%s" "$V"'
    assert _shell_roundtrip(["sh", "-c"], script) == value


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_quoting_round_trips_any_value() -> None:
    for value in NASTY:
        script = export_line("fish", "V", value) + '\nprintf "%s" "$V"'
        assert _shell_roundtrip(["fish", "--no-config", "-c"], script) == value, value


def test_powershell_lines() -> None:
    assert export_line("powershell", "V", "it's") == "$Env:V = 'it''s'"
    assert quote("powershell", "a\u2019b") == "'a\u2019\u2019b'"
    assert unset_line("powershell", "V") == "Remove-Item Env:V -ErrorAction SilentlyContinue"
    assert unset_line("fish", "V") == "set -e V;"


def _env_lines(bed: TestBed, env: dict[str, str], *extra: str) -> str:
    result = run_tool(["env", "--role-arn", bed.world.target_role_arn, *extra], env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_env_eval_in_sh_exports_everything_and_unset_removes_it(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    bed = aws_env
    lines = _env_lines(bed, subprocess_env)
    show = "; ".join(f'printf "%s=%s\\n" {name} "${{{name}-UNSET}}"' for name in VARIABLES)
    unset = run_tool(["env", "--unset"], subprocess_env)
    assert unset.returncode == 0, unset.stderr
    out = subprocess.run(
        ["sh", "-c", f"{lines}\n{show}\necho ---\n{unset.stdout}\n{show}"],
        capture_output=True, text=True, check=True, env=subprocess_env, timeout=30,
    ).stdout
    exported, removed = out.split("---\n")
    values = dict(line.split("=", 1) for line in exported.splitlines())
    assert values["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert values["AWS_SESSION_TOKEN"] == values["AWS_SECURITY_TOKEN"]
    assert values["AWS_CREDENTIAL_EXPIRATION"].endswith("Z")
    assert values["AWS_DEFAULT_REGION"] == bed.world.region
    assert values["ASSUME_PROVIDER_EXPORTED_KEY_ID"] == values["AWS_ACCESS_KEY_ID"]
    after = dict(line.split("=", 1) for line in removed.splitlines())
    for name in VARIABLES:
        if name != "AWS_DEFAULT_REGION":  # the user's own region is left alone
            assert after[name] == "UNSET", name


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_env_for_fish(aws_env: TestBed, subprocess_env: dict[str, str]) -> None:
    lines = _env_lines(aws_env, subprocess_env, "--shell", "fish")
    out = _shell_roundtrip(["fish", "--no-config", "-c"], lines + 'printf "%s" $AWS_ACCESS_KEY_ID')
    assert out.startswith("ASIA")


def test_env_twice_still_assumes_from_the_real_source(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    """The second run sees account A's exported credentials and must not use them."""
    bed = aws_env
    role = bed.world.target_role_arn
    tool = tool_command_line()
    script = (
        f'eval "$({tool} env --no-cache --role-arn {role})" && '
        f'eval "$({tool} env --no-cache --role-arn {role})" && '
        f'{tool} credential-process --no-cache --role-arn {role}'
    )
    result = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env=subprocess_env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    calls = bed.proxy.calls(action="AssumeRole")
    assert len(calls) == 3
    instance_key = bed.imds.credentials.access_key_id
    assert {call.access_key_id for call in calls} == {instance_key}

    # And with the cache: the second `env` is a hit, the shell still ends up as A.
    script = f'eval "$({tool} env --role-arn {role})"; eval "$({tool} env --role-arn {role})"'
    final = subprocess.run(
        ["sh", "-c", script + "; aws sts get-caller-identity --output json"],
        capture_output=True, text=True, timeout=60,
        env=dict(subprocess_env, PATH=f"{Path(sys.executable).parent}:{subprocess_env['PATH']}"),
    )
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["Account"] == bed.world.account_a
    assert bed.proxy.count(action="AssumeRole") == 4


def test_exec_passes_the_exit_status_and_the_variables(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    role = aws_env.world.target_role_arn
    result = run_tool(
        ["exec", "--role-arn", role, "--", "sh", "-c",
         'test -n "$AWS_SESSION_TOKEN" && echo "$ASSUME_PROVIDER_EXPORTED_KEY_ID"; exit 7'],
        subprocess_env,
    )
    assert result.returncode == 7, result.stderr
    assert result.stdout.startswith("ASIA")
    assert run_tool(["exec", "--role-arn", role, "--", "true"], subprocess_env).returncode == 0
    # stdin is passed through
    echoed = run_tool(["exec", "--role-arn", role, "--", "cat"], subprocess_env, input="hello")
    assert echoed.stdout == "hello"
    missing = run_tool(["exec", "--role-arn", role, "--", "no-such-command-xyz"], subprocess_env)
    assert missing.returncode == 1
    assert missing.stderr.startswith("assume-provider: error: cannot run 'no-such-command-xyz'")
    usage = run_tool(["exec", "--role-arn", role], subprocess_env)
    assert usage.returncode == 2
    assert aws_env.proxy.count(action="AssumeRole") == 1  # all but the first from the cache


def test_exec_runs_the_aws_cli_as_the_role_and_a_nested_provider_uses_the_real_source(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    bed = aws_env
    role = bed.world.target_role_arn
    result = run_tool(
        ["exec", "--role-arn", role, "--", *TOOL, "credential-process", "--no-cache",
         "--role-arn", role],
        subprocess_env,
    )
    assert result.returncode == 0, result.stderr
    calls = bed.proxy.calls(action="AssumeRole")
    assert len(calls) == 2
    assert {call.access_key_id for call in calls} == {bed.imds.credentials.access_key_id}
    inside = run_tool(
        ["exec", "--role-arn", role, "--", *AWS, "sts", "get-caller-identity", "--output", "json"],
        subprocess_env,
    )
    assert inside.returncode == 0, inside.stderr
    assert json.loads(inside.stdout)["Account"] == bed.world.account_a
    outside = run_aws(["sts", "get-caller-identity"], subprocess_env)  # the instance itself
    assert json.loads(outside.stdout)["Account"] == bed.world.account_b


# --- exec and signals -------------------------------------------------------------------------
# The command counts the SIGINTs it gets: it blocks them and takes them one at a time with
# sigwaitinfo (lowest signal number first, so none overtakes another, as they could in
# handlers). A SIGTERM (forwarded by the tool) ends it: it writes the count it had then and
# dies of that SIGTERM, so the tool exits 143. Signals the tool forwards keep their order,
# so a second SIGINT from the tool would be counted before the SIGTERM.
_COUNTING_CHILD = """
import os, signal, sys, time

state, terminal = sys.argv[1], sys.argv[2] == "terminal"
counts = {"sigints": 0, "continued": 0}
names = {signal.SIGINT: "sigints", signal.SIGCONT: "continued"}

def write(name, text):
    path = os.path.join(state, name)
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)

taken = {signal.SIGINT, signal.SIGTERM, signal.SIGCONT}
signal.pthread_sigmask(signal.SIG_BLOCK, taken)
ready = "started"
if terminal:  # ready once the tool has made us the terminal's foreground group
    deadline = time.monotonic() + 30
    while os.tcgetpgrp(0) != os.getpgrp() and time.monotonic() < deadline:
        time.sleep(0.01)
    ready = "foreground" if os.tcgetpgrp(0) == os.getpgrp() else "background"
write("ready", ready)
while True:
    signum = signal.sigwaitinfo(taken).si_signo
    if signum == signal.SIGTERM:
        write("final", str(counts["sigints"]))
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    counts[names[signum]] += 1
    write(names[signum], str(counts[names[signum]]))
"""

# A minimal job-control shell on a pseudo-terminal: it takes the terminal as its controlling
# terminal, runs the tool as a foreground job in its own process group (as bash does), and
# records what happens: each stop of the job (continuing it in the foreground, as `fg`, after
# Ctrl-Z or a terminal access from the background),
# the exit status, and which process group holds the terminal once the job has ended.
_JOB_SHELL = """
import fcntl, json, os, signal, subprocess, sys, termios

state, command = sys.argv[1], sys.argv[2:]
fcntl.ioctl(0, termios.TIOCSCTTY, 0)

def foreground_job():
    os.setpgrp()
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    os.tcsetpgrp(0, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)

job = subprocess.Popen(command, preexec_fn=foreground_job)  # we have no other thread
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
stops = []
while True:
    status = os.waitpid(job.pid, os.WUNTRACED)[1]
    if not os.WIFSTOPPED(status):
        break
    stops.append(os.WSTOPSIG(status))
    with open(os.path.join(state, "stops.tmp"), "w") as handle:  # the test waits for it:
        handle.write(str(len(stops)))  # renamed into place, never seen half-written
    os.replace(os.path.join(state, "stops.tmp"), os.path.join(state, "stops"))
    if stops[-1] != signal.SIGSTOP:  # a job-control stop: `fg` (SIGSTOP: its sender continues)
        os.tcsetpgrp(0, job.pid)
        os.killpg(job.pid, signal.SIGCONT)
holder = os.tcgetpgrp(0)
report = {"status": os.waitstatus_to_exitcode(status), "stops": stops,
          "holder_is_job": holder == job.pid, "holder_is_shell": holder == os.getpgrp()}
with open(os.path.join(state, "shell.json"), "w") as handle:
    json.dump(report, handle)
"""


def _wait_for(path: Path, timeout: float = 30) -> str:
    """Poll for a file a child writes when it is ready (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear in {timeout} s"
        time.sleep(0.01)
    return path.read_text()


def _children(pid: int) -> list[int]:
    """The processes that ``pid``'s main thread started (Linux /proc)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _pending(pid: int, signum: int) -> bool:
    """Whether ``signum`` is pending at ``pid``, sent to it or to its process (Linux /proc)."""
    bit = 1 << (signum - 1)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & bit:
            return True
    return False


linux_only = pytest.mark.skipif(
    not (hasattr(signal, "sigwaitinfo") and Path("/proc/self/task").exists()),
    reason="the counting command needs sigwaitinfo; the tests look at processes in /proc",
)


def _exec_counting_child(role: str, state: Path, mode: str) -> list[str]:
    child = state / "child.py"
    child.write_text(_COUNTING_CHILD)
    return [*TOOL, "exec", "--role-arn", role, "--", sys.executable, str(child), str(state), mode]


def _start_exec(bed: TestBed, env: dict[str, str], state: Path) -> subprocess.Popen[bytes]:
    """The tool in a session and process group of its own, no terminal (as in CI)."""
    process = subprocess.Popen(
        _exec_counting_child(bed.world.target_role_arn, state, "plain"),
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert _wait_for(state / "ready") == "started"
    except BaseException:
        process.kill()
        raise
    return process


def _finish(process: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    """SIGTERM to the tool alone; the command dies of it, after writing its SIGINT count."""
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr


@linux_only
def test_exec_sigint_to_its_process_group_reaches_the_command_once(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """What a terminal or a supervisor does: one SIGINT to the whole group of the tool.

    The tool is held stopped while the SIGINT is sent, until the command has no SIGINT
    pending: a copy forwarded by the tool can then only arrive as a second delivery. Two
    SIGINTs pending at once would merge into one (standard signals do not queue) and hide it.
    """
    process = _start_exec(aws_env, subprocess_env, tmp_path)
    (command,) = _children(process.pid)
    os.kill(process.pid, signal.SIGSTOP)
    os.killpg(process.pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while _pending(command, signal.SIGINT):
        assert time.monotonic() < deadline, "the command never took its SIGINT"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGCONT)
    assert _wait_for(tmp_path / "sigints") == "1"
    assert _finish(process) == (128 + signal.SIGTERM, b"")
    assert (tmp_path / "final").read_text() == "1"


@linux_only
def test_exec_sigint_to_the_tool_alone_reaches_the_command_once(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    process = _start_exec(aws_env, subprocess_env, tmp_path)
    os.kill(process.pid, signal.SIGINT)
    assert _wait_for(tmp_path / "sigints") == "1"
    assert _finish(process) == (128 + signal.SIGTERM, b"")
    assert (tmp_path / "final").read_text() == "1"


@linux_only
@pytest.mark.parametrize("group", [False, True], ids=["tool", "group"])
def test_exec_forwards_sigterm_and_returns_128_plus_the_signal(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path, group: bool
) -> None:
    process = _start_exec(aws_env, subprocess_env, tmp_path)
    (os.killpg if group else os.kill)(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert (process.returncode, stderr) == (128 + signal.SIGTERM, b"")
    assert (tmp_path / "final").read_text() == "0"
    assert not (tmp_path / "sigints").exists()


class _Terminal:
    """The job shell on a new pseudo-terminal, running `exec` with the counting command."""

    def __init__(self, bed: TestBed, env: dict[str, str], state: Path) -> None:
        self.state = state
        self.master, slave = os.openpty()
        shell = state / "shell.py"
        shell.write_text(_JOB_SHELL)
        command = _exec_counting_child(bed.world.target_role_arn, state, "terminal")
        self.shell = subprocess.Popen(
            [sys.executable, str(shell), str(state), *command],
            env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        )
        os.close(slave)
        self.output = bytearray()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every process closed the terminal
                return
            if not chunk:
                return
            self.output += chunk

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def tool_pid(self) -> int:
        """The tool is the job shell's only child: the parent of the command."""
        (tool,) = _children(self.shell.pid)
        return tool

    def finish(self) -> dict[str, object]:
        os.kill(self.tool_pid(), signal.SIGTERM)
        assert self.shell.wait(timeout=30) == 0, self.output.decode(errors="replace")
        self.reader.join(timeout=30)
        os.close(self.master)
        report: dict[str, object] = json.loads((self.state / "shell.json").read_text())
        return report

    def kill(self) -> None:
        if self.shell.poll() is None:
            os.killpg(self.shell.pid, signal.SIGKILL)
            self.shell.wait()


@linux_only
@pytest.mark.terminal
def test_exec_ctrl_c_at_a_terminal_reaches_the_command_once(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """Ctrl-C while the tool is held stopped: the command takes it from the terminal, and a
    copy forwarded once the tool is continued would be a second delivery (see above)."""
    terminal = _Terminal(aws_env, subprocess_env, tmp_path)
    try:
        assert _wait_for(tmp_path / "ready") == "foreground"
        tool = terminal.tool_pid()
        os.kill(tool, signal.SIGSTOP)
        terminal.type(b"\x03")  # Ctrl-C: the tty driver signals the foreground group
        assert _wait_for(tmp_path / "sigints") == "1"
        # The shell must see the stop before the continue: a stop continued before its
        # parent waits is never reported (a loaded machine can order it so).
        assert _wait_for(tmp_path / "stops") == "1"
        os.kill(tool, signal.SIGCONT)
        report = terminal.finish()
    finally:
        terminal.kill()
    assert (tmp_path / "final").read_text() == "1"
    # The tool gave the terminal back to its own group before it exited.
    assert report == {
        "status": 128 + signal.SIGTERM, "stops": [signal.SIGSTOP], "holder_is_job": True,
        "holder_is_shell": False,
    }, terminal.output


@linux_only
@pytest.mark.terminal
def test_exec_ctrl_z_stops_the_job_and_fg_continues_the_command(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    terminal = _Terminal(aws_env, subprocess_env, tmp_path)
    try:
        assert _wait_for(tmp_path / "ready") == "foreground"
        terminal.type(b"\x1a")  # Ctrl-Z: the command stops, the tool stops its job, the shell
        assert _wait_for(tmp_path / "continued") == "1"  # sees it and continues it (`fg`)
        # Back in the foreground: Ctrl-C still reaches the command once.
        terminal.type(b"\x03")
        assert _wait_for(tmp_path / "sigints") == "1"
        report = terminal.finish()
    finally:
        terminal.kill()
    assert (tmp_path / "final").read_text() == "1"
    assert report == {
        "status": 128 + signal.SIGTERM, "stops": [signal.SIGTSTP], "holder_is_job": True,
        "holder_is_shell": False,
    }, terminal.output
