"""Fixtures for the local AWS test bed (see tests/testbed/)."""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Make `import testbed` work whatever pytest's import mode is.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from fake_time import fake_clock  # noqa: E402, F401  (fixture for tests that move time)
from inprocess_server import server  # noqa: E402, F401  (fixture: serve in this process)
from log_capture import debug_logs  # noqa: E402, F401  (fixture: DEBUG records captured)
from provider_state import fresh_provider_state  # noqa: E402, F401  (fixture)
from testbed import TestBed  # noqa: E402

_CLEARED_PREFIXES = ("AWS_", "ASSUME_PROVIDER_")
# What a child process needs from ours besides the bed; everything else is left out.
_PASSED_TO_SUBPROCESSES = ("PATH", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "SYSTEMROOT")


@pytest.fixture(scope="session")
def testbed() -> Iterator[TestBed]:
    """moto + proxy + IMDS fake + seeded world, started once per test session."""
    with TestBed() as bed:
        yield bed


@pytest.fixture
def aws_env(testbed: TestBed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestBed]:
    """os.environ pointed at the bed and nothing else, with clean counters and faults.

    Every AWS_* and ASSUME_PROVIDER_* variable is removed first; AWS_CONFIG_FILE and
    AWS_SHARED_CREDENTIALS_FILE are fresh empty files under tmp_path/"aws" (write to them
    to test config-file settings); HOME is tmp_path/"home" so ~/.aws caches stay per test.
    """
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in testbed.env(tmp_path / "aws").items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    testbed.reset()
    yield testbed
    testbed.reset()


@pytest.fixture
def aws_config_file(aws_env: TestBed) -> Path:
    """The empty AWS config file this test's environment points at."""
    return Path(os.environ["AWS_CONFIG_FILE"])


@pytest.fixture
def subprocess_env(aws_env: TestBed) -> dict[str, str]:
    """A complete environment for a child process using the bed: same files and HOME as
    aws_env, PATH and locale from ours, nothing else. A fresh dict: add to it freely."""
    env = {name: os.environ[name] for name in _PASSED_TO_SUBPROCESSES if name in os.environ}
    env["HOME"] = os.environ["HOME"]
    env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


# The core and CLI tests: the library in-process and as installed (test_core_*), and the
# command-line tool with the real AWS CLI (test_cli_*). They need only the `test-core` extra
# (pytest, pytest-timeout, moto[server], awscli) and are what CI also runs against the
# minimum botocore/boto3 (see docs/dependencies.md). Select them with `pytest --core-cli`
# (collects nothing else, so the other files' imports need not be installed) or, in a full
# environment, with `-m core_cli`.
CORE_AND_CLI_FILES = ("test_core_*.py", "test_cli_*.py")


def _is_core_or_cli(path: Path) -> bool:
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in CORE_AND_CLI_FILES)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--core-cli",
        action="store_true",
        help=f"collect only the core and CLI tests ({', '.join(CORE_AND_CLI_FILES)})",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not config.getoption("--core-cli"):
        return None
    if collection_path.is_file() and collection_path.name.startswith("test_"):
        return not _is_core_or_cli(collection_path)
    return None


# Files whose module fixtures take long (test_zero_code.py builds two venvs) run first: with
# parallel workers (.ci/run: pytest-xdist, one file per worker at a time) a long file taken
# last would leave the other worker idle at the end. The order is otherwise unchanged.
FIRST_FILES = ("test_zero_code.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in FIRST_FILES)  # stable: others keep order
    for item in items:
        if _is_core_or_cli(item.path):
            item.add_marker(pytest.mark.core_cli)
