"""The chain composed: source credentials, every hop, the fallback regions, the refresh engine.

What the library (through ``botocore/``), the command line and the server all build on. It
knows botocore only as the library that makes STS clients and loads sources; adapting the
result to a botocore session (its credential chain, its ``Credentials`` objects) is
``botocore/``'s job.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import TYPE_CHECKING, Optional

from ..engine.records import frozen
from ..engine.refresh import RefreshingCredentials, TemporaryCredentials
from ..errors import AssumeRoleError
from .assume_role import EXPIRED_TOKEN_CODES, HopResult
from .chain import assume_chain
from .hops import NO_PARAMETERS, SessionParameters, plan_hops

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from ..config.settings import Settings
    from .assume_role import StsClientFactory
    from .sources import SourceCredentials, SourceKey
    from .sts import StsTarget

logger = logging.getLogger(__name__)


@frozen
class ChainKey:
    """Everything that determines the chain's result: equal keys share one credentials object."""

    source: SourceKey
    role_arns: tuple[str, ...]
    external_id: Optional[str]
    session_name: str
    duration_seconds: int
    refresh_window_seconds: Optional[int]
    prefetch: bool
    sts: StsTarget
    parameters: SessionParameters = NO_PARAMETERS
    sts_fallback_regions: tuple[str, ...] = ()
    # How the STS requests are sent (proxies, timeouts, CA bundle: ``sts.client_settings``):
    # sessions that would send them differently must not share, or the first one decides.
    sts_client: Hashable = ()
    # How far the credentials are shared (``process`` or ``disk``) and, with ``disk``, the
    # disk-cache entry: engines that would share differently, or through another entry,
    # must not be one engine.
    share: str = "process"
    disk_key: Optional[str] = None


def chain_key(
    settings: Settings,
    source: SourceKey,
    target: StsTarget,
    sts_client: Hashable = (),
    disk_key: Optional[str] = None,
) -> ChainKey:
    """The sharing key of the chain these settings describe, from that source and target."""
    return ChainKey(
        source=source,
        role_arns=settings.role_arns,
        external_id=settings.external_id,
        session_name=settings.session_name,
        duration_seconds=settings.duration_seconds,
        refresh_window_seconds=settings.refresh_window_seconds,
        prefetch=settings.prefetch,
        sts=target,
        parameters=session_parameters(settings),
        sts_fallback_regions=settings.sts_fallback_regions,
        sts_client=sts_client,
        share=settings.share,
        disk_key=disk_key,
    )


def session_parameters(settings: Settings) -> SessionParameters:
    return SessionParameters(
        source_identity=settings.source_identity,
        tags=settings.tags,
        transitive_tag_keys=settings.transitive_tag_keys,
        policy_arns=settings.policy_arns,
        policy=settings.policy,
    )


def fallback_regions(settings: Settings, target: StsTarget) -> tuple[str, ...]:
    """The fallback regions to try, the pinned STS region itself left out."""
    return tuple(region for region in settings.sts_fallback_regions if region != target.region)


class ChainFetcher:
    """The engine's ``fetch``: source credentials, then every hop. Called once per refresh."""

    def __init__(
        self,
        settings: Settings,
        source: SourceCredentials,
        make_sts_client: StsClientFactory,
        fallback_regions: tuple[str, ...] = (),
    ) -> None:
        self._settings = settings
        self._source = source
        self._make_sts_client = make_sts_client
        self._fallback_regions = fallback_regions

    def source_credentials(self) -> TemporaryCredentials:
        frozen, _method = self._source.get()
        return TemporaryCredentials(frozen.access_key, frozen.secret_key, frozen.token, None)

    def hops(self) -> list[HopResult]:
        try:
            return self._assume_once()
        except AssumeRoleError as exc:
            # The source (an instance profile) may have expired before botocore noticed:
            # reload it once and try again; any other failure is the engine's to handle.
            if exc.hop != 1 or exc.error_code not in EXPIRED_TOKEN_CODES:
                raise
            logger.info("source credentials rejected as expired; reloading them once")
            self._source.reload()
            return self._assume_once()

    def _assume_once(self) -> list[HopResult]:
        source = self.source_credentials()
        hops = plan_hops(
            self._settings.role_arns,
            duration_seconds=self._settings.duration_seconds,
            external_id=self._settings.external_id,
            source_is_role_session=source.session_token is not None,
            parameters=session_parameters(self._settings),
        )
        return assume_chain(
            hops,
            source,
            session_name=self._settings.session_name,
            make_sts_client=self._make_sts_client,
            fallback_regions=self._fallback_regions,
        )

    def __call__(self) -> TemporaryCredentials:
        return self.hops()[-1].credentials


# The engine's clocks: the wall clock (for Expiration) and the monotonic one (for every
# deadline measured from now). Tests that simulate hours of running replace both; everything
# else in the engine is real.
clock: Callable[[], float] = time.time
monotonic: Callable[[], float] = time.monotonic


def engine_now() -> datetime.datetime:
    """The engine's clock as botocore's ``time_fetcher`` wants it (aware, UTC)."""
    return datetime.datetime.fromtimestamp(clock(), datetime.timezone.utc)


def make_engine(
    fetch: Callable[[], TemporaryCredentials], settings: Settings
) -> RefreshingCredentials:
    return RefreshingCredentials(
        fetch,
        clock=lambda: clock(),
        monotonic=lambda: monotonic(),
        advisory_window=settings.refresh_window_seconds,
        prefetch=settings.prefetch,
        name=" -> ".join(settings.role_arns),
        role_arns=settings.role_arns,
    )


def account_of(role_arn: str) -> str:
    return role_arn.split(":")[4]
