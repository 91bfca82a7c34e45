"""Where STS calls go: region and endpoint from botocore's standard settings, pinned per provider.

The region never depends on which client happened to trigger credential resolution (botocore's
own AssumeRoleProvider uses the region of the last client created, so the same process can
assume through different regions). A plain-http endpoint is refused unless its host is a
loopback address (``is_loopback_host``, the rule the server's checks use too), because the
response carries credentials.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlsplit

import botocore.config
import botocore.session

from ..engine.forksafe import ForkSafeLock
from ..engine.records import frozen
from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .assume_role import StsClientFactory

USER_AGENT_EXTRA = "assume-provider"
# The id of the botocore integration's ExpiredToken retry handler, which STS clients of the
# chain must not carry (see make_client below).
EXPIRED_TOKEN_HANDLER_ID = "assume-provider-expired-token"  # noqa: S105 - an event id

# A credential fetch must not hang a request thread for botocore's default 60 s; botocore's
# standard retry mode retries throttling and 5xx with backoff and jitter.
_STS_CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=5,
    read_timeout=10,
    retries={"mode": "standard", "total_max_attempts": 3},
    user_agent_extra=USER_AGENT_EXTRA,
)


@frozen
class StsTarget:
    """The STS region and the endpoint settings that decide the URL (part of the sharing key)."""

    region: Optional[str]
    configured_endpoint: Optional[str]
    endpoint_origin: Optional[str]
    regional_endpoints: Optional[str]


def is_loopback_host(host: Optional[str]) -> bool:
    """Whether ``host`` is a loopback address: the one rule for every "loopback only" check
    (a plain-http STS endpoint here, ``serve --host`` and so the server's ``Host`` check).

    An IP literal in ``127.0.0.0/8``, or ``::1``, as ``bind()`` and ``urlsplit().hostname``
    give it (no brackets). The same answer on every supported Python (3.13 started calling
    IPv4-mapped ``::ffff:127.0.0.1`` loopback; botocore's own container check, on older
    ones, does not).

    Refused, although each may reach loopback: names, ``localhost`` included, because a name
    is not an address: what it points to is decided by ``/etc/hosts``, nsswitch or DNS when
    the connection is made, after this check, so accepting it would prove nothing, and the
    contract says loopback addresses. For ``serve`` the name is also ambiguous: it stands
    for both ``127.0.0.1`` and ``::1``, the server binds one of them, and the URL it prints
    and the ``Host`` it accepts must be one exact address. IPv4-mapped forms and zone IDs
    (``::1%lo``) are refused too: one spelling per address, the one every client accepts.
    """
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and (address.ipv4_mapped or address.scope_id):
        return False
    return address.is_loopback


def check_endpoint_transport(url: str, origin: str) -> None:
    """Refuse plain http to anything but loopback, before any request is made."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"refusing plain-http STS endpoint {url!r} (from {origin}): STS responses carry "
            "credentials; use https (http is allowed only for loopback addresses such as "
            "127.0.0.1 or [::1], not names such as localhost)"
        )
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"invalid STS endpoint {url!r} (from {origin}): expected an https:// URL")


def _configured_endpoint(session: botocore.session.Session) -> tuple[Optional[str], Optional[str]]:
    """The endpoint URL botocore would use for STS, by botocore's documented precedence."""
    if str(session.get_config_variable("ignore_configured_endpoint_urls")).lower() == "true":
        return None, None
    for variable in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):
        if os.environ.get(variable):
            return os.environ[variable], f"environment variable {variable}"
    scoped = session.get_scoped_config() or {}
    services_section = scoped.get("services")
    if services_section:
        services = session.full_config.get("services", {}).get(services_section, {})
        sts_config = services.get("sts", {})
        if isinstance(sts_config, dict) and sts_config.get("endpoint_url"):
            return sts_config["endpoint_url"], f"services section '{services_section}' (sts)"
    if scoped.get("endpoint_url"):
        return scoped["endpoint_url"], "key endpoint_url of the active profile"
    return None, None


def sts_target(session: botocore.session.Session) -> StsTarget:
    endpoint, origin = _configured_endpoint(session)
    if endpoint:
        check_endpoint_transport(endpoint, origin or "configuration")
    return StsTarget(
        region=session.get_config_variable("region"),
        configured_endpoint=endpoint,
        endpoint_origin=origin,
        regional_endpoints=session.get_config_variable("sts_regional_endpoints"),
    )


def sts_client_config(session: botocore.session.Session) -> botocore.config.Config:
    """The config of the chain's STS clients: ours, with the options the application set on
    the session (timeouts, proxies, proxy settings, retries) winning, as botocore's own
    assume-role provider lets them win for its STS clients."""
    user_config = session.get_default_client_config()
    return _STS_CLIENT_CONFIG.merge(user_config) if user_config else _STS_CLIENT_CONFIG


def sts_client_factory(session: botocore.session.Session, target: StsTarget) -> StsClientFactory:
    """STS clients from ``session``'s own configuration, in the pinned region, built one at a
    time: ``session`` is the chain's own (``private_session``), but the prefetch thread, the
    server's workers and callers in their blocking window may each refresh it."""
    config = sts_client_config(session)
    building = ForkSafeLock()

    def make_client(
        access_key: str, secret_key: str, token: Optional[str], region: Optional[str] = None
    ) -> Any:
        # ``region``: a fallback region. botocore signs for it and resolves its endpoint, or
        # sends it to the configured endpoint override as for the pinned region.
        with building:
            client = session.create_client(
                "sts",
                region_name=region or target.region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=token,
                config=config,
            )
        # The session's ExpiredToken handler is about the credentials this package hands
        # out; an STS client signed with a hop's or the source's credentials must let the
        # chain see the error (it reloads the source) instead of retrying blindly.
        client.meta.events.unregister("needs-retry", unique_id=EXPIRED_TOKEN_HANDLER_ID)
        # Defence in depth: botocore may resolve a URL from settings we did not read.
        check_endpoint_transport(client.meta.endpoint_url, "botocore's resolved STS endpoint")
        return client

    return make_client


def deferred_sts_client_factory(
    make_session: Callable[[], botocore.session.Session], target: StsTarget
) -> StsClientFactory:
    """``sts_client_factory`` on the session ``make_session`` returns, set up at the first
    client: a process whose credentials come from the disk cache never makes that session
    (``PrivateSessionRecipe.make``: the same session every time)."""
    factories: list[StsClientFactory] = []
    setting_up = ForkSafeLock()

    def make_client(
        access_key: str, secret_key: str, token: Optional[str], region: Optional[str] = None
    ) -> Any:
        with setting_up:
            if not factories:
                factories.append(sts_client_factory(make_session(), target))
            factory = factories[0]
        return factory(access_key, secret_key, token, region)

    return make_client
