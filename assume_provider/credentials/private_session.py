"""The botocore sessions this package builds its own clients on: private copies of the
application's.

The chain's STS clients and its source's resolvers are built from background threads (the
prefetch thread, the server's workers, the async view's worker) while the application's own
threads create clients on the application's session. botocore does not promise that
``Session.create_client`` is safe from several threads of one session at once (its guide says
to create a session per thread), so this package never builds on the application's session:
each shared object (a chain's STS client factory, a source) gets a session of its own,
configured as the application's is, and builds on it one thread at a time (a lock in the STS
client factory; the source's own lock). A lock on the application's session could only order
this package's builds, never the application's, which do not take it.

A copy carries what decides how botocore reaches AWS: the session's instance variables (the
profile, region, config and credentials files, CA bundle, everything ``set_config_variable``
set, which is also what ``boto3.Session(...)`` sets), its default client config (proxies,
proxy settings, timeouts, retries), and the environment and config files, which it reads
itself. It does not carry event handlers or components the application registered on its
session: the clients the copy builds are this package's, signed with the chain's credentials.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Optional

import botocore.config
import botocore.session


def private_session(session: botocore.session.Session) -> botocore.session.Session:
    """A new botocore session configured as ``session`` is (see the module). For an async
    session, whose default client config may hold aiohttp-only options, ``aio/`` gives the
    copy a config of botocore's options only."""
    copy = botocore.session.Session()
    for name, value in session.instance_variables().items():
        copy.set_config_variable(name, value)
    config = session.get_default_client_config()
    if config is not None:
        copy.set_default_client_config(config)
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
