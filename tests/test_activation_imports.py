"""What a short-lived process with zero-code activation imports of the package: only what its
first resolution uses. Each module is import work (and objects for the garbage collector)
that every such process pays (``docs/performance.md``, "Short-lived processes"); the parts
used only for a refresh, prefetch, async sessions, sharing through the disk, settings the
process does not set (the session parameters) or a failure are imported when first used. A
child process of this interpreter (the package installed with its start-up file) resolves
through the test bed, as a cron job would.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from testbed import TestBed

CHILD = (
    "import json, sys, boto3; boto3.client('sts').get_caller_identity(); "
    "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('assume_provider', "
    "'cachetools')))))"
)

# Loaded by a process that needs them, never by a one-call process that does not.
NOT_ON_THE_WAY = {
    "assume_provider.engine.prefetch": "the prefetch thread (prefetch is off by default)",
    "assume_provider.engine.offthread": "async callers, the server and the prefetch thread",
    "assume_provider.aio": "aiobotocore, which the process never imports",
    "assume_provider.credentials.attempts": "the explanation of a source that found nothing",
    "assume_provider.credentials.disk_share": "share = disk",
    "assume_provider.diskcache": "share = disk and the CLI",
    "assume_provider.server": "the credential server",
    "assume_provider.cli": "the command line",
    "assume_provider.startup.failure": "a failed activation",
    "assume_provider.config.session_params": "a session parameter (tags, policies, ...) set",
    "cachetools": "nothing any more",
}


def _loaded(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


@pytest.fixture
def role_env(subprocess_env: dict[str, str], testbed: TestBed) -> dict[str, str]:
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = testbed.world.target_role_arn
    return subprocess_env


def test_a_one_call_process_imports_only_what_its_resolution_uses(
    role_env: dict[str, str],
) -> None:
    loaded = _loaded(role_env)
    assert "assume_provider.engine.refresh" in loaded  # activated and resolved through it
    wrong = {
        name: why
        for name, why in NOT_ON_THE_WAY.items()
        if any(module == name or module.startswith(f"{name}.") for module in loaded)
    }
    assert not wrong, wrong


def test_the_prefetch_thread_s_code_comes_with_prefetch(role_env: dict[str, str]) -> None:
    role_env["ASSUME_PROVIDER_PREFETCH"] = "true"
    assert "assume_provider.engine.prefetch" in _loaded(role_env)


def test_the_session_parameters_parsers_come_with_a_session_parameter(
    role_env: dict[str, str],
) -> None:
    role_env["ASSUME_PROVIDER_TAGS"] = "team=blue"
    assert "assume_provider.config.session_params" in _loaded(role_env)
