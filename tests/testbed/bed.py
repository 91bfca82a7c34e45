"""TestBed: moto + proxy + IMDS fake + seeded world, and the environment to use them.

with TestBed() as bed:
    env = bed.env()        # AWS_ENDPOINT_URL -> proxy, IMDS endpoint -> fake, ...
    bed.world.target_role_arn
    bed.proxy.count(action="AssumeRole")
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from xml.sax.saxutils import escape

from testbed import world as scenario
from testbed.imds import FakeIMDS
from testbed.moto_server import MotoServer, set_auth_enforcement
from testbed.proxy import ReverseProxy
from testbed.world import AdminCredentials, World

_T = TypeVar("_T")


class TestBed:
    """Starts everything on 127.0.0.1; ``stop()`` (or the context manager) ends it."""

    __test__ = False  # a class named Test* imported into a test module is not a test

    def __init__(self) -> None:
        self.moto = MotoServer()
        self._proxy: ReverseProxy | None = None
        self._imds: FakeIMDS | None = None
        self._world: World | None = None
        self._admin: AdminCredentials | None = None
        self._tempdir: Path | None = None
        self._enforcing = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> TestBed:
        try:
            moto_url = self.moto.start()
            self._world, self._admin = scenario.seed(moto_url)
            self._proxy = ReverseProxy(moto_url)
            self._proxy.start()
            world, admin = self._world, self._admin
            self._imds = FakeIMDS(
                lambda: scenario.instance_credentials(moto_url, admin, world),
                role_name="InstanceRole",
                region=world.region,
                instance_id=world.instance_id,
                account_id=world.account_b,
            )
            self._imds.start()
            self._tempdir = Path(tempfile.mkdtemp(prefix="assume-provider-testbed-"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._imds is not None:
            self._imds.stop()
            self._imds = None
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        self.moto.stop()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def __enter__(self) -> TestBed:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- parts -------------------------------------------------------------------------

    @property
    def moto_url(self) -> str:
        return self.moto.url

    @property
    def proxy(self) -> ReverseProxy:
        return _started(self._proxy)

    @property
    def imds(self) -> FakeIMDS:
        return _started(self._imds)

    @property
    def world(self) -> World:
        return _started(self._world)

    @property
    def admin(self) -> AdminCredentials:
        return _started(self._admin)

    # -- environment -------------------------------------------------------------------

    def env(self, config_dir: Path | str | None = None) -> dict[str, str]:
        """Variables for a process that should see only this bed.

        ``config_dir`` gets empty ``config`` and ``credentials`` files (kept if they
        exist); default: the bed's own temp dir. Contains no credentials and no
        ASSUME_PROVIDER_* setting: callers add what their test is about.
        """
        folder = Path(config_dir) if config_dir is not None else _started(self._tempdir)
        folder.mkdir(parents=True, exist_ok=True)
        config_file, credentials_file = folder / "config", folder / "credentials"
        config_file.touch()
        credentials_file.touch()
        return {
            # botocore >= 1.31 sends every service, STS included, to this endpoint.
            "AWS_ENDPOINT_URL": self.proxy.url,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds.url,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv4",
            # botocore's defaults are 1 attempt and 1 s; 5 s tolerates a loaded machine
            # while one attempt keeps IMDS request counts deterministic.
            "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "1",
            "AWS_METADATA_SERVICE_TIMEOUT": "5",
            "AWS_DEFAULT_REGION": self.world.region,
            "AWS_CONFIG_FILE": str(config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file),
            # Belt and braces: loopback traffic must never go through an outside proxy.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    # -- test helpers ------------------------------------------------------------------

    def reset(self) -> None:
        """Between tests: proxy records and faults, IMDS counts and faults, enforcement off."""
        self.proxy.reset()
        self.imds.reset()
        if self._enforcing:
            self.enforce_iam_policies(False)

    def enforce_iam_policies(self, enabled: bool = True) -> None:
        """moto checks identity policies from now on (process-wide; reset() turns it off).

        Note moto's limits: DynamoDB and KMS are checked against resource ``*`` only (the
        world grants TargetRole's actions on ``*`` too); trust policies and ExternalId are
        checked only for roles in the caller's own account (B's HopRole), never across
        accounts; a denied DynamoDB/KMS call comes back as an XML 403 that botocore reports
        with error code "403".
        """
        set_auth_enforcement(self.moto_url, enabled)
        self._enforcing = enabled

    def assume(self, role_arn: str, session_name: str = "testbed") -> dict[str, Any]:
        """STS ``Credentials`` for ``role_arn``, fetched by the admin straight from moto
        (not through the proxy, so it never shows up in proxy records)."""
        return scenario.assume(self.moto_url, self.admin, role_arn, session_name)

    def assume_role_answer(self, expiration: float, session_name: str) -> tuple[str, bytes]:
        """(access key ID, AssumeRole response body) for the target role: real moto
        credentials (fetched straight from moto, uncounted) with a crafted Expiration, for
        ``Fault.raw_body`` when a test or benchmark needs credentials that expire soon."""
        world = self.world
        credentials = self.assume(world.target_role_arn, session_name=session_name)
        stamp = datetime.fromtimestamp(expiration, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        arn = world.assumed_role_arn(world.target_role_arn, session_name)
        body = (
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<AssumeRoleResult><Credentials>"
            f"<AccessKeyId>{escape(credentials['AccessKeyId'])}</AccessKeyId>"
            f"<SecretAccessKey>{escape(credentials['SecretAccessKey'])}</SecretAccessKey>"
            f"<SessionToken>{escape(credentials['SessionToken'])}</SessionToken>"
            f"<Expiration>{stamp}</Expiration>"
            "</Credentials><AssumedRoleUser>"
            f"<AssumedRoleId>AROATESTBED:{escape(session_name)}</AssumedRoleId>"
            f"<Arn>{escape(arn)}</Arn>"
            "</AssumedRoleUser></AssumeRoleResult>"
            "<ResponseMetadata><RequestId>testbed</RequestId></ResponseMetadata>"
            "</AssumeRoleResponse>"
        )
        return credentials["AccessKeyId"], body.encode()

    def client(self, service: str, role_arn: str | None = None, *, via_proxy: bool = False) -> Any:
        """A boto3 client as ``role_arn`` (default: the admin), straight to moto unless
        ``via_proxy``. Independent of os.environ except for botocore's config lookups."""
        if role_arn is None:
            credentials = self.admin.client_kwargs()
        else:
            credentials = scenario.as_client_kwargs(self.assume(role_arn))
        url = self.proxy.url if via_proxy else self.moto_url
        return scenario.client(url, service, credentials)


def _started(value: _T | None) -> _T:
    if value is None:
        raise RuntimeError("TestBed is not started")
    return value
