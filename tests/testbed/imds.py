"""A small IMDSv2 fake: the token flow, the instance-profile credentials, the region.

botocore's InstanceMetadataFetcher works against it when
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` points at ``url``. It counts requests per path and
can be told to answer the next N requests for a path with arbitrary bytes, so tests can
feed a client malformed credential documents.
"""

from __future__ import annotations

import datetime
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from testbed.local_http import BackgroundServer, QuietHandler

TOKEN_PATH = "/latest/api/token"
CREDENTIALS_LIST_PATH = "/latest/meta-data/iam/security-credentials/"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"


@dataclass(frozen=True)
class InstanceCredentials:
    access_key_id: str
    # Kept out of repr so secrets never land in test failure output.
    secret_access_key: str = field(repr=False)
    token: str = field(repr=False)
    expiration: datetime.datetime  # timezone-aware UTC

    def document(self, last_updated: datetime.datetime) -> dict[str, str]:
        """The JSON document EC2 serves for an instance-profile role."""
        return {
            "Code": "Success",
            "LastUpdated": _iso8601_z(last_updated),
            "Type": "AWS-HMAC",
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.token,
            "Expiration": _iso8601_z(self.expiration),
        }


@dataclass(frozen=True)
class ImdsFault:
    """A canned answer served instead of the real one."""

    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def raw(cls, body: bytes, status: int = 200, content_type: str = "text/plain") -> ImdsFault:
        return cls(status, body, content_type)

    @classmethod
    def http_status(cls, status: int) -> ImdsFault:
        return cls(status, b"", "text/plain")

    @classmethod
    def not_json(cls) -> ImdsFault:
        return cls(200, b"<html>not json</html>", "text/html")

    @classmethod
    def empty(cls) -> ImdsFault:
        return cls(200, b"")

    @classmethod
    def document(cls, document: dict[str, Any]) -> ImdsFault:
        return cls(200, json.dumps(document).encode())

    @classmethod
    def error_code(cls, code: str = "AssumeRoleUnauthorizedAccess") -> ImdsFault:
        """What EC2 serves when it cannot assume the instance role (Code != Success)."""
        return cls.document(
            {
                "Code": code,
                "Message": "EC2 cannot assume the role InstanceRole.",
                "LastUpdated": _iso8601_z(_utcnow()),
            }
        )


class FakeIMDS:
    """IMDSv2 on 127.0.0.1; credentials come from ``fetch_credentials`` (see rotate())."""

    def __init__(
        self,
        fetch_credentials: Callable[[], InstanceCredentials],
        *,
        role_name: str = "InstanceRole",
        region: str = "us-east-1",
        instance_id: str = "i-0123456789abcdef0",
        account_id: str = "222222222222",
    ) -> None:
        self.role_name = role_name
        self.region = region
        self.instance_id = instance_id
        self.account_id = account_id
        self._fetch_credentials = fetch_credentials
        self._lock = threading.Lock()
        self._credentials: InstanceCredentials | None = None
        self._last_updated = _utcnow()
        self._tokens: dict[str, float] = {}  # token -> monotonic deadline
        self._counts: Counter[str] = Counter()
        self._faults: dict[str, list[ImdsFault]] = {}
        self._server = BackgroundServer(partial(_ImdsHandler, imds=self), name="fake-imds")

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL with trailing slash, the form botocore's endpoint setting expects."""
        return self._server.url + "/"

    def start(self) -> str:
        self.rotate()
        self._server.start()
        return self.url

    def stop(self) -> None:
        self._server.stop()

    # -- credentials -------------------------------------------------------------------

    @property
    def credentials(self) -> InstanceCredentials:
        with self._lock:
            if self._credentials is None:
                raise RuntimeError("no credentials yet: call rotate() or start()")
            return self._credentials

    def rotate(self) -> InstanceCredentials:
        """Fetch fresh credentials from the source and serve those from now on."""
        return self.set_credentials(self._fetch_credentials())

    def set_credentials(self, credentials: InstanceCredentials) -> InstanceCredentials:
        """Serve exactly these credentials (e.g. with a hand-picked expiration)."""
        with self._lock:
            self._credentials = credentials
            self._last_updated = _utcnow()
        return credentials

    @property
    def credentials_path(self) -> str:
        return CREDENTIALS_LIST_PATH + self.role_name

    # -- counting ----------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    @property
    def path_counts(self) -> dict[str, int]:
        """A snapshot: path -> number of requests (any method, any outcome)."""
        with self._lock:
            return dict(self._counts)

    def count(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    @property
    def credential_request_count(self) -> int:
        """GETs of the role's credential document: one per credential fetch by a client."""
        return self.count(self.credentials_path)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    # -- faults ------------------------------------------------------------------------

    def inject(self, fault: ImdsFault, *, times: int = 1, path: str | None = None) -> None:
        """Answer the next ``times`` authorised GETs of ``path`` (default: the credential
        document) with ``fault``."""
        target = path or self.credentials_path
        with self._lock:
            self._faults.setdefault(target, []).extend([fault] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Counts and faults back to zero; the current credentials stay."""
        with self._lock:
            self._counts.clear()
            self._faults.clear()

    # -- used by the handler -----------------------------------------------------------

    def _record(self, path: str) -> None:
        with self._lock:
            self._counts[path] += 1

    def _issue_token(self, ttl_seconds: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl_seconds
        return token

    def _token_is_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            deadline = self._tokens.get(token)
        return deadline is not None and time.monotonic() < deadline

    def _take_fault(self, path: str) -> ImdsFault | None:
        with self._lock:
            pending = self._faults.get(path)
            return pending.pop(0) if pending else None

    def _metadata(self, path: str) -> tuple[str, str] | None:
        """(body, content type) for a metadata path, or None for 404."""
        if path == CREDENTIALS_LIST_PATH:
            return self.role_name, "text/plain"
        if path == self.credentials_path:
            with self._lock:
                credentials, last_updated = self._credentials, self._last_updated
            if credentials is None:
                return None
            return json.dumps(credentials.document(last_updated), indent=2), "text/plain"
        simple = {
            "/latest/meta-data/placement/region": self.region,
            "/latest/meta-data/placement/availability-zone": self.region + "a",
            "/latest/meta-data/instance-id": self.instance_id,
            "/latest/dynamic/instance-identity/document": json.dumps(
                {
                    "accountId": self.account_id,
                    "region": self.region,
                    "instanceId": self.instance_id,
                    "availabilityZone": self.region + "a",
                }
            ),
        }
        # botocore asks for "availability-zone/" with a trailing slash.
        body = simple.get(path.rstrip("/"))
        return (body, "text/plain") if body is not None else None


class _ImdsHandler(QuietHandler):
    def __init__(self, *args: Any, imds: FakeIMDS, **kwargs: Any) -> None:
        self.imds = imds  # set before super().__init__, which handles the request
        super().__init__(*args, **kwargs)

    def do_PUT(self) -> None:
        self.read_body()
        self.imds._record(self.path)
        if self.path != TOKEN_PATH:
            self.send_bytes(404, b"Not Found")
            return
        ttl = self.headers.get(TOKEN_TTL_HEADER, "")
        # Real IMDS: a missing or out-of-range TTL is a 400, 1..21600 seconds allowed.
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            self.send_bytes(400, b"Bad Request")
            return
        token = self.imds._issue_token(int(ttl))
        self.send_bytes(200, token.encode(), headers={TOKEN_TTL_HEADER: ttl})

    def do_GET(self) -> None:
        self.imds._record(self.path)
        if not self.imds._token_is_valid(self.headers.get(TOKEN_HEADER)):
            self.send_bytes(401, b"Unauthorized")  # IMDSv2 only: no token, no data
            return
        fault = self.imds._take_fault(self.path)
        if fault is not None:
            self.send_bytes(fault.status, fault.body, fault.content_type)
            return
        found = self.imds._metadata(self.path)
        if found is None:
            self.send_bytes(404, b"Not Found")
            return
        body, content_type = found
        self.send_bytes(200, body.encode(), content_type)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _iso8601_z(moment: datetime.datetime) -> str:
    # Whole seconds with a literal Z: botocore parses "%Y-%m-%dT%H:%M:%SZ" exactly.
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
