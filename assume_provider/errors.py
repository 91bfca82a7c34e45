"""Errors a user can act on: each says which setting or hop failed, and why."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ProfileNotFound


class AssumeProviderError(BotoCoreError):  # type: ignore[misc]
    """Base class: a failure of this package, with a message that is already one clear line."""

    fmt = "{message}"

    def __init__(self, message: str) -> None:
        super().__init__(message=message)
        self.message = message


class ConfigError(AssumeProviderError):
    """An invalid setting, raised before any network call.

    The message names the setting, where its value came from and what is allowed.
    """


class MissingProfileError(ConfigError, ProfileNotFound):  # type: ignore[misc]
    """A named profile that is in neither the config nor the credentials file.

    Also botocore's ``ProfileNotFound``, which code around botocore catches: the AWS CLI v1
    reaches into the credential chain at every command and skips that for a profile not
    found, so that ``aws --profile NEW configure set ...`` can create it.
    """

    def __init__(self, message: str, profile: str = "") -> None:
        super().__init__(message)
        self.kwargs["profile"] = profile  # botocore's field; kept by pickling (the kwargs)


class SourceCredentialsError(AssumeProviderError):
    """The source credentials (instance profile, environment, profile...) could not be loaded."""


class NoSourceCredentialsError(SourceCredentialsError):
    """Every place the source looks at had no credentials.

    ``tried`` holds (place, reason) pairs in botocore's order; the message says the same in
    one line and names the setting that chooses another source.
    """

    def __init__(self, message: str, *, source: str, tried: tuple[tuple[str, str], ...]) -> None:
        super().__init__(message)
        self.source = source
        self.tried = tried


class AssumeRoleError(AssumeProviderError):
    """STS refused or failed one hop of the chain.

    ``recoverable`` is False for errors that retrying cannot fix (AccessDenied,
    ValidationError...), so the refresh engine raises them at once instead of backing off.
    ``transient`` is True only for what another region may not meet (throttling, a 5xx, a
    dropped or timed-out connection): the STS fallback regions are tried only then.
    """

    def __init__(
        self,
        message: str,
        *,
        role_arn: str,
        hop: int,
        error_code: str | None,
        recoverable: bool,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.role_arn = role_arn
        self.hop = hop
        self.error_code = error_code
        self.recoverable = recoverable
        self.transient = transient
