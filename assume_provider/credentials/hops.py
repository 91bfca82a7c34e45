"""The chain's plan: the AssumeRole requests of each hop, before anything is sent.

Durations capped where AWS's role-chaining limit applies, the external ID on the last hop,
the session parameters on the hop AWS wants each on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from ..engine.forksafe import ForkSafeLock
from ..engine.records import frozen

if TYPE_CHECKING:
    from collections.abc import Sequence

# The chain's logger, as before the plan had its own module: users may filter on its name.
logger = logging.getLogger("assume_provider.credentials.chain")

# AWS caps a session assumed with role-session credentials (role chaining) at one hour and
# rejects a longer DurationSeconds with a cryptic ValidationError.
ROLE_CHAINING_LIMIT = 3600


@frozen
class SessionParameters:
    """INTERFACE.md's session parameters as the chain sends them."""

    source_identity: Optional[str] = None  # first hop only: it then persists through the chain
    tags: tuple[tuple[str, str], ...] = ()  # last hop only, like the rest
    transitive_tag_keys: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    policy: Optional[str] = None


NO_PARAMETERS = SessionParameters()


@frozen
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
