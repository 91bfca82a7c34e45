"""Resetting the process-wide state of the provider between in-process tests."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from assume_provider.botocore.registration import uninstall
from assume_provider.engine import shared


@pytest.fixture
def fresh_provider_state() -> Iterator[None]:
    """No install(), no shared credentials, no boto3 default session, before and after."""

    def reset() -> None:
        uninstall()
        shared.clear()
        boto3.DEFAULT_SESSION = None

    reset()
    yield
    reset()


def moto_role_of(access_key_id: str | None) -> str | None:
    """The role ARN moto issued ``access_key_id`` for (the in-process moto server's state)."""
    from moto.sts.models import sts_backends

    for account in list(sts_backends.keys()):
        backend = sts_backends[account]["global"]
        for assumed in backend.assumed_roles:
            if assumed.access_key_id == access_key_id:
                return str(assumed.role_arn)
    return None
