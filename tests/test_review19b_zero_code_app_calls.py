"""Review of issue 19 (review19b): zero-code activation, then the application's own calls.

Zero-code activation now installs at the first botocore session, not at ``import botocore``.
An application that imports the package and calls ``install(**settings)`` or ``uninstall()``
before its first session must keep what it asked for: an explicit argument outranks the
environment variable (INTERFACE.md, "Settings"), and ``uninstall()`` undoes ``install()``.
A child process of this interpreter (the package installed with its start-up file) runs the
application against the test bed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from testbed import TestBed

SESSION_NAME = "review19b"


def _run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def hop_env(subprocess_env: dict[str, str], testbed: TestBed) -> dict[str, str]:
    """Zero-code activated with the hop role (the instance role may assume it)."""
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = testbed.world.hop_role_arn
    subprocess_env["ASSUME_PROVIDER_SESSION_NAME"] = SESSION_NAME
    return subprocess_env


def test_an_explicit_install_before_the_first_session_keeps_its_arguments(
    hop_env: dict[str, str], testbed: TestBed
) -> None:
    world = testbed.world
    code = f"""
        import assume_provider, boto3
        assume_provider.install(role_arn={world.target_role_arn!r},
                                external_id={world.external_id!r})
        print(boto3.client("sts").get_caller_identity()["Arn"])
    """
    expected = world.assumed_role_arn(world.target_role_arn, SESSION_NAME)
    assert _run(code, hop_env) == expected


def test_uninstall_before_the_first_session_is_not_undone_by_the_first_session(
    hop_env: dict[str, str], testbed: TestBed
) -> None:
    code = """
        import assume_provider, boto3
        assume_provider.uninstall()
        print(boto3.client("sts").get_caller_identity()["Arn"])
    """
    # What the same application gets with the variable unset: install() then uninstall().
    assert _run(code, hop_env) == testbed.world.instance_session_arn
    assert testbed.proxy.count(action="AssumeRole") == 0


# A fork while another thread's first session is installing (the package's import runs with
# the garbage collector paused): the child must not inherit the pause for good. The install is
# held inside the package's import by a loader that waits on an event (no import lock held
# there, so the fork can proceed): deterministic, no timing.
FORK_DURING_INSTALL = """
    import gc, os, sys, threading
    import importlib.machinery
    import botocore.session

    entered, release = threading.Event(), threading.Event()

    class BlockingLoader:
        def __init__(self, loader):
            self.loader = loader
        def create_module(self, spec):
            return self.loader.create_module(spec)
        def exec_module(self, module):
            entered.set()
            release.wait()
            self.loader.exec_module(module)

    class HoldTheInstall:
        def find_spec(self, name, path=None, target=None):
            if name != "assume_provider.botocore.registration":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            spec.loader = BlockingLoader(spec.loader)
            return spec

    sys.meta_path.insert(0, HoldTheInstall())
    first = threading.Thread(target=botocore.session.Session)
    first.start()
    entered.wait()
    pid = os.fork()
    if pid == 0:
        os.write(1, f"child {gc.isenabled()}\\n".encode())
        os._exit(0)
    os.waitpid(pid, 0)
    release.set()
    first.join()
    print("parent", gc.isenabled())
"""


def test_a_child_forked_during_the_first_install_keeps_its_garbage_collector(
    hop_env: dict[str, str],
) -> None:
    assert _run(FORK_DURING_INSTALL, hop_env).splitlines() == ["child True", "parent True"]


# What held: the first session made by other means than boto3 is set up too.
@pytest.mark.parametrize(
    "first_session",
    [
        "botocore.session.get_session()",
        "botocore.session.Session()",
    ],
)
def test_a_first_botocore_session_before_boto3_is_imported_gets_the_role(
    hop_env: dict[str, str], testbed: TestBed, first_session: str
) -> None:
    code = f"""
        import botocore.session
        session = {first_session}
        first = session.create_client("sts", region_name="us-east-1")
        import boto3
        second = boto3.client("sts")
        print(first.get_caller_identity()["Arn"], second.get_caller_identity()["Arn"])
    """
    world = testbed.world
    expected = world.assumed_role_arn(world.hop_role_arn, SESSION_NAME)
    assert _run(code, hop_env).split() == [expected, expected]
    assert testbed.proxy.count(action="AssumeRole") == 1


def test_register_after_zero_code_overrides_the_variable_for_that_session(
    hop_env: dict[str, str], testbed: TestBed
) -> None:
    world = testbed.world
    code = f"""
        import assume_provider, boto3
        mine, other = boto3.Session(), boto3.Session()
        assume_provider.register(mine, role_arn={world.target_role_arn!r},
                                 external_id={world.external_id!r})
        print(mine.client("sts").get_caller_identity()["Arn"],
              other.client("sts").get_caller_identity()["Arn"])
    """
    assert _run(code, hop_env).split() == [
        world.assumed_role_arn(world.target_role_arn, SESSION_NAME),
        world.assumed_role_arn(world.hop_role_arn, SESSION_NAME),
    ]
