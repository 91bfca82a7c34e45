"""Every ``ASSUME_PROVIDER_*`` environment variable this project reads, and one warning line
for any other: ``ASSUME_PROVIDER_ROLEARN=...`` would otherwise run the application as itself
with no word said.

Checked wherever the environment is read (settings resolution for the library and the server,
the command line, the zero-code hook). The check is one pass over the environment's names
(about 10 microseconds with 35 variables on an idle machine), repeated for ``os.environ`` only
when it gains or loses a variable; the warning is said once per variable per process.
"""

from __future__ import annotations

import os

from .inputs import ENV_PREFIX, EXPORTED_KEY_ID_VAR, SETTING_NAMES, env_var

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# What a user sets: the settings (``share`` among them) and the zero-code switch
# (startup/hook.py). These are the names a warning suggests.
FOR_USERS = frozenset({env_var(name) for name in SETTING_NAMES} | {"ASSUME_PROVIDER_ENABLE"})
# What the tool sets for its own children (cli/recursion.py, `env`/`exec`), and what the
# project's own scripts read (.ci/run, ci/async-tests, scripts/demo, tests/test_zero_code.py):
# known, so never flagged, but never suggested either.
INTERNAL = frozenset(
    {
        EXPORTED_KEY_ID_VAR,
        "ASSUME_PROVIDER_DEPTH",
        "ASSUME_PROVIDER_CHAIN_KEYS",
        "ASSUME_PROVIDER_VENV",
        "ASSUME_PROVIDER_AIO_VENV",
        "ASSUME_PROVIDER_DEMO_VENV",
        "ASSUME_PROVIDER_TEST_PIP_ARGS",
    }
)
KNOWN = FOR_USERS | INTERNAL

_reported: set[str] = set()
_scanned_size = -1  # len(os.environ) at the last scan


def unknown_variables(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The ``ASSUME_PROVIDER_*`` names in ``environ`` that nothing here reads, sorted."""
    return sorted(name for name in environ if name.startswith(ENV_PREFIX) and name not in KNOWN)


def closest_known(name: str) -> str:
    """The user-facing variable ``name`` was most likely meant to be."""
    import difflib

    suffix = name[len(ENV_PREFIX) :]
    by_suffix = {known[len(ENV_PREFIX) :]: known for known in FOR_USERS}
    best = difflib.get_close_matches(suffix, sorted(by_suffix), n=1, cutoff=0.0)
    return by_suffix[best[0]] if best else env_var("role_arn")


def describe(names: Iterable[str]) -> str:
    """One line naming each unknown variable and its closest known one."""
    names = list(names)
    each = ", ".join(f"{name} (did you mean {closest_known(name)}?)" for name in names)
    noun, pronoun = ("variable", "it") if len(names) == 1 else ("variables", "them")
    return f"unknown environment {noun} {each}: assume-provider ignores {pronoun}"


def warn_unknown_variables(environ: Mapping[str, str] = os.environ) -> None:
    """Log one WARNING line for the unknown variables not reported yet in this process.

    ``os.environ`` is scanned again only when its number of variables has changed: its keys
    are decoded one by one on every pass (a few microseconds per variable), and settings are
    resolved for every new session.
    """
    global _scanned_size
    if environ is os.environ:
        if len(environ) == _scanned_size:
            return
        _scanned_size = len(environ)
    new = [name for name in unknown_variables(environ) if name not in _reported]
    if not new:
        return
    _reported.update(new)
    import logging

    logging.getLogger(__name__).warning("%s", describe(new))
