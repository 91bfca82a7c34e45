"""ci/admitted-pythons: which Pythons .ci/run tests besides its main one.

Each test runs the real script on a PATH of its own making (a folder of symlinks: the main
python3, the few tools the script uses, and whatever interpreters the test puts there), so
the machine's other Pythons are seen only when a test means them to be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "ci" / "admitted-pythons"
TOOLS = ("bash", "sed", "sort", "dirname", "awk", "cat")
MAIN_MINOR = sys.version_info[:2]


def _bin_folder(tmp_path: Path, pythons: dict[str, str]) -> Path:
    """A PATH folder with the tools, python3 (this interpreter) and ``pythons`` (name ->
    interpreter), all symlinks."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, f"{tool} is not installed"
        (folder / tool).symlink_to(found)
    (folder / "python3").symlink_to(sys.executable)
    for name, target in pythons.items():
        (folder / name).symlink_to(target)
    return folder


def _run(tmp_path: Path, path_folder: Path, pyenv_root: Path, *args: str) -> str:
    env = {"PATH": str(path_folder), "PYENV_ROOT": str(pyenv_root), "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(path_folder / "bash"), str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def _version_of(interpreter: str) -> tuple[str, str] | None:
    """(version, implementation) of an interpreter, or None if it does not run."""
    done = subprocess.run(
        [
            interpreter,
            "-c",
            "import platform; print(platform.python_version());"
            " print(platform.python_implementation())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return None
    version, implementation = done.stdout.split()
    return version, implementation


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _pyenv_versions() -> list[tuple[str, Path]]:
    """(version, interpreter) of each pyenv version on this machine, sorted by folder name."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = []
    for interpreter in sorted((root / "versions").glob("*/bin/python3")):
        described = _version_of(str(interpreter))
        if described is not None and described[1] == "CPython":
            found.append((described[0], interpreter))
    return found


def _other_admitted_interpreter() -> tuple[str, str] | None:
    """(version, path) of an admitted CPython of another minor version than this one: from
    pyenv, else a python3.N on PATH; None on a machine with one Python."""
    for version, interpreter in _pyenv_versions():
        if _minor(version) >= (3, 10) and _minor(version) != MAIN_MINOR:
            return version, str(interpreter)
    for minor in range(10, 20):
        found = shutil.which(f"python3.{minor}")
        described = _version_of(found) if found else None
        if found and described and _minor(described[0]) != MAIN_MINOR:
            return described[0], found
    return None


def test_one_python_and_no_pyenv_finds_no_other(tmp_path: Path) -> None:
    """A fresh machine: one python3, PYENV_ROOT empty, no pyenv on PATH. The script prints
    nothing and succeeds, so .ci/run tests the main Python alone."""
    empty_root = tmp_path / "pyenv"
    empty_root.mkdir()
    assert _run(tmp_path, _bin_folder(tmp_path, {}), empty_root) == ""


def test_the_main_pythons_minor_version_is_left_out(tmp_path: Path) -> None:
    """This interpreter again, as a pyenv version and as python3.N on PATH: the same minor
    version as the main job's, so not a second job (it would share .venv-X.Y)."""
    root = tmp_path / "pyenv"
    (root / "versions" / "same" / "bin").mkdir(parents=True)
    (root / "versions" / "same" / "bin" / "python3").symlink_to(sys.executable)
    name = f"python3.{MAIN_MINOR[1]}"
    assert _run(tmp_path, _bin_folder(tmp_path, {name: sys.executable}), root) == ""


def test_a_python3_n_on_path_is_found(tmp_path: Path) -> None:
    """No pyenv, but another admitted CPython as python3.N on PATH (a distribution's
    python3.12, say): it is listed, with its version and path."""
    other = _other_admitted_interpreter()
    if other is None:
        pytest.skip("this machine has one admitted Python minor version")
    version, interpreter = other
    name = f"python3.{_minor(version)[1]}"
    folder = _bin_folder(tmp_path, {name: interpreter})
    empty_root = tmp_path / "pyenv"
    empty_root.mkdir()
    assert _run(tmp_path, folder, empty_root) == f"{version} {folder / name}\n"


def test_the_pyenv_versions_are_found(tmp_path: Path) -> None:
    """With pyenv: every installed version that python_requires (>=3.10) admits, one per
    minor version and not the main one's, oldest first; older ones (2.7, 3.9) left out."""
    versions = _pyenv_versions()
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    expected: dict[tuple[int, int], str] = {}
    for version, interpreter in versions:
        minor = _minor(version)
        if minor >= (3, 10) and minor != MAIN_MINOR and minor not in expected:
            expected[minor] = f"{version} {interpreter}"
    if not expected:
        pytest.skip("no pyenv version of another admitted minor version on this machine")
    printed = _run(tmp_path, _bin_folder(tmp_path, {}), root).splitlines()
    assert printed == [expected[minor] for minor in sorted(expected)]
    too_old = [version for version, _ in versions if _minor(version) < (3, 10)]
    assert not any(line.split()[0] in too_old for line in printed)


def _pyenv_root_of(tmp_path: Path, interpreters: dict[str, str]) -> Path:
    """A PYENV_ROOT whose versions/NAME/bin/python3 are symlinks to ``interpreters``."""
    root = tmp_path / "pyenv"
    for name, interpreter in interpreters.items():
        (root / "versions" / name / "bin").mkdir(parents=True)
        (root / "versions" / name / "bin" / "python3").symlink_to(interpreter)
    (root / "versions").mkdir(parents=True, exist_ok=True)
    return root


def _admitted_others() -> dict[tuple[int, int], tuple[str, str]]:
    """Minor version -> (version, interpreter) of each admitted CPython on this machine (pyenv,
    python3.N on PATH) of another minor version than this one."""
    found: dict[tuple[int, int], tuple[str, str]] = {}
    candidates = [str(interpreter) for _, interpreter in _pyenv_versions()]
    candidates += [shutil.which(f"python3.{minor}") or "" for minor in range(10, 20)]
    for interpreter in filter(None, candidates):
        described = _version_of(interpreter)
        if described is None or described[1] != "CPython":
            continue
        minor = _minor(described[0])
        if minor >= (3, 10) and minor != MAIN_MINOR and minor not in found:
            found[minor] = (described[0], interpreter)
    return found


def test_ends_keeps_the_oldest_and_the_newest(tmp_path: Path) -> None:
    """--ends (what .ci/run asks for): of every admitted version found, the oldest (tested at
    the minimum pins) and the newest, oldest first; the ones between are left out. Built
    from this machine's other Pythons as pyenv versions, so it needs two of them at least
    (CI's machine has three)."""
    others = _admitted_others()
    if len(others) < 2:
        pytest.skip("fewer than two admitted Python minor versions besides this one here")
    ordered = [others[minor] for minor in sorted(others)]
    root = _pyenv_root_of(tmp_path, {version: interpreter for version, interpreter in ordered})
    folder = _bin_folder(tmp_path, {})
    every = _run(tmp_path, folder, root).splitlines()
    assert [line.split()[0] for line in every] == [version for version, _ in ordered]
    ends = _run(tmp_path, folder, root, "--ends").splitlines()
    assert ends == [every[0], every[-1]]
    assert _run(tmp_path, folder, root, "--ends", "python3") == _run(
        tmp_path, folder, root, "--ends"
    )


def test_ends_with_a_single_other_python_lists_it_once(tmp_path: Path) -> None:
    """One other admitted version: it is both the oldest and the newest, listed once."""
    others = _admitted_others()
    if not others:
        pytest.skip("this machine has one admitted Python minor version")
    version, interpreter = others[min(others)]
    root = _pyenv_root_of(tmp_path, {version: interpreter})
    printed = _run(tmp_path, _bin_folder(tmp_path, {}), root, "--ends")
    assert printed == f"{version} {root / 'versions' / version / 'bin' / 'python3'}\n"
