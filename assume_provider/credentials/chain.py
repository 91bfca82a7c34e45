"""The chain: AssumeRole hop by hop, each hop signed with the previous hop's credentials."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import botocore.exceptions
import botocore.utils

from ..engine.forksafe import ForkSafeLock
from ..engine.refresh import TemporaryCredentials
from ..errors import AssumeRoleError
from ..redaction import redact_text, register_secret

logger = logging.getLogger(__name__)

# AWS caps a session assumed with role-session credentials (role chaining) at one hour and
# rejects a longer DurationSeconds with a cryptic ValidationError.
ROLE_CHAINING_LIMIT = 3600

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


class StsClientFactory(Protocol):
    """Makes an STS client signed with the given credentials (access key, secret, token), in
    the pinned STS region or, for a fallback, in ``region``."""

    def __call__(
        self, access_key: str, secret_key: str, token: Optional[str], region: Optional[str] = None
    ) -> Any: ...


@dataclass(frozen=True)
class SessionParameters:
    """INTERFACE.md's session parameters as the chain sends them."""

    source_identity: Optional[str] = None  # first hop only: it then persists through the chain
    tags: tuple[tuple[str, str], ...] = ()  # last hop only, like the rest
    transitive_tag_keys: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    policy: Optional[str] = None


NO_PARAMETERS = SessionParameters()


@dataclass(frozen=True)
class Hop:
    """One AssumeRole of the chain, as it will be sent."""

    index: int  # 1-based, as users count hops
    role_arn: str
    duration_seconds: int
    external_id: Optional[str]
    source_identity: Optional[str] = None
    tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    policy: Optional[str] = None

    def request(self, session_name: str) -> dict[str, Any]:
        """The AssumeRole parameters of this hop."""
        params: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": self.duration_seconds,
        }
        if self.external_id is not None:
            params["ExternalId"] = self.external_id
        if self.source_identity is not None:
            params["SourceIdentity"] = self.source_identity
        if self.tags:
            params["Tags"] = [{"Key": key, "Value": value} for key, value in self.tags]
        if self.transitive_tag_keys:
            params["TransitiveTagKeys"] = list(self.transitive_tag_keys)
        if self.policy_arns:
            params["PolicyArns"] = [{"arn": arn} for arn in self.policy_arns]
        if self.policy is not None:
            params["Policy"] = self.policy
        return params


@dataclass(frozen=True)
class HopResult:
    hop: Hop
    credentials: TemporaryCredentials
    assumed_role_arn: str
    signed_by_key_id: str
    fallback_region: Optional[str] = None  # the fallback region that served it, if one did


def plan_hops(
    role_arns: Sequence[str],
    *,
    duration_seconds: int,
    external_id: Optional[str],
    source_is_role_session: bool,
    parameters: SessionParameters = NO_PARAMETERS,
) -> list[Hop]:
    """The hops to send, with durations capped where AWS's role-chaining limit applies.

    SourceIdentity goes on the first hop only (AWS keeps it through the chain and refuses a
    change); tags, transitive tag keys and session policies on the last hop only.
    """
    hops = []
    for position, role_arn in enumerate(role_arns):
        chained = position > 0 or source_is_role_session
        duration = duration_seconds
        if chained and duration > ROLE_CHAINING_LIMIT:
            duration = ROLE_CHAINING_LIMIT
        last = position == len(role_arns) - 1
        hops.append(
            Hop(
                position + 1,
                role_arn,
                duration,
                external_id if last else None,
                source_identity=parameters.source_identity if position == 0 else None,
                tags=parameters.tags if last else (),
                transitive_tag_keys=parameters.transitive_tag_keys if last else (),
                policy_arns=parameters.policy_arns if last else (),
                policy=parameters.policy if last else None,
            )
        )
    capped = tuple(hop.index for hop in hops if hop.duration_seconds < duration_seconds)
    if capped:
        logger.log(
            _capped_level((tuple(role_arns), duration_seconds, capped)),
            "duration_seconds %d capped at %d for hop(s) %s: AWS limits role chaining to 1 hour",
            duration_seconds,
            ROLE_CHAINING_LIMIT,
            ", ".join(map(str, capped)),
        )
    return hops


# The capped chains already warned about in this process. The user asked for a duration they
# will not get: say so once (a WARNING), not on every hourly refresh of a long-running process.
_warned_caps: set[tuple[tuple[str, ...], int, tuple[int, ...]]] = set()
_warned_caps_lock = ForkSafeLock()


def _capped_level(cap: tuple[tuple[str, ...], int, tuple[int, ...]]) -> int:
    """WARNING the first time this process caps this chain at this duration, DEBUG after."""
    with _warned_caps_lock:
        if cap in _warned_caps:
            return logging.DEBUG
        _warned_caps.add(cap)
    return logging.WARNING


def assume_hop(
    hop: Hop,
    caller: TemporaryCredentials,
    *,
    session_name: str,
    make_sts_client: StsClientFactory,
    fallback_regions: Sequence[str] = (),
) -> HopResult:
    """One hop; every failure becomes an AssumeRoleError naming the hop.

    When the STS region fails with an error retrying can fix (throttling, 5xx, a dropped or
    timed-out connection) once the client's own retries are spent, the hop is sent to each
    of ``fallback_regions`` in turn, signed for that region; never after AccessDenied or
    another error no retry fixes, nor after an expired caller (the chain reloads the source).
    """
    try:
        return _assume_in(None, hop, caller, session_name, make_sts_client)
    except AssumeRoleError as exc:
        if not fallback_regions or not _fallback_may_help(exc):
            raise
        failure = exc
    tried = []
    for region in fallback_regions:
        logger.warning(
            "AssumeRole on hop %d (%s) failed in the STS region (%s); trying fallback region %s",
            hop.index,
            hop.role_arn,
            failure.error_code or "no AWS error code",
            region,
        )
        tried.append(region)
        try:
            result = _assume_in(region, hop, caller, session_name, make_sts_client)
        except AssumeRoleError as exc:
            if not _fallback_may_help(exc):
                raise
            failure = exc
            continue
        logger.warning("hop %d (%s) served by fallback region %s", hop.index, hop.role_arn, region)
        return result
    raise AssumeRoleError(
        f"{failure.message} (fallback regions tried: {', '.join(tried)})",
        role_arn=hop.role_arn,
        hop=hop.index,
        error_code=failure.error_code,
        recoverable=failure.recoverable,
        transient=failure.transient,
    )


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


def _fallback_may_help(exc: AssumeRoleError) -> bool:
    return exc.transient


def _assume_in(
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


def assume_chain(
    hops: Sequence[Hop],
    source: TemporaryCredentials,
    *,
    session_name: str,
    make_sts_client: StsClientFactory,
    on_hop: Optional[Callable[[HopResult], None]] = None,
    fallback_regions: Sequence[str] = (),
) -> list[HopResult]:
    """Every hop in order, each signed by the previous hop's credentials."""
    results: list[HopResult] = []
    caller = source
    for hop in hops:
        result = assume_hop(
            hop,
            caller,
            session_name=session_name,
            make_sts_client=make_sts_client,
            fallback_regions=fallback_regions,
        )
        if on_hop is not None:
            on_hop(result)
        results.append(result)
        caller = result.credentials
    return results
