"""A local AWS for the tests and the README demo: moto, an IMDSv2 fake and a counting proxy.

Everything binds 127.0.0.1 and nothing here imports pytest, so the README demo can use
``with TestBed() as bed:`` directly.
"""

from testbed.bed import TestBed
from testbed.imds import FakeIMDS, ImdsFault, InstanceCredentials
from testbed.moto_server import MotoServer, reset_auth, set_auth_enforcement
from testbed.proxy import Fault, Injection, RecordedRequest, ReverseProxy
from testbed.world import ACCOUNT_A, ACCOUNT_B, World

__all__ = [
    "ACCOUNT_A",
    "ACCOUNT_B",
    "FakeIMDS",
    "Fault",
    "ImdsFault",
    "Injection",
    "InstanceCredentials",
    "MotoServer",
    "RecordedRequest",
    "ReverseProxy",
    "TestBed",
    "World",
    "reset_auth",
    "set_auth_enforcement",
]
