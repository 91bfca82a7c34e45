"""Zero-code activation, end to end: the package installed into fresh venvs, plain scripts and
the real AWS CLI v1 run in them against the local test bed.

Two venvs, built once per module and in parallel (building is most of this file's runtime):

* ``wheel``: ``pip wheel`` of a copy of the project, installed with the AWS CLI >= 1.46, which
  vendors its own botocore and serves it as ``botocore`` inside the ``aws`` process;
* ``editable``: ``pip install -e`` of a copy, with the AWS CLI 1.45, which shares botocore
  with boto3.

Every behaviour test runs in both. The venvs get no pip (``pip --python`` drives them) and
no system site-packages, so nothing but the installed files can activate the provider.
Extra pip arguments (e.g. ``--no-index --find-links DIR`` offline) can be passed with
ASSUME_PROVIDER_TEST_PIP_ARGS.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import sysconfig
import textwrap
import venv as venv_module
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from project_copy import copy_project
from testbed import TestBed

from assume_provider.startup import hook as _bootstrap

ROOT = Path(__file__).resolve().parents[1]
STARTUP_FILES = ("assume_provider_startup.pth", "assume_provider_startup.start")
# Pinned so that the two AWS CLI generations are both covered and pip has nothing to resolve.
REQUIREMENTS = {
    "wheel": ["awscli==1.46.3", "boto3==1.44.8"],
    "editable": ["awscli==1.45.64", "boto3==1.43.64", "botocore==1.43.64"],
}
SESSION_NAME = "zero-code"
PIP_TIMEOUT = 600

pytestmark = pytest.mark.timeout(PIP_TIMEOUT)


@dataclass(frozen=True)
class Venv:
    mode: str
    path: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def site_packages(self) -> Path:
        purelib = sysconfig.get_path("purelib", vars={"base": str(self.path)})
        return Path(purelib)

    def run(
        self, args: Sequence[str], env: Mapping[str, str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        program = args[0] if args[0] != "python" else self.python
        if program == "aws":
            program = str(self.path / "bin" / "aws")
        return subprocess.run(
            [program, *args[1:]], env=dict(env), capture_output=True, text=True, timeout=timeout
        )

    def script(
        self, code: str, env: Mapping[str, str], *args: str
    ) -> subprocess.CompletedProcess[str]:
        return self.run(["python", "-c", textwrap.dedent(code), *args], env)


def pip(subcommand: str, *args: str, python: str | None = None) -> None:
    """System pip, driving ``python``'s environment when given (the venvs have no pip)."""
    target = ["--python", python] if python else []
    extra = shlex.split(os.environ.get("ASSUME_PROVIDER_TEST_PIP_ARGS", ""))
    if subcommand not in ("install", "wheel"):
        extra = []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-m", "pip", *target, subcommand, *extra, *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def make_venv(path: Path) -> Venv:
    venv_module.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(path)
    return Venv(path.name, path)


def build_venv(mode: str, folder: Path) -> Venv:
    source = copy_project(folder / "src")
    env = make_venv(folder / mode)
    if mode == "wheel":
        pip("wheel", "--no-deps", "--wheel-dir", str(folder / "dist"), str(source))
        (wheel,) = (folder / "dist").glob("assume_provider-*.whl")
        pip("install", *REQUIREMENTS[mode], str(wheel), python=env.python)
    else:
        pip("install", *REQUIREMENTS[mode], "--editable", str(source), python=env.python)
    return env


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Venv]:
    folder = tmp_path_factory.mktemp("zero-code")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {mode: pool.submit(build_venv, mode, folder / mode) for mode in REQUIREMENTS}
        return {mode: future.result() for mode, future in futures.items()}


@pytest.fixture(scope="module")
def project_wheel(venvs: dict[str, Venv]) -> Path:
    """The wheel that the ``wheel`` venv was installed from (built once for the module)."""
    (wheel,) = (venvs["wheel"].path.parent / "dist").glob("assume_provider-*.whl")
    return wheel


@pytest.fixture(params=sorted(REQUIREMENTS))
def venv(request: pytest.FixtureRequest, venvs: dict[str, Venv]) -> Venv:
    return venvs[request.param]


@pytest.fixture
def env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """The bed's environment for a venv process: no PYTHONPATH (it would shadow the install)."""
    subprocess_env.pop("PYTHONPATH", None)
    subprocess_env["ASSUME_PROVIDER_SESSION_NAME"] = SESSION_NAME
    return subprocess_env


@pytest.fixture
def role_env(env: dict[str, str], testbed: TestBed) -> dict[str, str]:
    """``env`` with the variable set: the one thing a zero-code user does."""
    env["ASSUME_PROVIDER_ROLE_ARN"] = testbed.world.target_role_arn
    env["ASSUME_PROVIDER_EXTERNAL_ID"] = testbed.world.external_id
    return env


def target_arn(testbed: TestBed) -> str:
    return testbed.world.assumed_role_arn(testbed.world.target_role_arn, SESSION_NAME)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip()


IDENTITY = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"


# -- the variable set ----------------------------------------------------------------------


def test_variable_set_assumes_target_role(
    venv: Venv, role_env: dict[str, str], testbed: TestBed
) -> None:
    assert ok(venv.script(IDENTITY, role_env)) == target_arn(testbed)
    assert testbed.proxy.count(action="AssumeRole") == 1


def test_variable_set_reads_and_decrypts_the_secret(
    venv: Venv, role_env: dict[str, str], testbed: TestBed
) -> None:
    world = testbed.world
    code = """
        import sys, boto3
        table, name, attribute = sys.argv[1:4]
        key = {"name": {"S": name}}
        item = boto3.client("dynamodb").get_item(TableName=table, Key=key)["Item"]
        print(boto3.client("kms").decrypt(CiphertextBlob=item[attribute]["B"])["Plaintext"].decode())
    """
    args = (world.table_name, world.secret_name, world.secret_attribute)
    assert ok(venv.script(code, role_env, *args)) == world.secret_plaintext


def test_twenty_sessions_cost_one_assume_role(
    venv: Venv, role_env: dict[str, str], testbed: TestBed
) -> None:
    code = """
        import boto3
        arns = {boto3.Session().client("sts").get_caller_identity()["Arn"] for _ in range(20)}
        print(*arns)
    """
    assert ok(venv.script(code, role_env)) == target_arn(testbed)
    assert testbed.proxy.count(action="GetCallerIdentity") == 20
    assert testbed.proxy.count(action="AssumeRole") == 1


def test_variable_set_does_not_import_botocore_by_itself(
    venv: Venv, role_env: dict[str, str]
) -> None:
    code = """
        import atexit, json, sys
        loaded = lambda: ("botocore" in sys.modules, "assume_provider.startup.hook" in sys.modules)
        atexit.register(lambda: print(*loaded()))
        json.dumps({})
    """
    # The hook is armed (bootstrap loaded) yet botocore stays out, up to the very end.
    assert ok(venv.script(code, role_env)) == "False True"


def test_import_botocore_imports_what_it_would_without_the_variable(
    venv: Venv, role_env: dict[str, str]
) -> None:
    # The package is imported at the first session, not inside botocore's import: there it
    # would pull botocore.session (urllib3 and the rest) in from a few frames deeper than the
    # application would, which on CPython 3.11 can make every call of a recursion at a
    # frame-stack chunk boundary map and unmap memory (docs/performance.md).
    code = """
        import sys
        before = set(sys.modules)
        import botocore
        print(*sorted(set(sys.modules) - before))
    """
    plain_env = {k: v for k, v in role_env.items() if k != "ASSUME_PROVIDER_ROLE_ARN"}
    plain = set(ok(venv.script(code, plain_env)).split())
    activated = set(ok(venv.script(code, role_env)).split())
    assert "botocore" in plain
    assert activated == plain


def test_the_first_sessions_of_two_threads_both_get_the_role(
    venv: Venv, role_env: dict[str, str], testbed: TestBed
) -> None:
    # Whichever thread's session comes first installs; the other's waits for it and is set
    # up too (its outcome does not depend on the interleaving, so the test cannot flake).
    code = """
        import threading, botocore.session
        barrier, arns = threading.Barrier(2), []
        def first_session():
            barrier.wait()
            session = botocore.session.Session()
            arns.append(session.create_client("sts").get_caller_identity()["Arn"])
        threads = [threading.Thread(target=first_session) for _ in range(2)]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        print(*arns)
    """
    assert ok(venv.script(code, role_env)).split() == [target_arn(testbed)] * 2


@pytest.mark.parametrize("collector", ["enabled", "disabled"])
def test_the_activation_leaves_the_garbage_collector_as_it_found_it(
    venv: Venv, role_env: dict[str, str], testbed: TestBed, collector: str
) -> None:
    code = f"""
        import gc
        {"gc.disable()" if collector == "disabled" else ""}
        {IDENTITY}
        print(gc.isenabled())
    """
    arn, enabled = ok(venv.script(code, role_env)).split()
    assert (arn, enabled) == (target_arn(testbed), str(collector == "enabled"))


def test_botocore_is_freed_with_the_applications_modules_at_exit(
    venv: Venv, role_env: dict[str, str], testbed: TestBed
) -> None:
    # At exit the interpreter empties sys.modules and collects what only the modules held,
    # then empties the dicts of the modules still alive, last imported first, and collects
    # again. Anything the interpreter itself holds to the end (an at-fork handler) that keeps
    # botocore's module alive keeps the service models and caches its modules hold through
    # that second full collection too: 14 M instructions at every zero-code exit, measured.
    code = """
        import os, sys, types, weakref
        import boto3, botocore
        print(boto3.client("sts").get_caller_identity()["Arn"])
        # Imported last and kept alive: its dict is the first that shutdown empties.
        marker = types.ModuleType("shutdown_marker")
        marker.alive = True
        sys.modules[marker.__name__] = marker
        def freed(_, write=os.write, marker=marker.__dict__):
            write(1, b"at the first collection" if "alive" in marker else b"later")
        probe = [weakref.ref(botocore, freed), marker]
        os.register_at_fork(after_in_child=probe.copy)  # keeps the probe to the very end
        del botocore, marker
    """
    assert ok(venv.script(code, role_env)).splitlines() == [
        target_arn(testbed),
        "at the first collection",
    ]


def test_the_watcher_left_armed_for_aiobotocore_reaches_nothing_of_the_application(
    venv: Venv, role_env: dict[str, str], testbed: TestBed
) -> None:
    # A process that never imports aiobotocore keeps the hook's aiobotocore watcher in
    # sys.meta_path to the end, and the interpreter keeps sys.meta_path's finders past the
    # collection that frees the application's modules at exit. Anything the watcher reaches
    # (its closure, its class's module globals) lives that long too: from botocore's module
    # or the installer, the providers, sessions and service models, 12 M instructions more at
    # every exit, measured. Walked from the watcher, without going into modules: none is
    # botocore's or the package's (which the interpreter keeps alive only while imported).
    code = """
        import gc, sys, types
        import boto3
        print(boto3.client("sts").get_caller_identity()["Arn"])
        armed = [f for f in sys.meta_path if type(f).__module__.startswith("assume_provider")]
        seen, todo, modules = set(), list(armed), set()
        while todo:
            referent = todo.pop()
            if id(referent) in seen:
                continue
            seen.add(id(referent))
            if isinstance(referent, types.ModuleType):
                modules.add(referent.__name__)
            else:
                todo.extend(gc.get_referents(referent))
        print(len(armed), *sorted(m for m in modules if m.startswith(("botocore", "boto3",
            "assume_provider"))))
    """
    arn, armed = ok(venv.script(code, role_env)).splitlines()
    assert (arn, armed) == (target_arn(testbed), "1")  # no aiobotocore: the watcher is armed


def test_aws_cli_assumes_target_role(
    venv: Venv, role_env: dict[str, str], testbed: TestBed
) -> None:
    done = venv.run(["aws", "sts", "get-caller-identity", "--output", "json"], role_env)
    assert json.loads(ok(done))["Arn"] == target_arn(testbed)


def test_activation_after_botocore_was_imported(
    venv: Venv, env: dict[str, str], testbed: TestBed
) -> None:
    # The variable appears only after start-up and botocore is already loaded: start() must
    # install at once instead of waiting for an import that will never come.
    code = f"""
        import os, botocore, boto3
        os.environ["ASSUME_PROVIDER_ROLE_ARN"] = {testbed.world.target_role_arn!r}
        from assume_provider.startup.hook import start
        start()
        {IDENTITY}
    """
    assert ok(venv.script(code, env)) == target_arn(testbed)


# -- the variable unset ---------------------------------------------------------------------


def test_variable_unset_keeps_instance_role(
    venv: Venv, env: dict[str, str], testbed: TestBed
) -> None:
    assert ok(venv.script(IDENTITY, env)) == testbed.world.instance_session_arn
    assert testbed.proxy.count(action="AssumeRole") == 0


def test_variable_unset_imports_nothing_at_start(venv: Venv, env: dict[str, str]) -> None:
    done = venv.run(["python", "-X", "importtime", "-c", "pass"], env)
    assert done.returncode == 0
    modules = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert modules, done.stderr  # importtime did report
    assert not [m for m in modules if m.startswith(("assume_provider", "botocore", "boto3"))]


def test_variable_set_imports_only_the_bootstrap_at_start(
    venv: Venv, role_env: dict[str, str]
) -> None:
    done = venv.run(["python", "-X", "importtime", "-c", "pass"], role_env)
    modules = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "assume_provider.startup.hook" in modules
    assert not {m for m in modules if m.startswith(("botocore", "boto3", "typing"))}


def test_aws_cli_without_variable_keeps_instance_role(
    venv: Venv, env: dict[str, str], testbed: TestBed
) -> None:
    done = venv.run(["aws", "sts", "get-caller-identity", "--output", "json"], env)
    assert json.loads(ok(done))["Arn"] == testbed.world.instance_session_arn


# -- the config-file switch -----------------------------------------------------------------


def test_switch_takes_role_chain_from_config_file(
    venv: Venv, env: dict[str, str], testbed: TestBed
) -> None:
    Path(env["AWS_CONFIG_FILE"]).write_text(
        "[default]\n"
        f"assume_provider_role_arn = {testbed.world.target_role_arn}\n"
        f"assume_provider_external_id = {testbed.world.external_id}\n"
    )
    assert ok(venv.script(IDENTITY, env)) == testbed.world.instance_session_arn  # off by default
    env[_bootstrap.SWITCH_VARIABLE] = "1"
    assert ok(venv.script(IDENTITY, env)) == target_arn(testbed)
    done = venv.run(["aws", "sts", "get-caller-identity", "--output", "json"], env)
    assert json.loads(ok(done))["Arn"] == target_arn(testbed)


def test_switch_off_overrides_the_variable(
    venv: Venv, role_env: dict[str, str], testbed: TestBed
) -> None:
    role_env[_bootstrap.SWITCH_VARIABLE] = "0"
    assert ok(venv.script(IDENTITY, role_env)) == testbed.world.instance_session_arn


# -- failures are deferred, never at start-up ----------------------------------------------


def test_malformed_arn_is_silent_at_start_and_loud_at_resolution(
    venv: Venv, env: dict[str, str]
) -> None:
    env["ASSUME_PROVIDER_ROLE_ARN"] = "arn:aws:iam::12345:user/nope"
    started = venv.run(["python", "-c", "pass"], env)
    assert (started.returncode, started.stdout, started.stderr) == (0, "", "")
    done = venv.script(IDENTITY, env)
    assert done.returncode != 0
    assert "ConfigError" in done.stderr and "ASSUME_PROVIDER_ROLE_ARN" in done.stderr


def test_broken_install_is_silent_at_start_and_loud_at_resolution(
    venv: Venv, role_env: dict[str, str], tmp_path: Path
) -> None:
    # A module of the package that fails to import (a half-written or corrupted install)
    # stands in for any broken install: the one that defines the provider, which activation
    # cannot do without. The package depends on nothing but botocore and boto3, whose own
    # breakage would break the application before ours could. A sitecustomize module (run
    # after the start-up .pth file) makes the import fail.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import sys

            class BrokenProvider:
                def find_spec(self, name, path=None, target=None):
                    if name == "assume_provider.botocore.provider":
                        raise ImportError("assume_provider.botocore.provider is broken")
                    return None

            sys.meta_path.insert(0, BrokenProvider())
            """
        )
    )
    role_env["PYTHONPATH"] = str(broken)
    started = venv.run(["python", "-c", "pass"], role_env)
    assert (started.returncode, started.stdout, started.stderr) == (0, "", "")
    done = venv.script(IDENTITY, role_env)
    assert done.returncode != 0
    assert "ASSUME_PROVIDER_ROLE_ARN" in done.stderr
    assert "assume_provider.botocore.provider is broken" in done.stderr


# -- installed files ------------------------------------------------------------------------


def test_startup_files_at_site_packages_root(venv: Venv) -> None:
    for name in STARTUP_FILES:
        assert (venv.site_packages / name).is_file(), name


@pytest.mark.parametrize("mode", ["wheel", "editable"])
def test_pip_uninstall_removes_startup_files(
    mode: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Its own venv without dependencies: the shared ones must stay installed. The wheel is
    # the module's (building it again would prove nothing more); a wheel is never modified.
    env = make_venv(tmp_path / "venv")
    if mode == "wheel":
        target = str(request.getfixturevalue("project_wheel"))
    else:
        target = f"--editable={copy_project(tmp_path / 'src')}"
    pip("install", "--no-deps", target, python=env.python)
    assert all((env.site_packages / name).is_file() for name in STARTUP_FILES)
    pip("uninstall", "--yes", "assume-provider", python=env.python)
    # pip also removes site-packages itself when the uninstall leaves it empty.
    remaining = env.site_packages.iterdir() if env.site_packages.exists() else iter(())
    assert sorted(p.name for p in remaining if "assume" in p.name.lower()) == []


# -- the hook itself, in process ------------------------------------------------------------


def test_pth_line_checks_the_documented_variables() -> None:
    lines = (ROOT / "startup" / STARTUP_FILES[0]).read_text().splitlines()
    code = [line for line in lines if line.startswith("import")]
    assert len(code) == 1
    for name in (_bootstrap.ROLE_ARN_VARIABLE, _bootstrap.SWITCH_VARIABLE):
        assert f'os.environ.get("{name}")' in code[0]


def test_start_file_names_the_entry_point() -> None:
    import pkgutil

    lines = (ROOT / "startup" / STARTUP_FILES[1]).read_text().splitlines()
    entries = [line for line in lines if line.strip() and not line.startswith("#")]
    assert len(entries) == 1
    assert pkgutil.resolve_name(entries[0]) is _bootstrap.start


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"ASSUME_PROVIDER_ROLE_ARN": ""}, False),
        ({"ASSUME_PROVIDER_ROLE_ARN": "arn:aws:iam::111111111111:role/R"}, True),
        ({"ASSUME_PROVIDER_ROLE_ARN": "not-an-arn"}, True),  # refused later, loudly
        ({"ASSUME_PROVIDER_ENABLE": "1"}, True),
        ({"ASSUME_PROVIDER_ENABLE": "true"}, True),
        ({"ASSUME_PROVIDER_ENABLE": "0"}, False),
        ({"ASSUME_PROVIDER_ENABLE": "off", "ASSUME_PROVIDER_ROLE_ARN": "arn:x"}, False),
        (
            {"ASSUME_PROVIDER_ENABLE": "", "ASSUME_PROVIDER_ROLE_ARN": "arn:x"},
            True,
        ),  # empty = unset
        ({"ASSUME_PROVIDER_ENABLE": " No "}, False),
    ],
)
def test_requested(environ: dict[str, str], expected: bool) -> None:
    assert _bootstrap.requested(environ) is expected


# -- an ASSUME_PROVIDER_* variable the package does not know ---------------------------------


def test_a_misspelt_variable_warns_once_when_botocore_is_imported(
    venv: Venv, env: dict[str, str], testbed: TestBed
) -> None:
    env["ASSUME_PROVIDER_ROLEARN"] = testbed.world.target_role_arn
    started = venv.run(["python", "-c", "pass"], env)
    assert (started.returncode, started.stdout, started.stderr) == (0, "", "")  # no botocore
    done = venv.script(IDENTITY + "\nimport boto3; boto3.Session().client('sts')", env)
    assert ok(done) == testbed.world.instance_session_arn  # nothing else changes
    assert done.stderr.splitlines() == [
        "unknown environment variable ASSUME_PROVIDER_ROLEARN (did you mean "
        "ASSUME_PROVIDER_ROLE_ARN?): assume-provider ignores it"
    ]
    aws = venv.run(["aws", "sts", "get-caller-identity", "--output", "json"], env)
    assert json.loads(ok(aws))["Arn"] == testbed.world.instance_session_arn
    assert "ASSUME_PROVIDER_ROLEARN (did you mean ASSUME_PROVIDER_ROLE_ARN?)" in aws.stderr


def test_a_misspelt_variable_beside_the_role_warns_once_and_the_role_applies(
    venv: Venv, role_env: dict[str, str], testbed: TestBed
) -> None:
    role_env["ASSUME_PROVIDER_DURATION"] = "900"
    done = venv.script(IDENTITY, role_env)
    assert ok(done) == target_arn(testbed)
    assert len(done.stderr.splitlines()) == 1
    assert "ASSUME_PROVIDER_DURATION (did you mean ASSUME_PROVIDER_DURATION_SECONDS?)" in (
        done.stderr
    )


def test_known_variables_only_say_nothing_and_import_nothing_at_start(
    venv: Venv, env: dict[str, str], testbed: TestBed
) -> None:
    env["ASSUME_PROVIDER_EXPORTED_KEY_ID"] = "AKIDNOTOURS"
    env["ASSUME_PROVIDER_DURATION_SECONDS"] = "900"
    done = venv.script(IDENTITY, env)
    assert (ok(done), done.stderr) == (testbed.world.instance_session_arn, "")
    started = venv.run(["python", "-X", "importtime", "-c", "pass"], env)
    modules = [line.rsplit("|", 1)[-1].strip() for line in started.stderr.splitlines()]
    assert modules and not [m for m in modules if m.startswith("assume_provider")]
