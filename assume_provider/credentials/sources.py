"""Source credentials: what signs the first AssumeRole of the chain.

Every kind reuses botocore's own providers (IMDSv2 fetcher, container provider, environment,
profiles), built by botocore's ``create_credential_resolver`` so that botocore's settings
(``AWS_EC2_METADATA_SERVICE_ENDPOINT``, timeouts, attempts...) apply unchanged; a kind of one
provider that botocore builds from nothing but the session's settings (environment, container,
instance metadata) builds that one as botocore does, not the whole chain to pick it
(``tests/test_botocore_surface.py`` compares). Nothing here re-implements IMDS or container
HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

import botocore.credentials
import botocore.session
import botocore.utils

from ..config.inputs import EXPORTED_KEY_ID_VAR
from ..engine.forksafe import ForkSafeLock, renew_in_child
from ..engine.records import frozen
from ..errors import NoSourceCredentialsError, SourceCredentialsError
from ..redaction import register_secret
from .imds import with_imds_retries
from .private_session import client_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator

    from ..config.settings import Source

# Set by `env` and `exec` to the access key ID they exported: those are account A's
# credentials, never a valid source for assuming the chain again.
_ENV_CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
)
_TOOL_NAMES = ("assume-provider", "assume_provider")


class EnvironmentWithoutExportedCredentials(Mapping[str, str]):
    """A live view of ``os.environ`` that hides credentials this tool itself exported."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        self._environ = os.environ if environ is None else environ

    def _hidden(self, key: str) -> bool:
        if key not in _ENV_CREDENTIAL_VARS:
            return False
        exported = self._environ.get(EXPORTED_KEY_ID_VAR)
        return bool(exported) and self._environ.get("AWS_ACCESS_KEY_ID") == exported

    def __getitem__(self, key: str) -> str:
        if self._hidden(key):
            raise KeyError(key)
        return self._environ[key]

    def __iter__(self) -> Iterator[str]:
        return (key for key in self._environ if not self._hidden(key))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def runs_this_tool(command: Optional[str]) -> bool:
    """Whether a ``credential_process`` command line would run assume-provider itself."""
    return bool(command) and any(name in command for name in _TOOL_NAMES)  # type: ignore[operator]


@frozen
class SourceKey:
    """Everything that decides which source credentials a session would get."""

    source: Source
    profile: str
    config_file: Optional[str]
    credentials_file: Optional[str]
    environment_key_id: Optional[str]
    metadata_endpoint: Optional[str]
    container_uri: Optional[str]
    web_identity_token_file: Optional[str] = None
    web_identity_role_arn: Optional[str] = None
    # How a source that calls AWS (SSO, a profile's role) reaches it: proxies, CA bundle.
    client: Hashable = ()


def source_key(source: Source, session: botocore.session.Session) -> SourceKey:
    environ = EnvironmentWithoutExportedCredentials()
    return SourceKey(
        source=source,
        profile=session.get_config_variable("profile") or "default",
        config_file=session.get_config_variable("config_file"),
        credentials_file=session.get_config_variable("credentials_file"),
        environment_key_id=environ.get("AWS_ACCESS_KEY_ID"),
        metadata_endpoint=session.get_config_variable("ec2_metadata_service_endpoint"),
        container_uri=os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        or os.environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        web_identity_token_file=os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
        web_identity_role_arn=os.environ.get("AWS_ROLE_ARN"),
        client=client_settings(session, session.get_default_client_config()),
    )


def _describe(source: Source, session: botocore.session.Session) -> str:
    if source.kind == "instance-metadata":
        endpoint = session.get_config_variable("ec2_metadata_service_endpoint") or "default"
        return f"instance-metadata (instance profile via IMDSv2, endpoint {endpoint})"
    return str(source)


# Where botocore's chain keeps the IMDS fetcher it built (the botocore layer's
# ``private.imds_fetcher_of``): given one, the sources of kind ``auto`` and ``profile:NAME``
# wrap that fetcher in retries instead of building a second one, configured the same
# (``imds.imds_fetcher``), which costs a short-lived process an HTTP pool and its TLS context.
# For the type checker only: made at run time, this alias costs ~0.1 M instructions at import.
if TYPE_CHECKING:
    ImdsFetcherOf = Callable[[Any], Optional[Any]]


def _resolver_for(
    source: Source, session: botocore.session.Session, imds_fetcher_of: Optional[ImdsFetcherOf]
) -> tuple[Any, Any]:
    """A botocore CredentialResolver holding only the providers this source may use, and the
    session those providers read (the source profile's own session for ``profile:NAME``)."""
    if source.kind == "profile":
        # A separate session for that profile. Its resolver is built by botocore directly, so
        # this package's provider (registered through the session component) is not in it.
        profile_session = botocore.session.Session(profile=source.profile)
        for name in ("config_file", "credentials_file"):
            profile_session.set_config_variable(name, session.get_config_variable(name))
        try:
            profile_session.get_scoped_config()
        except botocore.exceptions.ProfileNotFound:
            from ..errors import ConfigError

            raise ConfigError(
                f"invalid source 'profile:{source.profile}': profile '{source.profile}' is not "
                "in the AWS config or credentials file"
            ) from None
        resolver = botocore.credentials.create_credential_resolver(profile_session)
        return _without_self(resolver, profile_session, imds_fetcher_of), profile_session
    # The three providers botocore builds without arguments from the session (the
    # environment, the container) or that are built here as create_credential_resolver
    # builds them (IMDS) need no resolver: building botocore's whole chain to pick one costs
    # a short-lived process about 5 M instructions (two HTTP pools among them).
    if source.kind == "environment":
        provider = botocore.credentials.EnvProvider(environ=EnvironmentWithoutExportedCredentials())
    elif source.kind == "instance-metadata":
        provider = with_imds_retries(session)
    elif source.kind == "container":
        provider = botocore.credentials.ContainerProvider()
    else:
        resolver = botocore.credentials.create_credential_resolver(session)
        if source.kind == "auto":
            return _without_self(resolver, session, imds_fetcher_of), session
        provider = resolver.get_provider(_METHOD_OF_KIND[source.kind])
    return botocore.credentials.CredentialResolver(providers=[provider]), session


# botocore's provider METHOD for each single-provider source.
_METHOD_OF_KIND = {
    "instance-metadata": "iam-role",
    "container": "container-role",
    "environment": "env",
    "web-identity": "assume-role-with-web-identity",
}


def _without_self(
    resolver: Any, session: botocore.session.Session, imds_fetcher_of: Optional[ImdsFetcherOf]
) -> Any:
    """botocore's chain minus anything that would run this tool again or reuse its exports."""
    providers = []
    for provider in resolver.providers:
        if provider.METHOD == "custom-process":
            command = (session.get_scoped_config() or {}).get("credential_process")
            if runs_this_tool(command):
                continue  # recursion guard: that process would ask us for credentials
        if provider.METHOD == "env":
            provider = botocore.credentials.EnvProvider(
                environ=EnvironmentWithoutExportedCredentials()
            )
        if provider.METHOD == "assume-provider":
            continue
        if provider.METHOD == "iam-role":
            reused = imds_fetcher_of(provider) if imds_fetcher_of is not None else None
            provider = with_imds_retries(session, reused)
        providers.append(provider)
    return botocore.credentials.CredentialResolver(providers=providers)


class SourceCredentials:
    """The source credentials of one SourceKey, loaded once and shared by every chain using it.

    botocore's own objects refresh themselves (the instance profile rotates them); ``reload``
    throws them away, for when STS says they expired before botocore noticed. Everything it
    builds on ``session`` (resolvers, and the clients some providers make) it builds under its
    lock; a session other threads also build on should be a ``private_session`` copy.
    """

    def __init__(
        self,
        source: Source,
        session: Union[botocore.session.Session, Callable[[], botocore.session.Session]],
        imds_fetcher_of: Optional[ImdsFetcherOf] = None,
    ) -> None:
        """``session``: the session to build on, or what makes it at the first load
        (``PrivateSessionRecipe.make``: a process whose chain never needs its source, its
        credentials coming from the disk cache, then never makes one). ``imds_fetcher_of``:
        see ``ImdsFetcherOf``."""
        self.source = source
        self._session_or_maker = session
        self._imds_fetcher_of = imds_fetcher_of
        self._lock = ForkSafeLock()
        self._credentials: Any = None
        renew_in_child(self)

    def _after_fork_in_child(self) -> None:
        # The parent may have been refreshing botocore's object (holding botocore's own lock)
        # at the fork: the child loads the source afresh when it first needs it.
        self._credentials = None

    def _session(self) -> botocore.session.Session:
        session = self._session_or_maker
        if isinstance(session, botocore.session.Session):
            return session
        made = session()  # the same session every time (PrivateSessionRecipe.make)
        self._session_or_maker = made
        return made

    def _load(self) -> Any:
        session = self._session()
        try:
            resolver, read_session = _resolver_for(self.source, session, self._imds_fetcher_of)
            credentials = resolver.load_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            if type(exc).__module__.startswith("assume_provider"):
                raise
            raise SourceCredentialsError(
                f"cannot load source credentials ({_describe(self.source, session)}): {exc}"
            ) from None
        if credentials is None:
            raise self._not_found(resolver, read_session)
        return credentials

    def _not_found(self, resolver: Any, read_session: Any) -> NoSourceCredentialsError:
        # Imported here: only a failure needs the explanation (its import is a cost every
        # short-lived process would pay; docs/performance.md, "Short-lived processes").
        from .attempts import explain, not_found_message

        methods = [provider.METHOD for provider in resolver.providers]
        # botocore drops the environment when a session's profile is named explicitly.
        env_skipped = (
            self.source.kind == "auto"
            and "env" not in methods
            and read_session.instance_variables().get("profile") is not None
        )
        attempts = explain(methods, read_session, env_skipped_for_profile=env_skipped)
        return NoSourceCredentialsError(
            not_found_message(self.source, attempts),
            source=str(self.source),
            tried=tuple((attempt.place, attempt.reason) for attempt in attempts),
        )

    def get(self) -> tuple[Any, str]:
        """The current frozen source credentials and the method botocore found them with."""
        with self._lock:
            if self._credentials is None:
                self._credentials = self._load()
            credentials = self._credentials
        try:
            frozen = credentials.get_frozen_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            raise SourceCredentialsError(
                f"cannot refresh source credentials ({_describe(self.source, self._session())}): "
                f"{exc}"
            ) from None
        register_secret(frozen.secret_key, frozen.token)
        return frozen, credentials.method

    def reload(self) -> None:
        with self._lock:
            self._credentials = None
