"""``AssumeRoleChainProvider``: the entry in botocore's credential chain.

``load()`` resolves the settings of the session it belongs to (at resolution time, because
boto3 sets a session's profile after the session is created), then hands out the process-wide
shared credentials for those settings. It makes no network call itself: the first signed
request fetches through the refresh engine.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

import botocore.credentials
import botocore.exceptions
import botocore.session

from ..config.inputs import SettingInputs
from ..config.profiles import ConfigFiles, ProfileChoice, choose_profile, expand_path
from ..config.settings import Settings, resolve_settings
from ..credentials.chain import (
    EXPIRED_TOKEN_CODES,
    NO_PARAMETERS,
    HopResult,
    SessionParameters,
    assume_chain,
    plan_hops,
)
from ..credentials.sources import SourceCredentials, SourceKey, source_key
from ..credentials.sts import StsTarget, sts_client_factory, sts_target
from ..engine import shared
from ..engine.refresh import RefreshingCredentials, TemporaryCredentials
from ..errors import AssumeRoleError
from .credentials import EngineCredentials

logger = logging.getLogger(__name__)

METHOD = "assume-provider"


def session_inputs(
    session: botocore.session.Session, arguments: Mapping[str, Any]
) -> SettingInputs:
    """The settings inputs of ``session``: its own profile and files, as botocore resolves them."""
    name = session.get_config_variable("profile")
    from_environment = choose_profile(os.environ)
    if name is None:
        profile = from_environment
    elif name == from_environment.name and from_environment.named_by is not None:
        profile = from_environment
    else:
        profile = ProfileChoice(name, "the session")
    files = ConfigFiles(
        expand_path(session.get_config_variable("config_file")),
        expand_path(session.get_config_variable("credentials_file")),
    )
    return SettingInputs(arguments, os.environ, profile, files)


def resolve_session_settings(
    session: botocore.session.Session, arguments: Mapping[str, Any]
) -> Settings:
    return resolve_settings(session_inputs(session, arguments))


@dataclass(frozen=True)
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
        make_sts_client: Any,
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


def shared_credentials(settings: Settings, session: botocore.session.Session) -> EngineCredentials:
    """The process-wide credentials object for these settings (no network I/O here)."""
    target = sts_target(session)
    source_id = source_key(settings.source, session)
    source = shared.shared(
        ("source", source_id), lambda: SourceCredentials(settings.source, session)
    )
    key = ChainKey(
        source=source_id,
        role_arns=settings.role_arns,
        external_id=settings.external_id,
        session_name=settings.session_name,
        duration_seconds=settings.duration_seconds,
        refresh_window_seconds=settings.refresh_window_seconds,
        prefetch=settings.prefetch,
        sts=target,
        parameters=session_parameters(settings),
        sts_fallback_regions=settings.sts_fallback_regions,
    )

    def build() -> EngineCredentials:
        fetcher = ChainFetcher(
            settings,
            source,
            sts_client_factory(session, target),
            fallback_regions(settings, target),
        )
        engine = make_engine(fetcher, settings)
        return EngineCredentials(
            engine, METHOD, account_id=account_of(settings.role_arns[-1]), time_fetcher=engine_now
        )

    return shared.shared(("chain", key), build)


class AssumeRoleChainProvider(botocore.credentials.CredentialProvider):  # type: ignore[misc]
    """Assumes the configured role chain; inactive (``load()`` is None) when none is set."""

    METHOD = METHOD
    # botocore requires custom providers' canonical names to start with "custom".
    CANONICAL_NAME = "custom-assume-provider"

    def __init__(
        self, session: Optional[botocore.session.Session] = None, **arguments: Any
    ) -> None:
        super().__init__(session)
        # Explicit arguments are checked now, so a typo fails at register()/install() time.
        only_arguments = ProfileChoice("default", None), ConfigFiles.absent()
        resolve_settings(SettingInputs(arguments, {}, *only_arguments))
        self.arguments = dict(arguments)
        self.enabled = True

    def settings(self) -> Settings:
        session = self.session or botocore.session.get_session()
        return resolve_session_settings(session, self.arguments)

    def chain_session(self) -> botocore.session.Session:
        """The botocore session whose configuration and STS clients build the chain."""
        return self.session or botocore.session.get_session()

    def resolve(self) -> Optional[EngineCredentials]:
        """The shared credentials for this session's settings, or None when inactive."""
        if not self.enabled:
            return None
        settings = self.settings()
        if not settings.active:
            return None
        return shared_credentials(settings, self.chain_session())

    def load(self) -> Optional[EngineCredentials]:
        return self.resolve()
