"""EngineCredentials as botocore sees it: a RefreshableCredentials whose every method works.

botocore (and awscli, boto3, s3transfer, user code) may call any public or private method of
RefreshableCredentials on the object a session resolves. Each must work, answer from the
engine, and never show a secret in a repr.
"""

from __future__ import annotations

import datetime
import gc
import os
import threading
from typing import Any, Optional

import boto3
import botocore.credentials
import pytest
from fake_time import FakeClock
from refresh_fakes import T0
from refresh_fakes import FakeClock as EngineClock
from testbed import TestBed

import assume_provider
from assume_provider.botocore import issued_keys
from assume_provider.botocore.credentials import EngineCredentials
from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials

RefreshableCredentials = botocore.credentials.RefreshableCredentials


class Source:
    """Credentials living ``lifetime`` seconds (None: never expiring), numbered by call."""

    def __init__(self, clock: EngineClock, lifetime: Optional[float], prefix: str) -> None:
        self.prefix = prefix
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.error: Optional[Exception] = None

    def __call__(self) -> TemporaryCredentials:
        self.calls += 1
        if self.error is not None:
            raise self.error
        expiration = None if self.lifetime is None else self.clock.now + self.lifetime
        n = self.calls
        return TemporaryCredentials(
            f"{self.prefix}{n}", f"SECRET-{n}-xxxxxxxx", f"TOKEN-{n}", expiration
        )


def make(
    lifetime: Optional[float] = 3600.0, prefix: str = "AKID"
) -> tuple[EngineCredentials, Source, EngineClock]:
    clock = EngineClock()
    source = Source(clock, lifetime, prefix)
    engine = RefreshingCredentials(
        source, clock=clock, monotonic=clock.monotonic, random=lambda: 0.0
    )

    def now() -> datetime.datetime:
        return datetime.datetime.fromtimestamp(clock.now, datetime.timezone.utc)

    credentials = EngineCredentials(engine, "assume-provider", "111111111111", time_fetcher=now)
    return credentials, source, clock


def test_it_is_a_refreshable_credentials_whose_init_ran() -> None:
    credentials, source, _ = make()
    assert isinstance(credentials, RefreshableCredentials)
    # What RefreshableCredentials.__init__ sets, present before anything was fetched.
    for name in ("_refresh_lock", "_time_fetcher", "_refresh_using", "_frozen_credentials"):
        assert hasattr(credentials, name), name
    assert credentials._advisory_refresh_timeout > credentials._mandatory_refresh_timeout
    assert credentials.method == "assume-provider"
    assert source.calls == 0  # building it fetches nothing


def test_before_the_first_fetch_botocore_is_told_a_refresh_is_needed_without_one() -> None:
    credentials, source, _ = make()
    assert credentials.refresh_needed() is True
    assert credentials._is_expired() is True
    assert credentials._seconds_remaining() == 0.0
    assert credentials._expiry_time is None
    assert credentials.account_id == "111111111111"  # from the role ARN, no fetch
    assert credentials.get_deferred_property("account_id")() == "111111111111"
    assert source.calls == 0


def test_botocore_refresh_methods_fetch_through_the_engine_and_agree_with_it() -> None:
    credentials, source, clock = make()
    credentials._refresh()
    assert source.calls == 1
    frozen = credentials.get_frozen_credentials()
    assert frozen.access_key == "AKID1" and frozen.account_id == "111111111111"
    assert credentials._frozen_credentials == frozen
    assert credentials._expiry_time == datetime.datetime.fromtimestamp(
        T0 + 3600, datetime.timezone.utc
    )
    assert credentials._seconds_remaining() == 3600.0
    assert credentials.refresh_needed() is False  # botocore's own 15-minute question
    assert credentials.refresh_needed(refresh_in=2 * 3600) is True
    assert credentials._is_expired() is False

    clock.now += 2 * 3600  # long after expiry (a suspended laptop)
    assert credentials._is_expired() is True
    credentials._protected_refresh(is_mandatory=True)
    assert source.calls == 2
    assert credentials.get_frozen_credentials().access_key == "AKID2"
    assert credentials._is_expired() is False
    assert credentials._expiry_time > datetime.datetime.fromtimestamp(
        clock.now, datetime.timezone.utc
    )

    clock.now += 2 * 3600
    frozen = credentials.get_frozen_credentials()
    assert frozen.access_key == "AKID3" and source.calls == 3
    assert (credentials.access_key, credentials.secret_key, credentials.token) == (
        "AKID3",
        "SECRET-3-xxxxxxxx",
        "TOKEN-3",
    )
    assert credentials.issued_keys == ("AKID3", "AKID2", "AKID1")


def test_a_failed_advisory_refresh_keeps_the_credentials_and_a_mandatory_one_raises() -> None:
    credentials, source, clock = make()
    credentials.get_frozen_credentials()
    source.error = AccessDeniedError("denied")
    credentials.invalidate()
    credentials._protected_refresh(is_mandatory=False)  # botocore: advisory failures pass
    assert source.calls == 2
    clock.now += 10  # past the engine's memory of that error
    credentials.invalidate()
    with pytest.raises(AccessDeniedError):
        credentials._protected_refresh(is_mandatory=True)


class AccessDeniedError(Exception):
    recoverable = False


def test_botocore_base_implementations_work_on_it_too() -> None:
    """Should botocore rename a private method this class overrides, the inherited one runs:
    it must work, reaching the engine through ``refresh_using``."""
    credentials, source, clock = make()
    RefreshableCredentials._protected_refresh(credentials, is_mandatory=True)
    assert source.calls == 1
    assert RefreshableCredentials.get_frozen_credentials(credentials).access_key == "AKID1"
    assert RefreshableCredentials.access_key.fget(credentials) == "AKID1"
    assert RefreshableCredentials._seconds_remaining(credentials) == 3600.0
    clock.now += 2 * 3600
    RefreshableCredentials._refresh(credentials)
    assert source.calls == 2
    assert credentials._frozen_credentials.access_key == "AKID2"
    assert credentials.get_frozen_credentials().access_key == "AKID2"
    metadata = credentials._refresh_using()
    credentials._set_from_data(metadata)  # botocore's parser accepts the metadata form
    credentials._publish_refresh()
    assert credentials._frozen_credentials.access_key == "AKID2"


def test_credentials_that_never_expire() -> None:
    credentials, _, _ = make(lifetime=None)
    credentials.get_frozen_credentials()
    assert credentials._expiry_time is None
    assert credentials.refresh_needed() is False
    assert credentials._seconds_remaining() == float("inf")


def test_a_refresh_by_the_engine_alone_is_seen_without_a_fetch() -> None:
    """Another consumer of the engine (a prefetch) refreshed it: botocore's fields follow
    ``current`` without contacting the source again."""
    credentials, source, clock = make()
    credentials.get_frozen_credentials()
    clock.now += 2 * 3600
    credentials.engine.get()  # not through the credentials object
    assert source.calls == 2
    assert credentials.refresh_needed() is False
    assert credentials._frozen_credentials.access_key == "AKID2"
    assert source.calls == 2
    assert credentials.issued_keys[0] == "AKID2"


def test_repr_and_vars_repr_hold_no_secret() -> None:
    credentials, _, _ = make()
    credentials.get_frozen_credentials()
    assert repr(credentials) == "<EngineCredentials method='assume-provider' access_key_id='AKID1'>"
    assert "SECRET" not in repr(credentials._issued) and "TOKEN" not in repr(credentials._issued)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_botocore_refresh_lock_held_at_fork_is_free_in_the_child() -> None:
    credentials, _, _ = make()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with credentials._refresh_lock:
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(60)
    try:
        pid = os.fork()
        if pid == 0:
            ok = credentials._refresh_lock.acquire(timeout=2)
            ok = ok and credentials.get_frozen_credentials().access_key == "AKID1"
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        holder.join(60)
    assert os.waitstatus_to_exitcode(status) == 0


def test_issued_keys_are_bounded_and_name_their_engine() -> None:
    first, first_source, _ = make(prefix="AKIDFIRST")
    second, _, _ = make(prefix="AKIDSECOND")
    for _ in range(issued_keys.HISTORY + 3):
        first.get_frozen_credentials()
        first.invalidate()
    second_key = second.get_frozen_credentials().access_key
    assert len(first.issued_keys) == issued_keys.HISTORY
    assert first.issued_keys[0] == f"AKIDFIRST{first_source.calls}"
    assert "AKIDFIRST1" not in first.issued_keys  # the oldest went
    assert issued_keys.engine_of("AKIDFIRST1") is None
    assert issued_keys.engine_of(first.issued_keys[-1]) is first.engine
    assert issued_keys.engine_of(second_key) is second.engine
    assert issued_keys.engine_of("AKIDNEVERISSUED") is None


def test_issued_keys_go_with_their_credentials_object() -> None:
    credentials, _, _ = make()
    credentials.get_frozen_credentials()
    marker = "AKIDGONE-" + str(id(credentials))
    credentials._issued.add(marker)
    assert issued_keys.engine_of(marker) is credentials.engine
    del credentials
    gc.collect()
    assert issued_keys.engine_of(marker) is None


# -- through the provider, against the test bed, in fake time -------------------------------


@pytest.mark.usefixtures("fresh_provider_state")
def test_a_sessions_credentials_answer_botocores_refresh_methods_in_fake_time(
    aws_env: TestBed, fake_clock: FakeClock
) -> None:
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    session = boto3.Session()
    credentials: Any = session.get_credentials()
    assert isinstance(credentials, EngineCredentials)
    assert credentials.refresh_needed() is True
    assert aws_env.proxy.count(action="AssumeRole") == 0

    credentials._refresh()
    first = credentials.get_frozen_credentials()
    assert aws_env.proxy.count(action="AssumeRole") == 1
    assert not credentials.refresh_needed() and not credentials._is_expired()
    assert 3000 < credentials._seconds_remaining() <= 3600

    fake_clock.advance(2 * 3600)
    assert credentials._is_expired()
    credentials._protected_refresh(is_mandatory=True)
    assert aws_env.proxy.count(action="AssumeRole") == 2
    second = credentials.get_frozen_credentials()
    assert second.access_key != first.access_key
    assert credentials._expiry_time > fake_clock.utc().replace(tzinfo=datetime.timezone.utc)

    fake_clock.advance(2 * 3600)
    third = credentials.get_frozen_credentials()
    assert third.access_key not in (first.access_key, second.access_key)
    assert aws_env.proxy.count(action="AssumeRole") == 3
    assert session.client("sts").get_caller_identity()["Account"] == aws_env.world.account_a
    assert aws_env.proxy.calls(action="GetCallerIdentity")[-1].access_key_id == third.access_key
