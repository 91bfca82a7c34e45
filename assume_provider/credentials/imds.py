"""Instance metadata (IMDSv2) as a source: botocore's own fetcher, asked again with backoff.

Its own module so that both the source (``sources.py``) and the explanation of a source that
found nothing (``attempts.py``) read the same attempt count without importing each other.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import botocore.credentials
import botocore.utils

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

# A transient IMDS failure (a 5xx, a refused or timed-out connection) is retried: at least
# IMDS_MIN_ATTEMPTS attempts in all, counting botocore's own metadata_service_num_attempts per
# attempt here, with these pauses between them (a few seconds at most in all). botocore's
# container fetcher already makes 3 attempts 1 s apart, so the container source needs nothing.
IMDS_MIN_ATTEMPTS = 3
IMDS_BACKOFF_SECONDS = (0.25, 0.75, 1.5)


class RetryingInstanceMetadataFetcher:
    """botocore's InstanceMetadataFetcher, asked again with backoff when it returns nothing.

    botocore's fetcher answers ``{}`` for every failure (an unreachable IMDS, a 5xx, no role
    attached); asking again costs a few seconds on a host without IMDS, once per process,
    and saves an application from one hiccup of a busy host's IMDS.
    """

    def __init__(
        self, fetcher: Any, attempts: int, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._fetcher = fetcher
        self.attempts = attempts
        self._sleep = sleep

    def retrieve_iam_role_credentials(self) -> Any:
        for attempt in range(self.attempts):
            credentials = self._fetcher.retrieve_iam_role_credentials()
            if credentials:
                if attempt:
                    logger.info("instance metadata answered on attempt %d", attempt + 1)
                return credentials
            if attempt + 1 < self.attempts:
                pause = IMDS_BACKOFF_SECONDS[min(attempt, len(IMDS_BACKOFF_SECONDS) - 1)]
                logger.debug("no credentials from instance metadata; again in %.2f s", pause)
                self._sleep(pause)
        return {}


def imds_attempts(session: Any) -> int:
    """How many times to ask botocore's fetcher so that IMDS gets IMDS_MIN_ATTEMPTS in all."""
    try:
        inner = max(1, int(session.get_config_variable("metadata_service_num_attempts") or 1))
    except (TypeError, ValueError):
        inner = 1
    return max(1, -(-IMDS_MIN_ATTEMPTS // inner))


# botocore's create_credential_resolver gives its IMDS fetcher this refresh window (its
# private _DEFAULT_ADVISORY_REFRESH_TIMEOUT; tests/test_botocore_surface.py compares).
IMDS_REFRESH_WINDOW = 15 * 60


def imds_fetcher(session: Any) -> Any:
    """botocore's InstanceMetadataFetcher, configured as create_credential_resolver does."""
    return botocore.utils.InstanceMetadataFetcher(
        timeout=session.get_config_variable("metadata_service_timeout"),
        num_attempts=session.get_config_variable("metadata_service_num_attempts"),
        user_agent=session.user_agent(),
        config={
            "ec2_metadata_service_endpoint": session.get_config_variable(
                "ec2_metadata_service_endpoint"
            ),
            "ec2_metadata_service_endpoint_mode": botocore.credentials.resolve_imds_endpoint_mode(
                session
            ),
            "ec2_credential_refresh_window": IMDS_REFRESH_WINDOW,
            "ec2_metadata_v1_disabled": session.get_config_variable("ec2_metadata_v1_disabled"),
        },
    )


def with_imds_retries(session: Any, fetcher: Any = None) -> Any:
    """botocore's IMDS provider around its own fetcher, asked again with backoff: ``fetcher``
    when given (the one botocore's chain built for ``session``), else one built as it is."""
    if fetcher is None:
        fetcher = imds_fetcher(session)
    retrying = RetryingInstanceMetadataFetcher(fetcher, imds_attempts(session))
    return botocore.credentials.InstanceMetadataProvider(iam_role_fetcher=retrying)
