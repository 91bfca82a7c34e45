"""Zero-code activation imports the async layer (``assume_provider.aio``) only once aiobotocore
is imported, and every aiobotocore session is covered whenever that happens: before the first
botocore session, after it, while that session installs (another thread), or as the first
session itself. A failure to import the layer breaks neither ``import aiobotocore`` nor the
sync sessions: the async sessions' credential resolution raises it.

Each case is a separate process with the start-up file installed (the async venv's editable
install), against the local test bed."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("aiobotocore", reason="the async tests run in their own venv: ci/async-tests")

from aio_apps import run_app, run_app_raw, zero_code_available
from testbed import TestBed

SESSION_NAME = "async-zero-code"

# argv[1] is the order; prints one JSON line: what each session got and what was loaded when.
APP = """
import asyncio, json, sys

order = sys.argv[1]
out = {}

def aio_layer_loaded():
    return sorted(m for m in sys.modules if m.startswith("assume_provider.aio"))

def sync_arn():
    import boto3
    return boto3.client("sts").get_caller_identity()["Arn"]

async def async_arn():
    import aiobotocore.session
    session = aiobotocore.session.AioSession()
    async with session.create_client("sts") as sts:
        return (await sts.get_caller_identity())["Arn"]

def run_async():
    try:
        out["async"] = asyncio.run(async_arn())
    except Exception as exc:
        out["async_error"] = f"{type(exc).__name__}: {exc}"

if order == "after-the-first-session":
    out["sync"] = sync_arn()
    out["aio_layer_before_aiobotocore"] = aio_layer_loaded()
    import aiobotocore
    out["aio_layer_after_import"] = aio_layer_loaded()
    run_async()
elif order == "before-the-first-session":
    import aiobotocore.session
    out["sync"] = sync_arn()
    run_async()
elif order == "as-the-first-session":
    run_async()
    out["sync"] = sync_arn()
elif order == "while-the-first-session-installs":
    # Another thread has found aiobotocore (its spec) but not yet put it in sys.modules when
    # the first session installs: the one moment a check of sys.modules cannot see it. Its
    # loader holds it there, on events (no timing), until the first session has installed.
    import importlib.machinery, threading
    import botocore
    found, installed = threading.Event(), threading.Event()

    class HoldingLoader:
        def __init__(self, loader):
            self.loader = loader
        def create_module(self, spec):  # called with no import-system lock but its own
            found.set()
            installed.wait()
            return None
        def exec_module(self, module):
            self.loader.exec_module(module)

    class Holding:
        def find_spec(self, name, path=None, target=None):
            if name != "aiobotocore":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            spec.loader = HoldingLoader(spec.loader)
            return spec

    sys.meta_path.insert(0, Holding())
    importer = threading.Thread(target=lambda: __import__("aiobotocore"))
    importer.start()
    found.wait()
    out["aiobotocore_in_sys_modules_at_install"] = "aiobotocore" in sys.modules
    out["sync"] = sync_arn()
    installed.set()
    importer.join()
    run_async()
print(json.dumps(out))
"""

ORDERS = [
    "after-the-first-session",
    "before-the-first-session",
    "as-the-first-session",
    "while-the-first-session-installs",
]


@pytest.fixture
def role_env(aws_env: TestBed, subprocess_env: dict[str, str]) -> dict[str, str]:
    if not zero_code_available():
        pytest.fail("the start-up .pth is not installed in this venv (pip install -e .)")
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = aws_env.world.target_role_arn
    subprocess_env["ASSUME_PROVIDER_SESSION_NAME"] = SESSION_NAME
    return subprocess_env


@pytest.mark.parametrize("order", ORDERS)
def test_an_aiobotocore_session_gets_the_role_whenever_aiobotocore_is_imported(
    aws_env: TestBed, role_env: dict[str, str], order: str
) -> None:
    world = aws_env.world
    target = world.assumed_role_arn(world.target_role_arn, SESSION_NAME)

    result = run_app(APP, role_env, order)

    assert (result["sync"], result.get("async")) == (target, target), result
    assert aws_env.proxy.count(action="AssumeRole") == 1  # sync and async share one engine
    if order == "after-the-first-session":
        assert result["aio_layer_before_aiobotocore"] == []  # the first session did not need it
        assert "assume_provider.aio.registration" in result["aio_layer_after_import"]
    if order == "while-the-first-session-installs":
        assert result["aiobotocore_in_sys_modules_at_install"] is False


# Stands in for a broken install of the async layer (a half-written or corrupted one): run
# after the start-up file, it makes the import of the module that defines the async provider
# fail.
BROKEN_AIO_LAYER = """
import sys

class BrokenAioLayer:
    def find_spec(self, name, path=None, target=None):
        if name == "assume_provider.aio.provider":
            raise ImportError("assume_provider.aio.provider is broken")
        return None

sys.meta_path.insert(0, BrokenAioLayer())
"""


@pytest.mark.parametrize("order", ORDERS[:3])
def test_a_broken_async_layer_fails_only_the_async_sessions_at_resolution(
    aws_env: TestBed, role_env: dict[str, str], tmp_path: Path, order: str
) -> None:
    site = tmp_path / "broken"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(BROKEN_AIO_LAYER))
    role_env["PYTHONPATH"] = str(site)
    world = aws_env.world

    done = run_app_raw(APP, role_env, order)

    assert done.returncode == 0, done.stderr[-4000:]  # `import aiobotocore` did not raise
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sync"] == world.assumed_role_arn(world.target_role_arn, SESSION_NAME)
    assert "async" not in result, result  # never aiobotocore's own chain (the instance role)
    error = result["async_error"]
    assert error.startswith("ConfigError: ASSUME_PROVIDER_ROLE_ARN"), error
    assert "assume_provider.aio.provider is broken" in error
