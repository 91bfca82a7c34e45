"""Review of issue 19 (review19b): ``@frozen`` classes are read by the standard library as
the frozen dataclasses they stand in for.

``records.frozen`` no longer runs dataclasses' class processing, yet ``is_dataclass`` answers
True for its classes; the standard library then reads what every dataclass has. A refresh
listener (public API) that pretty-prints the event it receives is the user-visible case.
"""

from __future__ import annotations

import pprint

import boto3
import pytest
from testbed import TestBed

import assume_provider
from assume_provider.engine.events import RefreshEvent

pytestmark = pytest.mark.usefixtures("fresh_provider_state")


def test_a_listener_can_pretty_print_the_refresh_event(aws_env: TestBed) -> None:
    world = aws_env.world
    received: list[RefreshEvent] = []
    assume_provider.add_refresh_listener(received.append)
    try:
        session = boto3.Session()
        assume_provider.register(
            session, role_arn=world.target_role_arn, external_id=world.external_id
        )
        session.client("sts").get_caller_identity()
    finally:
        assume_provider.remove_refresh_listener(received.append)
    (event,) = received
    printed = pprint.pformat(event, width=40)  # wider than that: printed as its repr
    assert printed.startswith("RefreshEvent(")
    assert event.access_key_id is not None and event.access_key_id in printed
