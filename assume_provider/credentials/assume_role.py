"""One AssumeRole call and STS's answer: the request sent with the caller's credentials, the
answer validated (a malformed one is never cached), every failure an AssumeRoleError that
names the hop and says whether retrying, or another region, may help."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import botocore.exceptions
import botocore.utils

from ..engine.records import frozen
from ..engine.refresh import TemporaryCredentials
from ..errors import AssumeRoleError
from ..redaction import redact_text, register_secret

# STS answers that no retry can fix: the engine raises them at once instead of backing off.
NON_RECOVERABLE_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ValidationError",
        "MalformedPolicyDocument",
        "PackedPolicyTooLarge",
        "RegionDisabledException",
        "InvalidClientTokenId",
        "InvalidIdentityToken",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
# Credentials that have expired (RequestExpired is a skewed clock, which a refresh cannot fix).
EXPIRED_TOKEN_CODES = frozenset({"ExpiredToken", "ExpiredTokenException"})


# What another region can fix (INTERFACE.md, "Fallback regions"): throttling, a 5xx, a
# dropped or timed-out connection; never an answer about the request or the caller itself.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)


# A connection that could not be made, was dropped or timed out (botocore's own classes).
_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.HTTPClientError,
)


if TYPE_CHECKING:  # a Protocol is for the type checker only (its class costs each process)
    from typing import Protocol

    from .hops import Hop

    class StsClientFactory(Protocol):
        """Makes an STS client signed with the given credentials (access key, secret, token),
        in the pinned STS region or, for a fallback, in ``region``."""

        def __call__(
            self,
            access_key: str,
            secret_key: str,
            token: Optional[str],
            region: Optional[str] = None,
        ) -> Any: ...


@frozen
class HopResult:
    hop: Hop
    credentials: TemporaryCredentials
    assumed_role_arn: str
    signed_by_key_id: str
    fallback_region: Optional[str] = None  # the fallback region that served it, if one did


def assume_in(
    region: Optional[str],
    hop: Hop,
    caller: TemporaryCredentials,
    session_name: str,
    make_sts_client: StsClientFactory,
) -> HopResult:
    """One AssumeRole call, in the pinned STS region (None) or in ``region``."""
    key, secret, token = caller.access_key_id, caller.secret_access_key, caller.session_token
    if region is None:
        client = make_sts_client(key, secret, token)
    else:
        client = make_sts_client(key, secret, token, region=region)
    params = hop.request(session_name)
    try:
        response = client.assume_role(**params)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code") or "Unknown"
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
        raise _hop_error(
            hop,
            f"AssumeRole failed on hop {hop.index} ({hop.role_arn}), called as key "
            f"{caller.access_key_id}: {code}: {_quoted(str(error.get('Message', '')).strip())}",
            code=code,
            recoverable=code not in NON_RECOVERABLE_CODES,
            transient=code in THROTTLING_CODES or int(status) >= 500,
        ) from None
    except Exception as exc:  # noqa: BLE001 - botocore's parser raises plain Exceptions too
        # Network failures, timeouts and unparseable responses: retrying may help. The
        # parser's errors quote the raw body, which may hold (part of) a secret.
        detail = str(exc)
        if not isinstance(exc, botocore.exceptions.BotoCoreError):
            detail = f"unreadable response from STS ({type(exc).__name__}: {detail})"
        raise _hop_error(
            hop,
            f"AssumeRole failed on hop {hop.index} ({hop.role_arn}): {_quoted(detail)}",
            transient=isinstance(exc, _CONNECTION_ERRORS),
        ) from None
    credentials = _credentials_from(response, hop)
    assumed = (response.get("AssumedRoleUser") or {}).get("Arn") or hop.role_arn
    return HopResult(hop, credentials, str(assumed), caller.access_key_id, region)


def _hop_error(
    hop: Hop,
    message: str,
    *,
    code: Optional[str] = None,
    recoverable: bool = True,
    transient: bool = False,
) -> AssumeRoleError:
    """A failure of one hop; without an AWS error code it is a network or response problem,
    which a later retry may not meet again."""
    return AssumeRoleError(
        message,
        role_arn=hop.role_arn,
        hop=hop.index,
        error_code=code,
        recoverable=recoverable,
        transient=transient,
    )


# A hostile or broken endpoint's text (an error message, a body quoted by botocore's
# parser) is quoted at most this long: a 5 MB body must not become a 5 MB exception.
MAX_QUOTED = 500


def _quoted(text: str) -> str:
    """Endpoint-supplied text, secrets masked, cut to ``MAX_QUOTED`` characters."""
    text = redact_text(text)
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "... (truncated)"


def _credentials_from(response: Any, hop: Hop) -> TemporaryCredentials:
    """Validate STS's answer: a malformed one must never be cached."""
    raw = response.get("Credentials") if isinstance(response, dict) else None
    if not isinstance(raw, dict):
        raw = {}
    fields = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
    missing = [name for name in fields if not raw.get(name)]
    if missing or not all(isinstance(raw[name], str) for name in fields[:3]):
        raise _hop_error(
            hop,
            f"AssumeRole on hop {hop.index} ({hop.role_arn}) returned malformed credentials "
            f"(missing or invalid: {', '.join(missing) or 'field types'})",
        )
    register_secret(raw["SecretAccessKey"], raw["SessionToken"])
    expiration = raw["Expiration"]
    try:
        if isinstance(expiration, str):
            # The AWS CLI makes its sessions' parsers keep timestamps as text.
            expiration = botocore.utils.parse_timestamp(expiration)
        expires_at = float(expiration.timestamp())
    except (AttributeError, TypeError, ValueError, OverflowError, OSError):
        raise _hop_error(
            hop, f"AssumeRole on hop {hop.index} ({hop.role_arn}) returned an unreadable Expiration"
        ) from None
    return TemporaryCredentials(
        access_key_id=raw["AccessKeyId"],
        secret_access_key=raw["SecretAccessKey"],
        session_token=raw["SessionToken"],
        expiration=expires_at,
    )
