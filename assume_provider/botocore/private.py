"""Every botocore and boto3 internal this package relies on, in one place, each with its reason.

Where a public hook exists the package uses it (``register_initializer``,
``lazy_register_component``, the event system, ``get_frozen_credentials``). What is left is
listed here; ``tests/test_botocore_surface.py`` checks each item against the installed
botocore and boto3, so an upgrade that changes one fails there, by name.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Optional

import botocore
import botocore.credentials
import botocore.hooks
import botocore.session
import botocore.utils

if TYPE_CHECKING:
    import datetime

# -- boto3.Session._session -------------------------------------------------------------------
# register(session) accepts a boto3.Session; the botocore session inside it, which holds the
# credential resolver and the event handlers, is reachable only as ``_session``.


def botocore_session_of(session: Any) -> Optional[botocore.session.Session]:
    """The botocore session wrapped by a ``boto3.Session``, or None for anything else."""
    inner = getattr(session, "_session", None)
    return inner if isinstance(inner, botocore.session.Session) else None


# -- botocore.session.Session._last_client_region_used ----------------------------------------
# botocore's own credential-resolver factory (``Session._create_credential_resolver``) passes
# the region of the last client created to ``create_credential_resolver``; the factory that
# puts our provider first must build the rest of the chain exactly as botocore would.


def last_client_region(session: botocore.session.Session) -> Optional[str]:
    """The region botocore's default resolver factory would use for the rest of the chain."""
    region = getattr(session, "_last_client_region_used", None)
    return region if isinstance(region, str) else None


# -- botocore.session.Session._original_handler -----------------------------------------------
# The chain's private sessions start from a copy of botocore's built-in event handlers instead
# of registering them again (``credentials/private_session.py`` says why). The public
# ``Session(event_hooks=...)`` parameter takes the HierarchicalEmitter that holds them, which a
# session keeps only as ``_original_handler``; its public ``event_emitter`` component is the
# EventAliaser around it, and passing that would alias every event name twice, each time into
# an empty cache, on every client built.


def event_hooks_of(session: botocore.session.Session) -> Optional[Any]:
    """The HierarchicalEmitter holding ``session``'s handlers, or None if botocore moved it."""
    hooks = getattr(session, "_original_handler", None)
    return hooks if isinstance(hooks, botocore.hooks.HierarchicalEmitter) else None



# -- botocore._INITIALIZERS -------------------------------------------------------------------
# Every botocore session runs every registered initializer, this package's private copies
# too. A later private copy may start from a copy of the first copy's handlers (what botocore
# registered, nothing more) only while no other package's initializer can have added its own
# to them (credentials/private_session.py); botocore lists its initializers only here.


def foreign_initializers_registered() -> bool:
    """Whether an initializer not of this package is registered with botocore (True when
    botocore no longer keeps its list where this looks: the safe answer)."""
    initializers = getattr(botocore, "_INITIALIZERS", None)
    if not isinstance(initializers, list):
        return True
    return any(not _is_own(initializer) for initializer in initializers)


def _is_own(initializer: object) -> bool:
    module = getattr(initializer, "__module__", None) or type(initializer).__module__
    return module == "assume_provider" or module.startswith("assume_provider.")

# -- botocore.credentials.InstanceMetadataProvider._role_fetcher -------------------------------
# The ``auto`` source wraps the IMDS fetcher of botocore's chain in retries
# (``credentials/imds.py``). ``create_credential_resolver`` has built one for the session
# already, configured as ``imds.imds_fetcher`` configures one (the surface test compares);
# building a second costs a short-lived process about 2 M instructions (an HTTP pool with its
# TLS context). The provider keeps it only as ``_role_fetcher``.


def imds_fetcher_of(provider: Any) -> Optional[Any]:
    """The IMDS fetcher of botocore's ``InstanceMetadataProvider``, or None if it moved."""
    fetcher = getattr(provider, "_role_fetcher", None)
    return fetcher if isinstance(fetcher, botocore.utils.InstanceMetadataFetcher) else None


# -- the request context ----------------------------------------------------------------------
# botocore builds each attempt's AWSRequest with ``context`` set to the very dict that
# ``needs-retry`` handlers receive as ``request_dict["context"]``: it carries the signing key
# from the ``request-created`` handler (which runs after the client's signer) to the retry
# decision. Public attribute names, but their sharing is botocore's implementation.

SIGNING_KEY_CONTEXT_KEY = "assume_provider_signing_key"


def set_signing_key(request: Any, access_key_id: str) -> None:
    """Remember, in the request's context, the access key ID that signed it."""
    context = getattr(request, "context", None)
    if isinstance(context, MutableMapping):
        context[SIGNING_KEY_CONTEXT_KEY] = access_key_id


def signing_key(request_dict: Any) -> Optional[str]:
    """The key ``set_signing_key`` stored for the request that ``request_dict`` describes."""
    if not isinstance(request_dict, dict):
        return None
    context = request_dict.get("context")
    key = context.get(SIGNING_KEY_CONTEXT_KEY) if isinstance(context, MutableMapping) else None
    return key if isinstance(key, str) else None


# -- botocore.credentials.RefreshableCredentials internals ------------------------------------
# EngineCredentials subclasses RefreshableCredentials and runs its __init__, so every method
# botocore may call works as inherited. It overrides these private methods so that they answer
# from the refresh engine (the engine decides when to refresh, not botocore's fixed windows).
# Should botocore rename one, the inherited replacement still works: it reaches the engine
# through ``refresh_using`` and reads the fields below.
REFRESHABLE_OVERRIDES = ("_refresh", "_protected_refresh", "_seconds_remaining")

# The state RefreshableCredentials' own methods read (``refresh_needed``, ``_is_expired``,
# ``_seconds_remaining``, the properties, ``_publish_refresh``); EngineCredentials keeps it
# equal to the engine's credentials each time they change (rarely: once per refresh).
REFRESHABLE_FIELDS = (
    "_access_key",
    "_secret_key",
    "_token",
    "_expiry_time",
    "_frozen_credentials",
)

# Set by RefreshableCredentials.__init__ and used as they are: the clock of
# ``_seconds_remaining``, the callback of ``_protected_refresh``, the lock of ``_refresh``.
REFRESHABLE_INIT_FIELDS = ("_time_fetcher", "_refresh_using", "_refresh_lock", "_account_id")


def mirror_into_refreshable(
    credentials: botocore.credentials.RefreshableCredentials,
    frozen: Any,
    expiry_time: Optional[datetime.datetime],
) -> None:
    """Make RefreshableCredentials' own fields describe ``frozen`` (a ReadOnlyCredentials)."""
    credentials._access_key = frozen.access_key
    credentials._secret_key = frozen.secret_key
    credentials._token = frozen.token
    credentials._expiry_time = expiry_time
    credentials._frozen_credentials = frozen


def renew_refresh_lock(credentials: botocore.credentials.RefreshableCredentials) -> None:
    """A forked child must not inherit ``_refresh_lock`` held by a thread of its parent."""
    credentials._refresh_lock = threading.Lock()

