"""A copy of what building the package needs, so builds leave the working tree untouched.

Used by the zero-code tests and by ``benchmarks/startup.py`` (both build wheels into fresh
virtualenvs); ``build/`` and ``*.egg-info`` end up in the copy, not in the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = (
    "assume_provider",
    "startup",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    "MANIFEST.in",
    "README.md",
    "docs",  # MANIFEST.in puts the README's linked pages in the sdist
)


def copy_project(target: Path) -> Path:
    """Copy the build inputs into ``target`` (created; it must not exist yet)."""
    target.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target
