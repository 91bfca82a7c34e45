"""An ASSUME_PROVIDER_* variable the package does not know: one WARNING line naming it and the
closest known one, once per process, wherever the environment is read (the library's
settings, the command line, the server; zero-code activation in tests/test_zero_code.py);
nothing when every such variable is known."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import run_tool
from testbed import TestBed

from assume_provider.config import variables
from assume_provider.config.inputs import SettingInputs
from assume_provider.config.profiles import ConfigFiles, ProfileChoice
from assume_provider.config.settings import resolve_settings

ROOT = Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::111111111111:role/R"
WARNING = "assume-provider: warning: "
MISSPELT = {
    "ASSUME_PROVIDER_ROLEARN": "ASSUME_PROVIDER_ROLE_ARN",
    "ASSUME_PROVIDER_ROLE": "ASSUME_PROVIDER_ROLE_ARN",
    "ASSUME_PROVIDER_EXTERNALID": "ASSUME_PROVIDER_EXTERNAL_ID",
    "ASSUME_PROVIDER_DURATION": "ASSUME_PROVIDER_DURATION_SECONDS",
    "ASSUME_PROVIDER_ENABLED": "ASSUME_PROVIDER_ENABLE",
}
# Unknown on purpose: the misspellings this file and the docs use as examples.
EXAMPLES = set(MISSPELT) | {"ASSUME_PROVIDER_SESSIONNAME"}


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has reported nothing yet."""
    monkeypatch.setattr(variables, "_reported", set())
    monkeypatch.setattr(variables, "_scanned_size", -1)


def _resolve(environ: dict[str, str]) -> None:
    files = ConfigFiles.of_profiles({})
    resolve_settings(SettingInputs({}, environ, ProfileChoice("default", None), files))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(("name", "meant"), sorted(MISSPELT.items()))
def test_the_library_warns_once_naming_the_variable_and_the_closest_known_one(
    name: str, meant: str, fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {name: ROLE, "ASSUME_PROVIDER_SESSION_NAME": "s1"}
    with caplog.at_level(logging.WARNING, logger="assume_provider"):
        _resolve(environ)
        _resolve(environ)  # a second session of the same process: no second line
    assert _warnings(caplog) == [
        f"unknown environment variable {name} (did you mean {meant}?): assume-provider ignores it"
    ]


def test_two_unknown_variables_share_one_line(
    fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {"ASSUME_PROVIDER_ROLEARN": ROLE, "ASSUME_PROVIDER_SESSIONNAME": "x"}
    with caplog.at_level(logging.WARNING, logger="assume_provider"):
        _resolve(environ)
    (line,) = _warnings(caplog)
    assert "ASSUME_PROVIDER_ROLEARN (did you mean ASSUME_PROVIDER_ROLE_ARN?)" in line
    assert "ASSUME_PROVIDER_SESSIONNAME (did you mean ASSUME_PROVIDER_SESSION_NAME?)" in line


def test_nothing_when_every_variable_is_known(
    fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {name: "1" for name in variables.KNOWN if name != "ASSUME_PROVIDER_ROLE_ARN"}
    environ.update(AWS_REGION="us-east-1", PATH="/bin", ASSUME_PROVIDER_ROLE_ARN=ROLE)
    assert variables.unknown_variables(environ) == []
    with caplog.at_level(logging.DEBUG, logger="assume_provider"):
        variables.warn_unknown_variables(environ)
    assert _warnings(caplog) == []


def test_every_assume_provider_name_the_project_uses_is_known() -> None:
    """Code, scripts, CI, tests and docs: a name used anywhere must never be flagged."""
    pattern = re.compile(rb"ASSUME_PROVIDER_[A-Z0-9_]*[A-Z0-9]")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    used: set[str] = set()
    for name in filter(None, listed):
        path = ROOT / name.decode()
        if path.is_file():
            used |= {found.decode() for found in pattern.findall(path.read_bytes())}
    assert "ASSUME_PROVIDER_EXPORTED_KEY_ID" in used  # the scan really saw the code
    assert sorted(used - variables.KNOWN - EXAMPLES) == []


def test_the_startup_line_knows_the_same_names() -> None:
    """The .pth line holds the known names itself (importing them would cost every start)."""
    (line,) = [
        text
        for text in (ROOT / "startup" / "assume_provider_startup.pth").read_text().splitlines()
        if text.startswith("import")
    ]
    known = re.search(r'not in "\|([A-Z0-9_|]+)\|"', line)
    assert known is not None, line
    assert {f"ASSUME_PROVIDER_{name}" for name in known.group(1).split("|")} == variables.KNOWN


def test_os_environ_is_scanned_again_when_it_gains_a_variable(
    fresh: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("ASSUME_PROVIDER_")]:
        monkeypatch.delenv(name)
    with caplog.at_level(logging.WARNING, logger="assume_provider"):
        variables.warn_unknown_variables()
        monkeypatch.setenv("ASSUME_PROVIDER_ROLEARN", ROLE)
        variables.warn_unknown_variables()
        variables.warn_unknown_variables()
    (line,) = _warnings(caplog)
    assert "ASSUME_PROVIDER_ROLEARN" in line


def test_the_scan_is_all_it_costs_when_none_is_set() -> None:
    """With no ASSUME_PROVIDER_* variable the check imports nothing and logs nothing."""
    code = (
        "import sys; from assume_provider.config.variables import warn_unknown_variables; "
        "before = set(sys.modules); warn_unknown_variables(); "
        "print(sorted(set(sys.modules) - before))"
    )
    env = {"PATH": "/bin:/usr/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


# -- the command line and the server --------------------------------------------------------


def _warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(WARNING)]


def test_the_cli_warns_once_in_its_own_format(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    subprocess_env["ASSUME_PROVIDER_ROLEARN"] = aws_env.world.target_role_arn
    done = run_tool(["credential-process"], subprocess_env)
    assert done.returncode == 2  # the role really was not taken
    assert _warning_lines(done.stderr) == [
        f"{WARNING}unknown environment variable ASSUME_PROVIDER_ROLEARN (did you mean "
        "ASSUME_PROVIDER_ROLE_ARN?): assume-provider ignores it"
    ]
    assert len(done.stderr.splitlines()) == 2  # the warning, then the one error line


def test_the_cli_warns_even_when_the_disk_cache_could_answer(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    args = ["credential-process", "--role-arn", aws_env.world.target_role_arn]
    assert run_tool(args, subprocess_env).returncode == 0  # the entry a hit would serve
    subprocess_env["ASSUME_PROVIDER_DURATION"] = "900"
    done = run_tool(args, subprocess_env)
    assert done.returncode == 0, done.stderr
    (line,) = _warning_lines(done.stderr)
    assert "ASSUME_PROVIDER_DURATION (did you mean ASSUME_PROVIDER_DURATION_SECONDS?)" in line
    assert aws_env.proxy.count(action="AssumeRole") == 1  # still served from the cache


def test_the_cli_says_nothing_when_every_variable_is_known(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    subprocess_env.update(
        ASSUME_PROVIDER_ROLE_ARN=aws_env.world.target_role_arn,
        ASSUME_PROVIDER_SESSION_NAME="known",
        ASSUME_PROVIDER_EXPORTED_KEY_ID="AKIDNOTOURS",
        ASSUME_PROVIDER_ENABLE="0",
    )
    done = run_tool(["credential-process"], subprocess_env)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_server_warns_once(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    subprocess_env["ASSUME_PROVIDER_EXTERNALID"] = "x"
    done = run_tool(
        ["serve", "--role-arn", aws_env.world.target_role_arn, "--host", "0.0.0.0"],
        subprocess_env,
    )
    assert done.returncode == 2  # refused before binding; the environment was read first
    (line,) = _warning_lines(done.stderr)
    assert "ASSUME_PROVIDER_EXTERNALID (did you mean ASSUME_PROVIDER_EXTERNAL_ID?)" in line
