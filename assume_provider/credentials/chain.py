"""The chain: AssumeRole hop by hop, each hop signed with the previous hop's credentials, a
hop that STS's region cannot serve sent to the fallback regions.

The plan of the hops is ``hops.py``; one AssumeRole call and its answer, ``assume_role.py``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

from ..errors import AssumeRoleError
from .assume_role import HopResult, assume_in

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..engine.refresh import TemporaryCredentials
    from .assume_role import StsClientFactory
    from .hops import Hop

__all__ = ["assume_chain", "assume_hop"]

logger = logging.getLogger(__name__)


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
        return assume_in(None, hop, caller, session_name, make_sts_client)
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
            result = assume_in(region, hop, caller, session_name, make_sts_client)
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


def _fallback_may_help(exc: AssumeRoleError) -> bool:
    return exc.transient


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
