"""The botocore session this package builds its own clients on: a private copy of the
application's.

The chain's STS clients and its source's resolvers are built from background threads (the
prefetch thread, the server's workers, the async view's worker) while the application's own
threads create clients on the application's session. botocore does not promise that
``Session.create_client`` is safe from several threads of one session at once (its guide says
to create a session per thread), so this package never builds on the application's session:
it builds on a ``PrivateSession``, configured as the application's is, which creates one
client at a time whoever asks (a lock around its own ``create_client``). A lock on the
application's session could only order this package's builds, never the application's, which
do not take it. Because the copy orders its own builds, one copy serves every object made
from one resolution (a chain's STS client factory and its source): a process pays for one
copy, not one per object (``docs/performance.md``, "Short-lived processes": a session's
construction registers botocore's ~370 built-in event handlers).

A copy carries what decides how botocore reaches AWS: the session's instance variables (the
profile, region, config and credentials files, CA bundle, everything ``set_config_variable``
set, which is also what ``boto3.Session(...)`` sets), its default client config (proxies,
proxy settings, timeouts, retries), and the environment and config files, which it reads
itself. It does not carry event handlers or components the application registered on its
session: the clients the copy builds are this package's, signed with the chain's credentials.

One component is shared instead of copied: the application's data loader, botocore's cache of
the JSON files it ships (endpoints, service models, rule sets). A fresh session would parse
them again for the chain's first STS client, which in a process that makes one call costs
more than everything else this package does (``docs/performance.md``, "Short-lived
processes"). The loader only reads files and keeps what it parsed (a dict written under the
GIL; two threads loading one file at once both parse it, and either result is the same);
botocore shares it among every client of a session already, whatever thread builds them. It
is also the loader botocore's own assume-role provider uses, so models the application added
to its search path apply to the chain's STS clients as they would to botocore's.

botocore's built-in event handlers are copied too, not registered again: a session's
construction registers about 130 of them, checking each one's signature and aliasing each
event name, which costs a short-lived process about as much as the rest of its credential
resolution (about 50 M instructions; ``docs/performance.md``). The botocore integration's
initializer hands this module the handlers of the first plain ``botocore.session.Session``
it sees (``remember_builtin_handlers``) while botocore is still constructing it: its handlers are
then botocore's built-in ones (the integration registers its own only afterwards), plus
those of any initializer registered before this package's, which every session of the
application gets too; and no other thread can hold that session yet, so the copy races with
nothing. The first private copy takes that copy as its own (copying it again cost a
short-lived process 2.5 M instructions and ~700 objects kept to its exit). A later one (a
second chain configured differently: a session per region, say) starts from a copy of the
first copy's handlers, which nothing of this package changes, as long as every botocore
initializer is this package's: another package's would have registered its handlers on the
first copy as well (botocore runs every initializer for every session), and would again on
the later one. Otherwise the later copy registers botocore's handlers afresh, as any new
session does (about 6 ms against 0.5 ms).

The parsed config and credentials files are shared too (``full_config``): the copy is given
the application's files and profile, so its own parse would read the same files for the same
dict, at about 1.4 M instructions in a short-lived process. botocore's own assume-role
provider reads the application's ``full_config`` the same way, and a session parses its files
once for its lifetime, so the copy sees what the application's session sees.

A copy is made when first needed, not at resolution (``PrivateSessionRecipe``): what it is
configured from is read at resolution, so it is the copy it would have been then, but a
process that never needs one (``share = disk`` answered from an entry on disk) makes none.
"""

from __future__ import annotations

import copy as copying
import threading
from collections.abc import Callable, Hashable
from typing import Any, Optional

import botocore.config
import botocore.exceptions
import botocore.session

from ..collector import collector_paused
from ..engine.forksafe import ForkSafeLock

# A copy of botocore's built-in event handlers as a new session has them (see the module): None
# until the botocore integration has seen a plain session being made, and again once the
# first private copy has taken it.
_builtin_handlers: Optional[Any] = None
_handlers_kept = False  # kept once per process: a taken copy is not kept again
# The handlers the first private copy took: what later copies start from (see the module),
# while ``_others_may_have_registered()`` says no.
_first_copy_handlers: Optional[Any] = None
_others_may_have_registered: Optional[Callable[[], bool]] = None  # None: assume they may
_handlers_lock = ForkSafeLock()


def remember_builtin_handlers(hooks: Any, others_may_have_registered: Callable[[], bool]) -> None:
    """Keep a copy of ``hooks`` (a ``botocore.hooks.HierarchicalEmitter``) for the first private
    copy, once per process: the handlers of a plain ``botocore.session.Session`` while
    botocore constructs it (from an initializer), before anything of this package is
    registered on it (see the module). ``others_may_have_registered()``: whether a session
    made now may have got handlers from outside this package (another package's botocore
    initializer); while it says no, later copies start from a copy of the first one's."""
    global _builtin_handlers, _handlers_kept, _others_may_have_registered
    with _handlers_lock:
        if not _handlers_kept:
            _handlers_kept = True
            _builtin_handlers = copying.copy(hooks)
            _others_may_have_registered = others_may_have_registered


def _handlers_for_a_new_copy() -> Optional[Any]:
    """The handlers a new private copy starts from, its own (no two sessions may share one
    emitter: each registers on its own), or None for botocore's registered afresh (see the
    module)."""
    global _builtin_handlers, _first_copy_handlers
    with _handlers_lock:
        if _builtin_handlers is not None:
            _first_copy_handlers, _builtin_handlers = _builtin_handlers, None
            return _first_copy_handlers
        first = _first_copy_handlers
    others = _others_may_have_registered
    if first is None or others is None or others():
        return None
    return copying.copy(first)


class PrivateSession(botocore.session.Session):  # type: ignore[misc]
    """A botocore session of this package's own that builds one client at a time, so the
    objects sharing it (a source, a chain's STS clients) may build from any thread."""

    def __init__(self) -> None:
        # Reentrant: a client botocore builds may need credentials that build another.
        self._building = ForkSafeLock(threading.RLock)
        # The application's parsed files, when the copy is given them (see the module).
        self._shared_full_config: Optional[Any] = None
        kept = _handlers_for_a_new_copy()
        if kept is None:
            super().__init__()
        else:
            super().__init__(event_hooks=kept, include_builtin_handlers=False)

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        # Building a client makes no network call; what it makes lives as long as the client.
        with self._building, collector_paused():
            return super().create_client(*args, **kwargs)

    @property
    def full_config(self) -> Any:
        """The application's parsed files when given (see the module), else botocore's own
        parse of this session's files."""
        shared = self._shared_full_config
        return shared if shared is not None else super().full_config

    def share_full_config(self, parsed: Any) -> None:
        """Read ``parsed`` (the application's ``full_config``) instead of parsing the files."""
        self._shared_full_config = parsed


def private_session(session: botocore.session.Session) -> PrivateSession:
    """A copy configured as ``session`` is (see the module), or ``session`` itself when it is
    already one (the async view's sync twin). For an async session, whose default client
    config may hold aiohttp-only options, ``aio/`` gives the copy a config of botocore's
    options only."""
    return PrivateSessionRecipe(session).make()


class PrivateSessionRecipe:
    """What a private copy of ``session`` is configured from, read now; the copy itself made
    at the first ``make()`` (from any thread, once), so that a process that never builds a
    client or a source on it never pays for one (see the module)."""

    def __init__(self, session: botocore.session.Session) -> None:
        self._made: Optional[PrivateSession] = None
        self._lock = ForkSafeLock()
        if isinstance(session, PrivateSession):
            self._made = session
            return
        self._variables = dict(session.instance_variables())
        self._client_config = session.get_default_client_config()
        self._loader = session.get_component("data_loader")
        # The User-Agent the application's STS calls would send (boto3's, the AWS CLI's), so
        # CloudTrail shows the AssumeRole calls made for it as its own.
        self._user_agent = (
            session.user_agent_name,
            session.user_agent_version,
            session.user_agent_extra,
        )
        try:
            self._full_config: Optional[Any] = session.full_config
        except botocore.exceptions.BotoCoreError:
            self._full_config = None  # unreadable files: the copy reads them, and says so

    def make(self) -> PrivateSession:
        """The copy: made at the first call, the same one afterwards."""
        made = self._made
        if made is not None:
            return made
        with self._lock:
            if self._made is None:
                self._made = self._build()
            return self._made

    def _build(self) -> PrivateSession:
        with collector_paused():  # no network call; the copy lives as long as the chain
            return self._build_copy()

    def _build_copy(self) -> PrivateSession:
        copy = PrivateSession()
        for name, value in self._variables.items():
            copy.set_config_variable(name, value)
        if self._client_config is not None:
            copy.set_default_client_config(self._client_config)
        copy.register_component("data_loader", self._loader)
        copy.user_agent_name, copy.user_agent_version, copy.user_agent_extra = self._user_agent
        if self._full_config is not None:
            copy.share_full_config(self._full_config)
        return copy


def client_settings(
    session: botocore.session.Session, config: Optional[botocore.config.Config]
) -> Hashable:
    """How clients built from ``session`` with ``config`` reach AWS, hashable (part of the
    sharing keys): every option of the config they get, and the CA bundle. Sessions that
    differ here must not share a chain or a source, or the first one decides for all."""
    return (
        () if config is None else frozen_config(config),
        _frozen(session.get_config_variable("ca_bundle")),
    )


def frozen_config(config: botocore.config.Config) -> Hashable:
    """Every option of ``config``, hashable: equal exactly when the configs act the same."""
    options = {name: value for name, value in vars(config).items() if not name.startswith("_")}
    return _frozen(options)


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((str(key), _frozen(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_frozen(item) for item in value]
        return tuple(sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value  # type: ignore[no-any-return]


def session_overrides(session: botocore.session.Session) -> Optional[str]:
    """What ``session`` sets beyond its environment and files, as text for the disk-cache key,
    or None when nothing: then its chain is the one ``credential-process`` builds for the same
    environment, and the two share an entry (``share = disk``). The profile is left out: the
    key names the active profile already."""
    variables = {
        name: value for name, value in session.instance_variables().items() if name != "profile"
    }
    config = session.get_default_client_config()
    if not variables and config is None:
        return None
    return repr((_frozen(variables), () if config is None else frozen_config(config)))
