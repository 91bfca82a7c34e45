"""botocore's view of the refresh engine: a Credentials object that signers and users call.

botocore signs every request with ``get_frozen_credentials()``; this answers from the engine,
whose hot path is one clock read and one comparison, and rebuilds botocore's frozen tuple
only when the engine hands out new credentials. That rare moment is also when the new key is
recorded as issued (``issued_keys``), which the ExpiredToken retry below relies on.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any, Optional

import botocore.credentials

from ..credentials.assume_role import EXPIRED_TOKEN_CODES
from ..engine.forksafe import ForkSafeLock, renew_in_child
from ..engine.refresh import RefreshingCredentials, TemporaryCredentials
from . import private
from .issued_keys import IssuedKeys, engine_of

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

_Snapshot = tuple[TemporaryCredentials, Any]  # (engine credentials, botocore ReadOnlyCredentials)


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _expiry_datetime(credentials: TemporaryCredentials) -> Optional[datetime.datetime]:
    if credentials.expiration is None:
        return None
    return datetime.datetime.fromtimestamp(credentials.expiration, datetime.timezone.utc)


class EngineView:
    """What botocore's and aiobotocore's credentials views of one engine have in common.

    ``access_key``, ``secret_key`` and ``token`` are read from the credentials being served,
    with setters, as botocore's ``RefreshableCredentials`` has them (its ``__init__`` and
    ``_set_from_data`` assign them): what is assigned is kept where botocore keeps it, but
    what is read always comes from ``_serving()``, the one snapshot of the engine's
    credentials (the sync and the async view each say how they get it).
    """

    _engine: RefreshingCredentials
    _access_key: str
    _secret_key: str
    _token: Optional[str]
    method: str

    def _serving(self) -> Any:
        """The frozen credentials (botocore's ``ReadOnlyCredentials``) to read from."""
        raise NotImplementedError

    @property
    def engine(self) -> RefreshingCredentials:
        return self._engine

    @property
    def access_key(self) -> str:
        return str(self._serving().access_key)

    @access_key.setter
    def access_key(self, value: str) -> None:
        self._access_key = value

    @property
    def secret_key(self) -> str:
        return str(self._serving().secret_key)

    @secret_key.setter
    def secret_key(self, value: str) -> None:
        self._secret_key = value

    @property
    def token(self) -> Optional[str]:
        token = self._serving().token
        return None if token is None else str(token)

    @token.setter
    def token(self, value: Optional[str]) -> None:
        self._token = value

    def invalidate(self, access_key_id: Optional[str] = None) -> None:
        """Route the next call through a refresh (after a service answered ExpiredToken)."""
        self._engine.invalidate(access_key_id)

    def __repr__(self) -> str:
        current = self._engine.current
        key = current.access_key_id if current else None
        return f"<{type(self).__name__} method={self.method!r} access_key_id={key!r}>"


class EngineCredentials(EngineView, botocore.credentials.RefreshableCredentials):  # type: ignore[misc]
    """A ``RefreshableCredentials`` whose credentials and refresh decisions are the engine's.

    RefreshableCredentials.__init__ runs (with placeholders: nothing is fetched before the
    first signed request), so every attribute and method botocore has is there. The public
    surface and botocore's refresh entry points answer from the engine; botocore's own fields
    are kept equal to the engine's credentials for any code that reads them.
    """

    def __init__(
        self,
        engine: RefreshingCredentials,
        method: str,
        account_id: Optional[str] = None,
        *,
        time_fetcher: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        self._engine = engine
        self._issued = IssuedKeys(engine)
        self._publish_lock = ForkSafeLock()
        self._snapshot: Optional[_Snapshot] = None
        super().__init__(
            access_key="",
            secret_key="",
            token=None,
            expiry_time=None,
            refresh_using=self._metadata,
            method=method,
            time_fetcher=time_fetcher,
            account_id=account_id,
        )
        renew_in_child(self)

    def _after_fork_in_child(self) -> None:
        private.renew_refresh_lock(self)

    @property
    def issued_keys(self) -> tuple[str, ...]:
        """The access key IDs handed to botocore so far, newest first (bounded)."""
        return self._issued.keys

    # -- what botocore's signers and users call --------------------------------------------

    def get_frozen_credentials(self) -> Any:
        # The signer's hot path: one engine call, one identity check (as _frozen, inlined).
        current = self._engine.get()
        snapshot = self._snapshot
        if snapshot is not None and snapshot[0] is current:
            return snapshot[1]
        return self._publish(current)

    def frozen(self, current: TemporaryCredentials) -> Any:
        """botocore's frozen tuple for ``current`` (the engine's credentials), published once;
        the async view calls this after getting ``current`` from the engine without blocking."""
        snapshot = self._snapshot
        if snapshot is not None and snapshot[0] is current:
            return snapshot[1]
        return self._publish(current)

    def _publish(self, current: TemporaryCredentials) -> Any:
        """New credentials from the engine: record the key, update botocore's fields, hand out."""
        frozen = botocore.credentials.ReadOnlyCredentials(
            current.access_key_id,
            current.secret_access_key,
            current.session_token,
            self._account_id,
        )
        with self._publish_lock:
            self._issued.add(current.access_key_id)  # before anything can sign with it
            private.mirror_into_refreshable(self, frozen, _expiry_datetime(current))
            self._snapshot = (current, frozen)  # one assignment: readers see old or new, whole
        return frozen

    def _cached(self) -> Optional[TemporaryCredentials]:
        """The engine's credentials, published, without ever contacting the source."""
        current = self._engine.current
        snapshot = self._snapshot
        if current is not None and (snapshot is None or snapshot[0] is not current):
            self._publish(current)
        return current

    def _serving(self) -> Any:
        return self.get_frozen_credentials()

    @property
    def account_id(self) -> Optional[str]:
        # The last role's account, known from its ARN: no fetch (botocore reads this while
        # resolving account-based endpoints, before signing).
        return self._account_id

    @account_id.setter
    def account_id(self, value: Optional[str]) -> None:
        self._account_id = value

    # -- botocore's refresh entry points, answered by the engine ----------------------------

    def refresh_needed(self, refresh_in: Optional[float] = None) -> bool:
        """botocore's question (do the credentials expire within ``refresh_in`` seconds?),
        about the engine's credentials; True when none were fetched yet."""
        if self._cached() is None:
            return True
        return bool(super().refresh_needed(refresh_in))

    def _seconds_remaining(self) -> float:
        current = self._cached()
        if current is None:
            return 0.0
        if current.expiration is None:
            return float("inf")
        return float(super()._seconds_remaining())

    def _refresh(self) -> None:
        # The engine decides whether and when (its windows, single flight, backoff).
        self.get_frozen_credentials()

    def _protected_refresh(self, is_mandatory: bool) -> None:
        # botocore's contract: a failed advisory refresh keeps the current credentials; a
        # failed mandatory one raises. The engine has already logged the failure.
        try:
            self.get_frozen_credentials()
        except Exception:
            if is_mandatory:
                raise
            logger.debug("advisory refresh failed; keeping the current credentials")

    def _metadata(self) -> dict[str, Any]:
        """``refresh_using``: the engine's credentials in botocore's metadata form."""
        current = self._engine.get()
        return refresh_metadata(self.frozen(current), current, self._account_id)


def refresh_metadata(
    frozen: Any, current: Optional[TemporaryCredentials], account_id: Optional[str]
) -> dict[str, Any]:
    """botocore's metadata form (what ``refresh_using`` returns) of ``frozen``, expiring when
    ``current`` (the engine's credentials) does; the sync and the async view both answer it."""
    expiry = None if current is None else _expiry_datetime(current)
    return {
        "access_key": frozen.access_key,
        "secret_key": frozen.secret_key,
        "token": frozen.token,
        "expiry_time": expiry.isoformat() if expiry is not None else None,
        "account_id": account_id,
    }


SIGNING_KEY_HANDLER_ID = "assume-provider-signing-key"


def record_signing_key(request: Any = None, **_: Any) -> None:
    """A ``request-created`` handler, run after botocore's signer: remember the signing key.

    An ExpiredToken answer is about exactly the credentials that signed the request: not
    newer ones from a refresh since, nor a client's own explicit credentials.
    """
    if request is None:
        return
    header = request.headers.get("Authorization")
    if isinstance(header, bytes):
        header = header.decode("ascii", "replace")
    if not header or "Credential=" not in header:
        return
    start = header.index("Credential=") + len("Credential=")
    end = header.find("/", start)
    if end > start:
        private.set_signing_key(request, header[start:end])


def retry_once_after_expired_token(
    response: Any = None, attempts: int = 1, request_dict: Any = None, **_: Any
) -> Optional[float]:
    """A botocore ``needs-retry`` handler: retry an ExpiredToken answer once, at once.

    Only requests signed with a key this package issued qualify. If that key is still its
    engine's current one, the engine is invalidated first; if a refresh has replaced it (other
    requests signed with it got there first), the retry needs no refresh. botocore signs
    every attempt afresh, so the retry carries the engine's newest credentials. Nothing here
    resolves credentials or does I/O: a client's own credentials get the service's error.
    """
    if response is None or attempts > 1:
        return None
    parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
    code = (parsed.get("Error") or {}).get("Code") if isinstance(parsed, dict) else None
    if code not in EXPIRED_TOKEN_CODES:
        return None
    key = private.signing_key(request_dict)
    engine = engine_of(key) if key is not None else None
    if engine is None:
        return None
    current = engine.current
    if current is not None and current.access_key_id == key:
        engine.invalidate(key)
    return 0.0
