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
The async layer (``assume_provider.aio``) comes the same way, at install if aiobotocore is
imported by then, else when it is (``_cover_aiobotocore``).

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

_BOTOCORE = "botocore"
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
        botocore = sys.modules.get(_BOTOCORE)
        if botocore is not None:
            _activate(botocore, install)
        else:
            _ImportWatcher(_BOTOCORE, lambda module: _activate(module, install)).arm()
    except Exception:  # noqa: BLE001, S110 - start-up must go on; nothing to report it to
        pass


def _unknown_variable_set() -> bool:
    # The scan alone when no variable of ours is set (PEP 829 calls start() at every start).
    if not any(name.startswith(_PREFIX) for name in os.environ):
        return False
    from ..config.variables import unknown_variables

    return bool(unknown_variables(os.environ))


_PREFIX = "ASSUME_PROVIDER_"


class _ImportWatcher:
    """A one-shot ``sys.meta_path`` finder: when ``name`` (with ``submodules``, also any
    module under it, whichever comes first) is first imported, it asks the finders after it
    (also the AWS CLI v1 >= 1.46's, which serves its vendored botocore under that name),
    wraps the loader they found, and once the module has run, removes itself and calls
    ``then(module)``. The module then looks as if it had never been there.

    A loader without ``exec_module`` is left unwrapped and the watcher stays for the next.
    The import system calls ``find_spec`` holding its global lock, so ``then`` runs from the
    loader instead: there it may import (the finders of other threads are not blocked).
    """

    def __init__(
        self, name: str, then: Callable[[ModuleType], object], submodules: bool = False
    ) -> None:
        self._name = name
        self._prefix = f"{name}." if submodules else None
        self._then = then
        self._searching = False

    def arm(self) -> None:
        sys.meta_path.insert(0, self)

    def disarm(self) -> None:
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None
    ) -> Optional[ModuleSpec]:
        if self._searching or not (
            fullname == self._name
            or (self._prefix is not None and fullname.startswith(self._prefix))
        ):
            return None
        # Ask the finders after this one, as the import system would have done without us.
        self._searching = True
        try:
            spec = _find_with_others(self, fullname, path, target)
        finally:
            self._searching = False
        if spec is not None and hasattr(spec.loader, "exec_module"):
            # Duck-typed, not an importlib.abc.Loader: importing importlib.abc costs start-up time.
            spec.loader = _WatchedLoader(spec.loader, self)  # type: ignore[assignment]
        return spec

    def loaded(self, module: ModuleType) -> None:
        self.disarm()
        self._then(module)


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


class _WatchedLoader:
    """Wraps the module's own loader: runs it, then tells the watcher."""

    def __init__(self, loader: Any, watcher: _ImportWatcher) -> None:
        self._loader = loader
        self._watcher = watcher

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> Optional[ModuleType]:
        module: Optional[ModuleType] = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # Loaded: from here on the module must look as if we had never been there.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._watcher.loaded(module)


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
            # Referred to by botocore's list of initializers only, never by this module's
            # globals: those stay reachable from where the interpreter keeps objects to the
            # end of its shutdown (an armed watcher in sys.meta_path), and from the installer
            # they would reach every provider and session (``_renew_in_forked_children``).
            _FirstSessionInstaller().arm(botocore)
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
    ``failure.py``) the one that raises it. Never raises."""
    _warn_unknown_variables()
    try:
        from ..collector import collector_paused

        with collector_paused():
            from ..botocore.registration import initialize_new_session, install_unless_called

            # The application may have called install() (or uninstall()) itself since
            # botocore was imported: its call stands.
            install_unless_called()
            aio_failed = _cover_aiobotocore()
    except Exception as exc:  # noqa: BLE001 - a broken install must not break botocore
        return _defer(botocore, exc)
    if aio_failed is None:
        return initialize_new_session

    def set_up(session: Any) -> None:  # the session being created may be an AioSession
        initialize_new_session(session)
        aio_failed(session)

    return set_up


_AIOBOTOCORE = "aiobotocore"
_AIO_LAYER = "assume_provider.aio.registration"


def _cover_aiobotocore() -> Optional[Callable[[Any], None]]:
    """Cover aiobotocore sessions too (``aio/registration.py``): at once if aiobotocore is
    imported, else as soon as it is, so that a process that never imports it (most) never
    imports the async layer (three modules, each a fixed import cost). Returns the
    initializer that fails async sessions if the layer failed to import here.

    No AioSession exists before ``aiobotocore.session`` has run, and the first of
    aiobotocore's modules to be imported goes through the watcher, unless another thread
    found aiobotocore before the watcher was armed: then it is in ``sys.modules`` (looked at
    again once armed), or will be before any of its modules is looked for.
    """
    if _AIO_LAYER not in sys.modules and _AIOBOTOCORE not in sys.modules:
        # Refers to nothing of the application's (botocore): it may stay armed to the end.
        watcher = _ImportWatcher(_AIOBOTOCORE, lambda module: _import_aio_layer(), True)
        watcher.arm()
        if _AIOBOTOCORE not in sys.modules:  # looked at again once armed: see above
            return None
        watcher.disarm()
    return _import_aio_layer()


def _import_aio_layer() -> Optional[Callable[[Any], None]]:
    """Import the async layer. Never raises (it may run inside ``import aiobotocore``): a
    failure is kept for the credential resolution of async sessions, and returned as the
    initializer that sets one up to raise it; sync sessions keep the provider."""
    try:
        from ..collector import collector_paused

        with collector_paused():
            from ..aio import registration as _aio  # noqa: F401 - covers aiobotocore sessions
        return None
    except Exception as exc:  # noqa: BLE001 - a broken install must not break aiobotocore
        return _defer(sys.modules.get(_BOTOCORE), exc, aio_only=True)


def _defer(
    botocore: Optional[ModuleType], cause: BaseException, aio_only: bool = False
) -> Callable[[Any], None]:
    """The failure kept for credential resolution (``failure.defer``). Never raises."""
    try:
        from . import failure

        requested_by = f"{ROLE_ARN_VARIABLE}/{SWITCH_VARIABLE}"
        if aio_only:
            scope = " for aiobotocore sessions"
            return failure.defer(botocore, cause, requested_by, failure.is_aio_session, scope)
        return failure.defer(botocore, cause, requested_by)
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
    its module's globals alive. From here those reached the installer (then one of them),
    the package's initializer, every provider, their private sessions and the service models
    botocore loaded, and kept them through two more full collections at the exit of every zero-code
    process: 14 M instructions (``benchmarks/short_lived_cost.py``; docs/performance.md).
    """
    reinit = getattr(lock, "_at_fork_reinit", None)
    if reinit is not None:
        os.register_at_fork(after_in_child=reinit)
