"""register() racing another register() and the first client of the same session, and what
uninstall() does to sessions that already resolved their credentials.

The race is run deterministically: the session (a subclass of the test's own) stops the first
register() inside the session's own registration call until the test lets it go, and the
registration lock (replaced by an equivalent of the test's own) says when another thread waits
for it. No sleeping, no timing."""

from __future__ import annotations

import threading
from typing import Any, Optional

import boto3
import botocore.session
import pytest
from testbed import TestBed

import assume_provider
from assume_provider.botocore import registration

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

WAIT = 60  # a safety net for a broken build, never what a passing run waits for


class PausingSession(botocore.session.Session):
    """Holds the first register() of this session inside its component registration."""

    def __init__(self) -> None:
        super().__init__()
        self.inside_register = threading.Event()
        self.let_go = threading.Event()
        self._paused_once = False

    def lazy_register_component(self, name: str, component: Any) -> None:
        if name == "credential_provider" and not self._paused_once:
            self._paused_once = True
            self.inside_register.set()
            assert self.let_go.wait(WAIT)
        super().lazy_register_component(name, component)


class WaitSignallingLock:
    """A re-entrant lock that calls ``on_wait`` when a thread has to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.on_wait = lambda: None

    def __enter__(self) -> bool:
        if not self._lock.acquire(blocking=False):
            self.on_wait()
            self._lock.acquire()
        return True

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def method_of(credentials: Optional[Any]) -> Optional[str]:
    return getattr(credentials, "method", None)


def test_a_register_racing_another_leaves_no_default_resolver_behind(
    aws_env: TestBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = WaitSignallingLock()
    monkeypatch.setattr(registration, "_lock", lock)
    role = {"role_arn": aws_env.world.target_role_arn}
    session = PausingSession()
    first = threading.Thread(target=assume_provider.register, args=(session,), kwargs=role)
    first.start()
    assert session.inside_register.wait(WAIT)

    # A second register() of the same session, then its first client's credentials. Either
    # it waits for the first register() (the fix), or it gets through before that one has
    # set the session up: `decided` is set by whichever happens.
    decided = threading.Event()
    lock.on_wait = decided.set
    seen: dict[str, Optional[str]] = {}

    def second() -> None:
        assume_provider.register(session, **role)
        seen["method"] = method_of(session.get_credentials())
        decided.set()

    racer = threading.Thread(target=second)
    racer.start()
    assert decided.wait(WAIT)
    session.let_go.set()
    first.join(WAIT)
    racer.join(WAIT)

    assert seen == {"method": "assume-provider"}
    assert method_of(session.get_credentials()) == "assume-provider"  # what the session kept
    resolver = session.get_component("credential_provider")
    assert [p.METHOD for p in resolver.providers].count("assume-provider") == 1


def test_uninstall_leaves_sessions_that_resolved_credentials_on_the_chain(
    aws_env: TestBed,
) -> None:
    """As uninstall()'s docstring says: botocore keeps a session's resolved credentials (and
    each client its own), so those go on refreshing through the chain; a session that had not
    resolved them yet, and every new session, gets botocore's own chain."""
    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn)
    resolved = boto3.Session()
    client_before = resolved.client("sts")
    assert world.account_a in client_before.get_caller_identity()["Arn"]
    unresolved = boto3.Session()

    assume_provider.uninstall()

    assert world.account_a in client_before.get_caller_identity()["Arn"]
    assert world.account_a in resolved.client("sts").get_caller_identity()["Arn"]
    instance = world.instance_session_arn
    assert unresolved.client("sts").get_caller_identity()["Arn"] == instance
    assert boto3.Session().client("sts").get_caller_identity()["Arn"] == instance
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_uninstall_says_which_sessions_keep_the_chain() -> None:
    doc = " ".join((assume_provider.uninstall.__doc__ or "").split())
    assert "already resolved" in doc
    assert "stop using it" not in doc


def test_sessions_set_up_by_install_are_freed_once_the_application_drops_them(
    aws_env: TestBed,
) -> None:
    """The registry maps sessions to providers weakly; a provider that held its session
    strongly kept every session install() ever set up alive for the life of the process (an
    application making a session per request or per thread grew without bound)."""
    import gc
    import weakref

    world = aws_env.world
    assume_provider.install(role_arn=world.target_role_arn)
    try:
        dropped = []
        for _ in range(5):
            session = boto3.Session()
            assert world.account_a in session.client("sts").get_caller_identity()["Arn"]
            dropped.append(weakref.ref(session._session))
            dropped.append(weakref.ref(session))
            del session
        never_resolved = botocore.session.Session()
        dropped.append(weakref.ref(never_resolved))
        del never_resolved
        gc.collect()
        assert [ref for ref in dropped if ref() is not None] == []
        assert aws_env.proxy.count(action="AssumeRole") == 1  # still one chain for all
    finally:
        assume_provider.uninstall()


def test_botocores_chain_behind_the_provider_is_built_only_when_needed(
    aws_env: TestBed,
) -> None:
    """botocore's own chain (about ten providers, two of them with HTTP pools) only answers
    when the provider does not; a short-lived process paid 11.6 M instructions building it."""
    world = aws_env.world
    session = boto3.Session()
    assume_provider.register(session, role_arn=world.target_role_arn)
    assert world.account_a in session.client("sts").get_caller_identity()["Arn"]
    resolver = session._session.get_component("credential_provider")
    assert resolver._chain is None  # the provider answered: nothing behind it was built
    # Anything that reaches into the chain gets botocore's, with the provider first, once.
    methods = [provider.METHOD for provider in resolver.providers]
    assert methods[0] == "assume-provider"
    assert methods.count("assume-provider") == 1
    assert {"env", "assume-role", "shared-credentials-file", "iam-role"} <= set(methods)
    assert resolver.get_provider("iam-role") is resolver.providers[methods.index("iam-role")]
    assert world.account_a in session.client("sts").get_caller_identity()["Arn"]
    assert aws_env.proxy.count(action="AssumeRole") == 1
