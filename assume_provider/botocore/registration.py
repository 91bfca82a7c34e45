"""Putting the provider first in botocore's chain: for one session, or for every session.

``install()`` uses ``botocore.register_initializer``, which botocore runs at the end of every
``Session.__init__`` (boto3's sessions and the AWS CLI's included). The session's resolver is
registered lazily, so it is built at first use, after boto3 has applied the session's profile.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable
from typing import Any, Optional

import botocore
import botocore.credentials
import botocore.exceptions
import botocore.session

from ..credentials.private_session import PrivateSession, remember_builtin_handlers
from ..credentials.sts import EXPIRED_TOKEN_HANDLER_ID
from ..engine.forksafe import ForkSafeLock
from ..engine.records import frozen
from ..redaction import install_redaction
from . import private
from .credentials import (
    SIGNING_KEY_HANDLER_ID,
    record_signing_key,
    retry_once_after_expired_token,
)
from .provider import METHOD, AssumeRoleChainProvider, resolve_session_settings
from .resolver import ProviderFirstResolver

_lock = ForkSafeLock(threading.RLock)
_providers: weakref.WeakKeyDictionary[botocore.session.Session, AssumeRoleChainProvider] = (
    weakref.WeakKeyDictionary()
)
_installed_settings: Optional[dict[str, Any]] = None
# The providers install() put in place (through the initializer), as opposed to explicit
# register() calls: only these follow later install()/uninstall() calls.
_installed_providers: weakref.WeakSet[AssumeRoleChainProvider] = weakref.WeakSet()


@frozen
class SessionKind:
    """A kind of botocore session other than botocore's own (aiobotocore's ``AioSession``):
    how to recognise one, the provider class its resolver awaits or calls, and the factory of
    the rest of its credential chain. Added by the layer that knows the kind (``aio/``)."""

    name: str
    matches: Callable[[botocore.session.Session], bool]
    provider_class: type[AssumeRoleChainProvider]
    create_resolver: Callable[..., Any]


_SYNC_KIND = SessionKind(
    "botocore",
    lambda session: True,
    AssumeRoleChainProvider,
    botocore.credentials.create_credential_resolver,
)
_kinds: list[SessionKind] = []


def add_session_kind(kind: SessionKind) -> None:
    """Let install() and register() cover sessions of ``kind`` too (idempotent by name)."""
    with _lock:
        if all(existing.name != kind.name for existing in _kinds):
            _kinds.append(kind)


def _is_async(session: botocore.session.Session) -> bool:
    # An async session (aiobotocore's) awaits its resolver; a sync provider there would crash
    # every client it creates.
    return inspect.iscoroutinefunction(getattr(type(session), "get_credentials", None))


def _kind_of(session: botocore.session.Session) -> Optional[SessionKind]:
    """The session's kind, or None for an async session no layer has claimed."""
    for kind in _kinds:
        if kind.matches(session):
            return kind
    return None if _is_async(session) else _SYNC_KIND


def _botocore_session(session: Any) -> botocore.session.Session:
    if session is None:
        import boto3

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
    inner = private.botocore_session_of(session)
    if inner is not None:
        return inner
    if isinstance(session, botocore.session.Session):
        return session
    raise TypeError(
        "register() needs a boto3, botocore, aioboto3 or aiobotocore session, "
        f"not {type(session)!r}"
    )


def _resolver_factory(
    session: botocore.session.Session, provider: AssumeRoleChainProvider, kind: SessionKind
) -> Any:
    def build_resolver() -> Any:
        # botocore's own factory passes the region of the last client created; keep that.
        region = private.last_client_region(session)

        def build_chain() -> Any:
            try:
                return kind.create_resolver(session, region_name=region)
            except botocore.exceptions.ProfileNotFound:
                # Raises the ConfigError that names the profile and what named it.
                resolve_session_settings(session, provider.arguments)
                raise

        if kind is _SYNC_KIND:  # botocore's chain behind the provider built when needed
            try:
                # Where botocore's own factory raises ProfileNotFound for a missing profile,
                # and where callers catch it (the AWS CLI v1 at every command): here too.
                session.get_scoped_config()
            except botocore.exceptions.ProfileNotFound:
                resolve_session_settings(session, provider.arguments)  # MissingProfileError
                raise
            return ProviderFirstResolver(provider, build_chain)
        resolver = build_chain()  # an async chain: its layer's resolver awaits the providers
        if all(existing.METHOD != METHOD for existing in resolver.providers):
            resolver.providers.insert(0, provider)
        return resolver

    return build_resolver


def register(session: Any = None, **settings: Any) -> AssumeRoleChainProvider:
    """Make ``session`` (default: boto3's default session) resolve credentials through the chain.

    Registering a session again updates its settings; it never adds a second provider.
    """
    provider = _register(_botocore_session(session), settings)
    _installed_providers.discard(provider)  # explicit from now on: uninstall() leaves it
    return provider


def _register(
    target: botocore.session.Session, settings: dict[str, Any]
) -> AssumeRoleChainProvider:
    kind = _kind_of(target)
    if kind is None:
        raise TypeError(
            f"{type(target).__name__} is an async session: register it with "
            "assume_provider.register(), which covers aiobotocore sessions"
        )
    install_redaction()
    # The session is set up and its provider published under one lock: a register() of the
    # same session on another thread returns only once this one's resolver is in place, so
    # no client it creates can resolve (and cache for good) botocore's default chain.
    with _lock:
        provider = _providers.get(target)
        if provider is not None:
            provider.arguments = AssumeRoleChainProvider(target, **settings).arguments
            provider.enabled = True
            return provider
        provider = kind.provider_class(target, **settings)
        target.lazy_register_component(
            "credential_provider", _resolver_factory(target, provider, kind)
        )
        target.register(
            "needs-retry",
            retry_once_after_expired_token,
            unique_id=EXPIRED_TOKEN_HANDLER_ID,
        )
        # On the generic event, so it runs after the client's signer (registered per service).
        target.register("request-created", record_signing_key, unique_id=SIGNING_KEY_HANDLER_ID)
        _providers[target] = provider
    return provider


def initialize_new_session(session: botocore.session.Session) -> None:
    """What ``install()`` does for a session botocore is creating (its initializer), for a
    caller that cannot know whether botocore will run that initializer for this session (the
    zero-code hook, installing from within botocore's initializers). Does nothing for a
    session already set up."""
    _initializer(session)


def _initializer(session: botocore.session.Session) -> None:
    if session in _providers:
        return  # set up already (initialize_new_session, then botocore's own call)
    settings = _installed_settings
    if isinstance(session, PrivateSession):
        return  # this package's own: its clients are signed with the chain's credentials
    if type(session) is botocore.session.Session:  # subclasses may register other handlers
        hooks = private.event_hooks_of(session)
        if hooks is not None:
            # Before anything of ours is registered on it.
            remember_builtin_handlers(hooks, private.foreign_initializers_registered)
    if settings is not None and _kind_of(session) is not None:
        # An async session no layer claims keeps its own resolver (never a sync one).
        _installed_providers.add(_register(session, settings))


# Set by install() and uninstall(): zero-code activation installs at the first session, which
# may come after the application's own call, whose arguments (or uninstall) must then stand.
_called = False


def install_unless_called() -> None:
    """Zero-code activation's install(): does nothing if install() or uninstall() was called
    already (an explicit argument outranks the environment; an uninstall stands)."""
    if not _called:
        install()


def install(**settings: Any) -> None:
    """From now on, every botocore session in the process uses the chain first. Idempotent."""
    global _installed_settings, _called
    _called = True
    AssumeRoleChainProvider(None, **settings)  # invalid arguments fail here, not later
    with _lock:
        first_time = _installed_settings is None
        _installed_settings = dict(settings)
        if first_time:
            botocore.register_initializer(_initializer)
        for provider in _installed_providers:
            provider.arguments = dict(settings)
            provider.enabled = True
    install_redaction()
    _register_existing_default_session(settings)


def _register_existing_default_session(settings: dict[str, Any]) -> None:
    # boto3's default session may predate install(); sessions made later go through the
    # initializer. Only look if boto3 is already imported: install() must not import it.
    import sys

    boto3 = sys.modules.get("boto3")
    default = getattr(boto3, "DEFAULT_SESSION", None) if boto3 else None
    if default is not None and not _is_explicitly_registered(default):
        _installed_providers.add(_register(_botocore_session(default), settings))


def _is_explicitly_registered(session: Any) -> bool:
    provider = _providers.get(_botocore_session(session))
    return provider is not None and provider not in _installed_providers


def uninstall() -> None:
    """Undo ``install()`` for what has not resolved credentials yet: new sessions no longer
    get the provider, and sessions it set up that have not resolved credentials yet resolve
    them through botocore's own chain. A session that already resolved credentials keeps
    them, and so does every client already created: botocore caches them in the session and
    in each client, and they go on refreshing through the chain. Create new sessions (and
    clients) to leave it. Sessions given to ``register()`` keep the provider."""
    global _installed_settings, _called
    _called = True
    with _lock:
        if _installed_settings is None:
            return
        _installed_settings = None
        try:
            botocore.unregister_initializer(_initializer)
        except ValueError:
            pass
        for provider in _installed_providers:
            provider.enabled = False
