"""``AssumeRoleChainProvider``: the entry in botocore's credential chain.

``load()`` resolves the settings of the session it belongs to (at resolution time, because
boto3 sets a session's profile after the session is created), then hands out the process-wide
shared credentials for those settings. It makes no network call itself: the first signed
request fetches through the refresh engine.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any, Optional

import botocore.credentials
import botocore.exceptions
import botocore.session

from ..config.inputs import SettingInputs
from ..config.profiles import ConfigFiles, ProfileChoice, choose_profile, expand_path
from ..config.settings import SHARE_DISK, Settings, resolve_settings
from ..credentials.fetcher import (
    ChainFetcher,
    account_of,
    chain_key,
    engine_now,
    fallback_regions,
    make_engine,
)
from ..credentials.private_session import PrivateSessionRecipe, client_settings
from ..credentials.sources import SourceCredentials, source_key
from ..credentials.sts import deferred_sts_client_factory, sts_client_config, sts_target
from ..engine import shared
from . import private
from .credentials import EngineCredentials

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..engine.model import TemporaryCredentials

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


def shared_credentials(
    settings: Settings,
    session: botocore.session.Session,
    inputs: Optional[SettingInputs] = None,
) -> EngineCredentials:
    """The process-wide credentials object for these settings (no network I/O here).

    The chain's sharing key is read from ``session``; its source and STS clients are built on
    a private copy of it (``credentials/private_session.py`` says why), never on ``session``:
    one copy for both, configured as ``session`` is now, made when the first of them needs
    it (never, if the disk cache always answers).
    With ``share = disk`` and the ``inputs`` the settings came from, the engine fetches
    through the disk cache of ``credential-process`` too (``credentials/disk_share.py``),
    under the key that command computes for the same inputs. (The server passes no inputs:
    it is the sharing itself.)
    """
    target = sts_target(session)
    source_id = source_key(settings.source, session)
    recipes: list[PrivateSessionRecipe] = []

    def copy() -> PrivateSessionRecipe:
        # Read now (the session as it is at resolution); the copy is made at first use.
        if not recipes:
            recipes.append(PrivateSessionRecipe(session))
        return recipes[0]

    source = shared.shared(
        ("source", source_id),
        lambda: SourceCredentials(settings.source, copy().make, private.imds_fetcher_of),
    )
    sts_client = client_settings(session, sts_client_config(session))
    disk_key = None
    if inputs is not None and settings.share == SHARE_DISK:
        # Imported here: a process that does not share through the disk never loads it.
        from ..credentials.private_session import session_overrides
        from ..diskcache.key import key_of

        disk_key = key_of(inputs, session_overrides(session))
    key = chain_key(settings, source_id, target, sts_client, disk_key)

    def build() -> EngineCredentials:
        fetcher = ChainFetcher(
            settings,
            source,
            deferred_sts_client_factory(copy().make, target),
            fallback_regions(settings, target),
        )
        fetch: Callable[[], TemporaryCredentials] = fetcher
        if disk_key is not None:
            from ..credentials.disk_share import DiskSharedFetch

            region = session.get_config_variable("region")
            fetch = DiskSharedFetch(
                fetcher,
                settings.cache_dir,
                disk_key,
                advisory_window=settings.refresh_window_seconds,
                region=region if isinstance(region, str) and region else None,
            )
        engine = make_engine(fetch, settings)
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
        # None (zero-code activation, a plain install()) leave nothing to check: settings
        # resolved from no input at all are the defaults, which are valid.
        if arguments:
            only_arguments = ProfileChoice("default", None), ConfigFiles.absent()
            resolve_settings(SettingInputs(arguments, {}, *only_arguments))
        self.arguments = dict(arguments)
        self.enabled = True

    # Held weakly: the registry of providers (botocore/registration.py) maps each session to
    # its provider in a WeakKeyDictionary, and a value that refers to its key keeps it alive:
    # every session ever set up would then live as long as the process.
    @property
    def session(self) -> Optional[botocore.session.Session]:
        held = self._session_ref
        return held() if held is not None else None

    @session.setter
    def session(self, session: Optional[botocore.session.Session]) -> None:
        self._session_ref = weakref.ref(session) if session is not None else None

    def inputs(self) -> SettingInputs:
        """This session's settings inputs (also what its disk-cache key is computed from)."""
        return session_inputs(self.session or botocore.session.get_session(), self.arguments)

    def settings(self) -> Settings:
        return resolve_settings(self.inputs())

    def chain_session(self) -> botocore.session.Session:
        """The botocore session whose configuration and STS clients build the chain."""
        return self.session or botocore.session.get_session()

    def resolve(self) -> Optional[EngineCredentials]:
        """The shared credentials for this session's settings, or None when inactive."""
        if not self.enabled:
            return None
        inputs = self.inputs()
        settings = resolve_settings(inputs)
        if not settings.active:
            return None
        return shared_credentials(settings, self.chain_session(), inputs)

    def load(self) -> Optional[EngineCredentials]:
        return self.resolve()
