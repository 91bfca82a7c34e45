"""The ExpiredToken retry decision on its own: which answers are retried, and what it costs.

The handler gets what botocore's ``needs-retry`` event passes; the engine is real, its
source a counting fake, so "refreshed" and "not refreshed" are counts.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
from refresh_fakes import FakeClock

from assume_provider.botocore import private
from assume_provider.botocore.credentials import EngineCredentials, retry_once_after_expired_token
from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials


class Source:
    def __init__(self, clock: FakeClock, prefix: str) -> None:
        self.clock, self.prefix, self.calls = clock, prefix, 0

    def __call__(self) -> TemporaryCredentials:
        self.calls += 1
        return TemporaryCredentials(
            f"{self.prefix}{self.calls}", "secret-value-xxxx", "token", self.clock.now + 3600
        )


def make(prefix: str) -> tuple[EngineCredentials, Source]:
    clock = FakeClock()
    source = Source(clock, prefix)
    engine = RefreshingCredentials(
        source, clock=clock, monotonic=clock.monotonic, random=lambda: 0.0
    )
    return EngineCredentials(engine, "assume-provider"), source


def needs_retry(
    key: Optional[str], code: str = "ExpiredTokenException", attempts: int = 1
) -> Optional[float]:
    parsed = {"Error": {"Code": code, "Message": "expired"}}
    context = {} if key is None else {private.SIGNING_KEY_CONTEXT_KEY: key}
    request_dict: dict[str, Any] = {"context": context}
    return retry_once_after_expired_token(
        response=(object(), parsed), attempts=attempts, request_dict=request_dict
    )


def test_the_current_key_is_invalidated_and_the_request_retried() -> None:
    credentials, source = make("AKIDCURRENT")
    key = credentials.get_frozen_credentials().access_key
    assert needs_retry(key) == 0.0
    assert credentials.get_frozen_credentials().access_key == "AKIDCURRENT2"
    assert source.calls == 2


def test_a_replaced_key_is_retried_without_another_refresh() -> None:
    credentials, source = make("AKIDREPLACED")
    old = credentials.get_frozen_credentials().access_key
    credentials.invalidate(old)
    credentials.get_frozen_credentials()  # the refresh another request caused
    assert needs_retry(old) == 0.0
    assert needs_retry(old) == 0.0
    assert credentials.get_frozen_credentials().access_key == "AKIDREPLACED2"
    assert source.calls == 2


@pytest.mark.parametrize(
    ("key", "code", "attempts"),
    [
        ("AKIDNOTOURS", "ExpiredTokenException", 1),  # a client's own credentials
        (None, "ExpiredTokenException", 1),  # unsigned, or not SigV4
        ("AKIDDECLINED1", "ExpiredTokenException", 2),  # retried once already
        ("AKIDDECLINED1", "RequestExpired", 1),  # clock skew, not expiry
        ("AKIDDECLINED1", "AccessDenied", 1),
    ],
)
def test_declined(key: Optional[str], code: str, attempts: int) -> None:
    credentials, source = make("AKIDDECLINED")
    credentials.get_frozen_credentials()
    assert needs_retry(key, code, attempts) is None
    credentials.get_frozen_credentials()
    assert source.calls == 1  # nothing invalidated


def test_no_response_is_not_ours_to_retry() -> None:
    assert retry_once_after_expired_token(response=None, attempts=1, request_dict={}) is None
