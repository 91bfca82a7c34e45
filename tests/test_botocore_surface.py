"""The botocore and boto3 internals listed in assume_provider/botocore/private.py, checked
against the installed versions (and awscli's vendored botocore): an upgrade that changes one
fails here, by name, with the reason the package relies on it."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.credentials
import botocore.session
import botocore.utils
import pytest
from testbed import TestBed
from testbed.proxy import Fault

import assume_provider
from assume_provider.botocore import private
from assume_provider.botocore.credentials import EngineCredentials, record_signing_key

PACKAGE = Path(assume_provider.__file__).resolve().parent
RefreshableCredentials = botocore.credentials.RefreshableCredentials


# -- boto3.Session._session, botocore.session.Session._last_client_region_used ---------------


def test_a_boto3_session_wraps_its_botocore_session_as__session() -> None:
    session = boto3.Session(region_name="eu-west-3")
    inner = private.botocore_session_of(session)
    assert isinstance(inner, botocore.session.Session)
    assert inner.get_config_variable("region") == "eu-west-3"  # the very session it uses
    assert private.botocore_session_of(inner) is None


def test_botocore_records_the_last_client_region_and_its_own_resolver_factory_reads_it() -> None:
    session = botocore.session.Session()
    assert private.last_client_region(session) is None
    session.create_client(
        "sts", region_name="eu-west-3", aws_access_key_id="AKIDX", aws_secret_access_key="x"
    )
    assert private.last_client_region(session) == "eu-west-3"
    source = inspect.getsource(botocore.session.Session._create_credential_resolver)
    assert "_last_client_region_used" in source  # the reason we pass it on


# -- the request context, from request-created to needs-retry -------------------------------


def test_the_signing_key_travels_from_request_created_to_needs_retry(aws_env: TestBed) -> None:
    """What the ExpiredToken retry relies on: a session-level request-created handler runs
    after the client's signer; ``request.context`` is the dict needs-retry handlers get as
    ``request_dict["context"]``; ``response`` is ``(http_response, parsed)``; returning 0
    makes botocore retry, signing the attempt afresh."""
    session = botocore.session.Session()
    session.register("request-created", record_signing_key, unique_id="surface-signing-key")
    seen: list[dict[str, Any]] = []

    def decide(response: Any = None, attempts: int = 0, request_dict: Any = None, **_: Any) -> Any:
        code = response[1].get("Error", {}).get("Code") if response else None
        seen.append({"attempts": attempts, "code": code, "key": private.signing_key(request_dict)})
        return 0 if code == "ExpiredTokenException" and attempts == 1 else None

    session.register("needs-retry", decide, unique_id="surface-needs-retry")
    client = session.create_client(
        "dynamodb", aws_access_key_id="AKIDSURFACE", aws_secret_access_key="secret"
    )
    aws_env.proxy.inject(Fault.error("ExpiredTokenException", 400, "expired"), action="GetItem")
    with pytest.raises(client.exceptions.ClientError):  # moto: no such table in this account
        client.get_item(TableName="none", Key={"name": {"S": "x"}})

    assert seen[0] == {"attempts": 1, "code": "ExpiredTokenException", "key": "AKIDSURFACE"}
    assert seen[1]["attempts"] == 2 and seen[1]["key"] == "AKIDSURFACE"
    assert aws_env.proxy.count(action="GetItem") == 2


# -- RefreshableCredentials internals --------------------------------------------------------


def _real_refreshable() -> Any:
    return RefreshableCredentials.create_from_metadata(
        {
            "access_key": "AKIDBASE",
            "secret_key": "secret",
            "token": "token",
            "expiry_time": "2999-01-01T00:00:00Z",
        },
        refresh_using=lambda: {},
        method="surface",
    )


@pytest.mark.parametrize("name", private.REFRESHABLE_OVERRIDES)
def test_each_overridden_private_method_exists_in_botocore(name: str) -> None:
    assert callable(getattr(RefreshableCredentials, name, None)), name


@pytest.mark.parametrize("name", private.REFRESHABLE_FIELDS + private.REFRESHABLE_INIT_FIELDS)
def test_each_relied_on_field_is_set_by_refreshable_credentials_init(name: str) -> None:
    assert name in vars(_real_refreshable()), name


def test_botocore_reads_those_fields_as_relied_on() -> None:
    credentials = _real_refreshable()
    frozen = botocore.credentials.ReadOnlyCredentials("AKIDNEW", "s2", "t2", None)
    private.mirror_into_refreshable(credentials, frozen, credentials._expiry_time)
    assert credentials.get_frozen_credentials() is frozen  # no refresh due: its frozen tuple
    assert credentials.access_key == "AKIDNEW"  # the properties read the private fields
    assert credentials.refresh_needed() is False  # from _expiry_time and _time_fetcher


def test_engine_credentials_override_no_other_private_botocore_name() -> None:
    """A new override of a botocore private name must be listed in private.py (and here)."""
    ours = {
        name
        for name in vars(EngineCredentials)
        if name.startswith("_") and not name.startswith("__")
    }
    assert ours & set(dir(RefreshableCredentials)) == set(private.REFRESHABLE_OVERRIDES)


def test_awscli_vendored_botocore_has_the_same_internals() -> None:
    """Inside the ``aws`` process ``import botocore`` is awscli's copy: the class must work
    there too (in a child process: importing awscli re-points ``botocore`` process-wide)."""
    pytest.importorskip("awscli")
    script = """
import json, time, awscli.clidriver, botocore.credentials as bc
from assume_provider.botocore import private
from assume_provider.botocore.credentials import EngineCredentials
from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials
fetch = lambda: TemporaryCredentials("AKIDCLI", "secret", "token", time.time() + 3600)
c = EngineCredentials(RefreshingCredentials(fetch), "assume-provider")
c._protected_refresh(is_mandatory=True)
base = bc.RefreshableCredentials
print(json.dumps({
    "module": bc.__file__.split("site-packages")[-1].replace("\\\\", "/"),
    "missing": [n for n in private.REFRESHABLE_OVERRIDES if not hasattr(base, n)]
    + [n for n in private.REFRESHABLE_FIELDS + private.REFRESHABLE_INIT_FIELDS if n not in vars(c)],
    "key": c.get_frozen_credentials().access_key,
    "expired": c._is_expired(),
    "base_key": base.get_frozen_credentials(c).access_key,
}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(done.stdout)
    assert result == {
        "module": "/awscli/botocore/credentials.py",
        "missing": [],
        "key": "AKIDCLI",
        "expired": False,
        "base_key": "AKIDCLI",
    }


# -- nothing private outside private.py ------------------------------------------------------


def _is_super(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id == "super"


def test_no_module_but_private_py_reads_a_private_botocore_or_boto3_attribute() -> None:
    """``obj._name`` in the package, where obj is not ``self``, ``cls`` or ``super()``, is a
    private attribute of something else: botocore's and boto3's belong in private.py.
    ``engine/`` is skipped: it never sees a botocore object (it imports nothing but the
    standard library) and its modules reach into their own objects."""
    allowed = {
        "_Environ",  # os._Environ, the standard library's type of os.environ
        "_at_fork_reinit",  # what threading renews its own locks with in a forked child
    }
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "private.py" or path.parent.name == "engine":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and not (isinstance(node.value, ast.Call) and _is_super(node.value))
                and node.attr not in allowed
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr")
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and str(node.args[1].value).startswith("_")
                and node.args[1].value not in allowed
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.args[1].value!r}")
    assert found == []




# -- botocore._INITIALIZERS ---------------------------------------------------------------------


def test_botocore_lists_its_initializers_where_the_private_copies_look() -> None:
    def foreign_initializer(session: object) -> None:
        pass

    assert isinstance(botocore._INITIALIZERS, list)
    assert not private.foreign_initializers_registered()  # this package's only, or none
    botocore.register_initializer(foreign_initializer)
    try:
        assert foreign_initializer in botocore._INITIALIZERS
        assert private.foreign_initializers_registered()
    finally:
        botocore.unregister_initializer(foreign_initializer)
    assert not private.foreign_initializers_registered()

# -- the IMDS fetcher of create_credential_resolver, rebuilt by credentials/imds.py --------


def test_the_imds_fetcher_is_configured_as_botocores_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from assume_provider.credentials.imds import imds_fetcher

    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1/")
    monkeypatch.setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "2")
    session = botocore.session.Session()
    resolver = botocore.credentials.create_credential_resolver(session)
    theirs = resolver.get_provider("iam-role")._role_fetcher
    ours = imds_fetcher(session)
    assert type(ours) is type(theirs)
    simple = (str, int, float, bool, type(None), dict)

    def state(fetcher: Any) -> dict[str, Any]:
        return {k: v for k, v in vars(fetcher).items() if isinstance(v, simple)}

    assert state(ours) == state(theirs)
    assert state(ours)  # the comparison is not vacuous


# -- the container provider of create_credential_resolver, built by credentials/sources.py ----


def test_the_container_provider_is_built_as_botocores_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """``source = container`` builds ``ContainerProvider()`` itself instead of botocore's whole
    chain to pick that one: botocore's chain must build it the same way, from nothing."""
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/credentials")
    session = botocore.session.Session()
    resolver = botocore.credentials.create_credential_resolver(session)
    theirs = resolver.get_provider("container-role")
    ours = botocore.credentials.ContainerProvider()
    assert type(ours) is type(theirs)
    assert ours._environ is theirs._environ
    simple = (str, int, float, bool, type(None), dict)

    def state(thing: Any) -> dict[str, Any]:
        return {k: v for k, v in vars(thing).items() if isinstance(v, simple)}

    assert type(ours._fetcher) is type(theirs._fetcher)
    assert ours._fetcher._sleep is theirs._fetcher._sleep
    assert state(ours._fetcher._session) == state(theirs._fetcher._session)
    assert state(ours._fetcher._session)  # the comparison is not vacuous


def test_the_imds_fetcher_of_botocores_chain_is_found_in_its_provider() -> None:
    """The ``auto`` source wraps this fetcher in retries instead of building a second one
    (configured the same: the test above)."""
    session = botocore.session.Session()
    provider = botocore.credentials.create_credential_resolver(session).get_provider("iam-role")
    fetcher = private.imds_fetcher_of(provider)
    assert isinstance(fetcher, botocore.utils.InstanceMetadataFetcher)
    assert fetcher is provider._role_fetcher
    assert private.imds_fetcher_of(object()) is None
