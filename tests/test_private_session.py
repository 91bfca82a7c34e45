"""The chain's private botocore session: one per resolution, sharing the application's data
loader, building one client at a time (``credentials/private_session.py``)."""

from __future__ import annotations

import threading
from typing import Any

import botocore
import botocore.session
import pytest
from testbed import TestBed

import assume_provider
from assume_provider.credentials.private_session import (
    PrivateSession,
    PrivateSessionRecipe,
    private_session,
)

pytestmark = pytest.mark.usefixtures("fresh_provider_state")

WAIT = 60  # a safety net for a broken build, never what a passing run waits for


def test_a_resolution_makes_one_private_copy_and_it_reads_the_applications_loader(
    aws_env: TestBed,
) -> None:
    created: list[botocore.session.Session] = []

    def count(session: botocore.session.Session) -> None:
        created.append(session)

    botocore.register_initializer(count)
    try:
        app = botocore.session.Session()
        assume_provider.register(app, role_arn=aws_env.world.target_role_arn)
        arn = app.create_client("sts").get_caller_identity()["Arn"]
    finally:
        botocore.unregister_initializer(count)
    assert aws_env.world.account_a in arn
    copies = [session for session in created if session is not app]
    # One copy for the source and the chain's STS clients together.
    assert len(copies) == 1
    assert isinstance(copies[0], PrivateSession)
    # The chain's first STS client parsed no JSON file the application's client had parsed.
    assert copies[0].get_component("data_loader") is app.get_component("data_loader")
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_a_private_copy_of_a_private_copy_is_itself() -> None:
    copy = private_session(botocore.session.Session())
    assert private_session(copy) is copy


def test_a_private_session_holds_its_build_lock_while_it_builds(aws_env: TestBed) -> None:
    """Another thread cannot take the copy's build lock while a client is being built on it,
    and can once the build is over: builds on one copy never overlap."""
    copy = private_session(botocore.session.Session())
    probes: list[bool] = []

    def try_the_lock() -> None:
        lock: Any = copy._building._lock  # the RLock inside the fork-safe wrapper
        taken = lock.acquire(blocking=False)
        if taken:
            lock.release()
        probes.append(taken)

    def probe_from_another_thread(**_: Any) -> None:
        prober = threading.Thread(target=try_the_lock)
        prober.start()
        prober.join(WAIT)

    copy.register("creating-client-class", probe_from_another_thread)
    copy.create_client("sts", aws_access_key_id="AKIDTEST", aws_secret_access_key="secret")
    probe_from_another_thread()
    assert probes == [False, True]


def test_the_copy_sends_the_application_user_agent() -> None:
    """AssumeRole calls made for a boto3 application say Boto3 in their User-Agent, as its
    own STS calls do (CloudTrail shows them as the application's)."""
    import boto3

    application = boto3.Session(region_name="us-east-1")._session
    copy = private_session(application)
    assert (copy.user_agent_name, copy.user_agent_version, copy.user_agent_extra) == (
        application.user_agent_name,
        application.user_agent_version,
        application.user_agent_extra,
    )
    assert copy.user_agent_name == "Boto3"


def test_a_copy_made_after_install_has_botocores_handlers_and_not_the_applications(
    aws_env: TestBed,
) -> None:
    """The copy starts from the built-in handlers kept at the first session's construction
    (``remember_builtin_handlers``): botocore's own checks run on its clients, a handler
    the application registered on its session does not."""
    from botocore.exceptions import ParamValidationError

    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    app = botocore.session.Session()
    seen: list[str] = []
    app.register("before-parameter-build.s3", lambda **_: seen.append("app"))
    copy = private_session(app)
    client = copy.create_client(
        "s3", region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="x"
    )
    with pytest.raises(ParamValidationError):  # botocore's validate_bucket_name, built in
        client.put_object(Bucket="not a bucket!", Key="k", Body=b"")
    assert seen == []
    assert aws_env.proxy.count() == 0



def test_the_first_copy_takes_the_kept_handlers_and_later_ones_copy_the_first_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Copying the kept handlers again cost a short-lived process 2.5 M instructions; a later
    copy (a session per region) starts from a copy of the first copy's (0.5 ms, not the 6 ms
    of registering botocore's afresh), unless another package's botocore initializer may have
    added its handlers to the first copy. No two copies share an emitter, and every copy
    validates as botocore does."""
    from botocore.exceptions import ParamValidationError

    from assume_provider.botocore.private import event_hooks_of, foreign_initializers_registered
    from assume_provider.credentials import private_session as module

    monkeypatch.setattr(module, "_builtin_handlers", None)
    monkeypatch.setattr(module, "_handlers_kept", False)
    monkeypatch.setattr(module, "_first_copy_handlers", None)
    app = botocore.session.Session()
    # What the integration's initializer does.
    module.remember_builtin_handlers(event_hooks_of(app), foreign_initializers_registered)
    kept = module._builtin_handlers
    assert kept is not None and kept is not event_hooks_of(app)
    first = private_session(app)
    assert event_hooks_of(first) is kept
    later = module._handlers_for_a_new_copy()
    assert later is not None and later is not kept
    assert later._handlers._root == kept._handlers._root  # the same handlers, its own trie
    second = private_session(botocore.session.Session())
    assert event_hooks_of(second) not in (kept, None)

    def foreign_initializer(session: Any) -> None:
        pass

    botocore.register_initializer(foreign_initializer)
    try:
        assert module._handlers_for_a_new_copy() is None  # registered afresh then
        third = private_session(botocore.session.Session())
    finally:
        botocore.unregister_initializer(foreign_initializer)
    module.remember_builtin_handlers(event_hooks_of(app), foreign_initializers_registered)
    assert module._builtin_handlers is None  # kept once per process
    for copy in (first, second, third):
        client = copy.create_client(
            "s3", region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="x"
        )
        with pytest.raises(ParamValidationError):  # botocore's validate_bucket_name
            client.put_object(Bucket="not a bucket!", Key="k", Body=b"")


def test_the_copy_reads_the_files_the_application_parsed(tmp_path: Any) -> None:
    """No second parse of the config and credentials files: the copy reads the application's
    ``full_config``, the dict botocore's own assume-role provider reads too."""
    config = tmp_path / "config"
    config.write_text("[profile elsewhere]\nregion = eu-west-3\n")
    app = botocore.session.Session(profile="elsewhere")
    app.set_config_variable("config_file", str(config))
    parsed = app.full_config
    copy = private_session(app)
    assert copy.full_config is parsed
    assert copy.get_scoped_config()["region"] == "eu-west-3"
    assert copy.get_config_variable("region") == "eu-west-3"


def test_a_recipe_makes_its_copy_once_at_first_use_as_the_session_was() -> None:
    """The copy is configured as the session was when the recipe was made (at resolution),
    not as it is when the copy is first needed."""
    app = botocore.session.Session()
    app.set_config_variable("region", "ap-south-1")
    recipe = PrivateSessionRecipe(app)
    app.set_config_variable("region", "sa-east-1")
    copy = recipe.make()
    assert recipe.make() is copy
    assert copy.get_config_variable("region") == "ap-south-1"
