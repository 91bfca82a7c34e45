"""Zero-code activation: the start-up hook behind ``assume_provider_startup.pth`` / ``.start``.

The ``.pth`` line (run by ``site`` at every interpreter start) only looks at the environment;
this module is imported only when one of the two variables is set, or an ``ASSUME_PROVIDER_*``
name the package does not know (the line holds the known names: ``config/variables.py``).
Even then it imports nothing but ``os``, ``sys`` and ``_thread`` (loaded at start-up): it arms a
one-shot ``sys.meta_path`` finder, and when, and only if, the application imports ``botocore``
it registers a botocore session initializer; when, and only if, the application creates its
first botocore session, that initializer runs ``assume_provider.install()``, the same code
path as a user calling it, and sets that session up as ``install()`` sets up every later one.
If botocore is already imported (e.g. the hook is run late by hand), it installs at once.

Why not install at ``import botocore``: the package, and the parts of botocore it needs
(``botocore.session`` and what that imports, urllib3 included), would then be imported from
inside botocore's own import, a few Python frames deeper than the application would import
them. On CPython 3.11 that can put a hot recursion (``re`` compiling urllib3's URL patterns)
exactly on the boundary of a frame-stack chunk, which CPython then maps and unmaps at every
call: about 3,000 ``mmap``/``munmap`` pairs and 3,000 page faults per process, measured
(``benchmarks/short_lived_cost.py``), a cost botocore's own profile does not pay. At session
creation, botocore is imported as the application imports it, and a process that imports
botocore but never creates a session imports nothing of this package's.

Nothing here may break interpreter start-up or the application's ``import botocore``: any
failure is kept and raised at credential-resolution time instead, as an error that names
``ASSUME_PROVIDER_ROLE_ARN`` (a malformed setting needs no help: the provider parses the
settings at resolution time and raises the usual ``ConfigError``).

Python 3.15+ (PEP 829) calls :func:`start` from the ``.start`` file and ignores the ``.pth``
import line; older versions run the ``.pth`` line. Both end in :func:`start`.
"""

from __future__ import annotations

import _thread
import os
import sys

TYPE_CHECKING = False  # typing is not loaded at start-up; importing it would cost ~1.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any, Optional

ROLE_ARN_VARIABLE = "ASSUME_PROVIDER_ROLE_ARN"
# Activates the provider with the role chain from the AWS config file (assume_provider_role_arn
# in the active profile); "0"/"false"/"no"/"off" switches zero-code activation off entirely.
SWITCH_VARIABLE = "ASSUME_PROVIDER_ENABLE"
_SWITCH_OFF = frozenset({"0", "false", "no", "off"})

_TARGET = "botocore"
_armed = False


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for zero-code activation."""
    switch = environ.get(SWITCH_VARIABLE, "").strip().lower()
    if switch:  # set and not empty: it decides, whatever the role variable says
        return switch not in _SWITCH_OFF
    return bool(environ.get(ROLE_ARN_VARIABLE, "").strip())


def start() -> None:
    """Entry point of the ``.pth`` line and the PEP 829 ``.start`` file. Never raises.

    Also armed, without activating, when an ``ASSUME_PROVIDER_*`` variable is set that the
    package does not know (``ASSUME_PROVIDER_ROLEARN``): then importing botocore logs one
    warning naming it and the closest known one, and changes nothing else.
    """
    global _armed
    if _armed:
        return
    try:
        install = requested()
        if not install and not _unknown_variable_set():
            return
        _armed = True
        botocore = sys.modules.get(_TARGET)
        if botocore is not None:
            _activate(botocore, install)
        else:
            sys.meta_path.insert(0, _BotocoreFinder(install))
    except Exception:  # noqa: BLE001, S110 - start-up must go on; nothing to report it to
        pass


def _unknown_variable_set() -> bool:
    # The scan alone when no variable of ours is set (PEP 829 calls start() at every start).
    if not any(name.startswith(_PREFIX) for name in os.environ):
        return False
    from ..config.variables import unknown_variables

    return bool(unknown_variables(os.environ))


_PREFIX = "ASSUME_PROVIDER_"


class _BotocoreFinder:
    """Fires once, when ``botocore`` is first imported (also when the AWS CLI v1 >= 1.46
    serves its vendored copy under that name through its own meta-path finder)."""

    def __init__(self, install: bool = True) -> None:
        self._searching = False
        self.install = install

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None
    ) -> Optional[ModuleSpec]:
        if fullname != _TARGET or self._searching:
            return None
        # Ask the finders after this one, as the import system would have done without us.
        self._searching = True
        try:
            spec = _find_with_others(self, fullname, path, target)
        finally:
            self._searching = False
        if spec is not None and hasattr(spec.loader, "exec_module"):
            # Duck-typed, not an importlib.abc.Loader: importing importlib.abc costs start-up time.
            spec.loader = _ActivatingLoader(spec.loader, self)  # type: ignore[assignment]
        return spec


def _find_with_others(
    skip: object, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType]
) -> Optional[ModuleSpec]:
    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        if finder is skip or find_spec is None:
            continue
        spec: Optional[ModuleSpec] = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


class _ActivatingLoader:
    """Wraps botocore's own loader: runs it, then installs the provider."""

    def __init__(self, loader: Any, finder: _BotocoreFinder) -> None:
        self._loader = loader
        self._finder = finder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> Optional[ModuleType]:
        module: Optional[ModuleType] = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # botocore is loaded: from here on the module must look as if we had never been there.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        try:
            sys.meta_path.remove(self._finder)
        except ValueError:
            pass
        _activate(module, self._finder.install)


def _activate(botocore: ModuleType, requested_install: bool = True) -> None:
    """If activation was requested, ``assume_provider.install()`` at the first session (or at
    once if botocore.session is loaded already), with a failure kept for credential
    resolution; else only warn about unknown variables (the installing path warns too)."""
    if not requested_install:
        _warn_unknown_variables()
        return
    try:
        if "botocore.session" in sys.modules:  # run late: sessions may exist already
            _install(botocore)
        else:
            _install_at_first_session.arm(botocore)
    except Exception:  # noqa: BLE001, S110 - botocore itself is unusable; it will say so
        pass


def _warn_unknown_variables() -> None:
    try:
        from ..config.variables import warn_unknown_variables

        warn_unknown_variables(os.environ)
    except Exception:  # noqa: BLE001, S110 - a warning must never break `import botocore`
        pass


def _install(botocore: ModuleType) -> Callable[[Any], None]:
    """``install()``. Returns what sets a session being created up as botocore's initializers
    now will: the package's initializer, or after a failure (kept for credential resolution,
    ``_defer``) the one that raises it. Never raises."""
    _warn_unknown_variables()
    try:
        from ..collector import collector_paused

        with collector_paused():
            from ..aio import registration as _aio  # noqa: F401 - covers aiobotocore sessions
            from ..botocore.registration import initialize_new_session, install_unless_called

            # The application may have called install() (or uninstall()) itself since
            # botocore was imported: its call stands.
            install_unless_called()
        return initialize_new_session
    except Exception as exc:  # noqa: BLE001 - a broken install must not break botocore
        try:
            return _defer(botocore, exc)
        except Exception:  # noqa: BLE001 - botocore itself is unusable; it will say so
            return lambda session: None


class _FirstSessionInstaller:
    """The botocore session initializer the hook registers: installs at the first session
    and does nothing for later ones (the package's own initializer, registered by
    ``install()``, sets those up).

    The session being created when it installs is set up here: ``install()`` appends its
    initializer to botocore's list while botocore is going through that list for this
    session, and whether botocore reaches it is botocore's business. Setting a session up
    twice is harmless (the package's initializer does nothing for a session it knows). A
    second thread's first session waits for the install under the lock, then is set up too.
    """

    def __init__(self) -> None:
        self.botocore: Optional[ModuleType] = None
        self._set_up: Optional[Callable[[Any], None]] = None
        # _thread, not threading: built in, so free at start-up. Reentrant: nothing install()
        # does is known to create a session, but if it did that session would come back here
        # on this thread. Made here, not at first use, so two threads cannot make one each.
        self._lock = _thread.RLock()
        self._fork_handler_registered = False

    def __call__(self, session: Any) -> None:
        if self._set_up is not None or self.botocore is None:
            return
        with self._lock:
            if self._set_up is None:
                self._set_up = _install(self.botocore)
        self._set_up(session)

    def arm(self, botocore: ModuleType) -> None:
        """Install at botocore's next session (registered as its initializer)."""
        self.botocore = botocore
        if not self._fork_handler_registered:
            self._fork_handler_registered = True
            _renew_in_forked_children(self._lock)
        botocore.register_initializer(self)


def _renew_in_forked_children(lock: Any) -> None:
    """A child forked while another thread installs must not inherit the lock held.

    The handler is the lock's own ``_at_fork_reinit`` (what ``threading`` uses for its locks;
    on CPython since 3.9, and on PyPy, whose ``threading`` needs it too), not a function of
    this module: the interpreter keeps at-fork handlers until the very end of its shutdown,
    after the collections that free the application's modules, and a Python function keeps
    its module's globals alive. From here those reach the installer, the package's
    initializer, every provider, their private sessions and the service models botocore
    loaded, and kept them through two more full collections at the exit of every zero-code
    process: 14 M instructions (``benchmarks/short_lived_cost.py``; docs/performance.md).
    """
    reinit = getattr(lock, "_at_fork_reinit", None)
    if reinit is not None:
        os.register_at_fork(after_in_child=reinit)


_install_at_first_session = _FirstSessionInstaller()


def activation_error(cause: BaseException) -> Exception:
    """The error every credential resolution raises after a failed activation."""
    message = (
        f"{ROLE_ARN_VARIABLE}/{SWITCH_VARIABLE} is set, but assume-provider could not be "
        f"activated: {type(cause).__name__}: {cause}"
    )
    try:
        from ..errors import ConfigError
    except Exception:  # noqa: BLE001 - errors.py is what failed; fall back to botocore's base
        from botocore.exceptions import BotoCoreError

        class ConfigError(BotoCoreError):  # type: ignore[no-redef, misc]
            fmt = "{message}"

    error: Exception = ConfigError(message)
    error.__cause__ = cause
    return error


def _defer(botocore: ModuleType, cause: BaseException) -> Callable[[Any], None]:
    """Every botocore session gets a first credential provider that raises the failure.
    Returns the initializer that does it (registered with botocore for later sessions)."""
    import botocore.credentials as credentials

    error = activation_error(cause)

    class ActivationFailed(credentials.CredentialProvider):  # type: ignore[misc]
        METHOD = "assume-provider"
        CANONICAL_NAME = "custom-assume-provider"

        def load(self) -> None:
            raise error

    def initializer(session: Any) -> None:
        def build_resolver() -> Any:
            resolver = credentials.create_credential_resolver(session)
            resolver.providers.insert(0, ActivationFailed())
            return resolver

        session.lazy_register_component("credential_provider", build_resolver)

    botocore.register_initializer(initializer)
    return initializer
