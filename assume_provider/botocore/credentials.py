"""botocore's view of the refresh engine: a Credentials object that signers and users call.

botocore signs every request with ``get_frozen_credentials()``; this answers from the engine,
whose hot path is one clock read and one comparison, and rebuilds botocore's frozen tuple
only when the engine hands out new credentials.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Optional

import botocore.credentials

from ..credentials.chain import EXPIRED_TOKEN_CODES
from ..engine.refresh import RefreshingCredentials, TemporaryCredentials


class EngineCredentials(botocore.credentials.RefreshableCredentials):  # type: ignore[misc]
    """A ``RefreshableCredentials`` whose state lives in a RefreshingCredentials engine."""

    # RefreshableCredentials.__init__ is deliberately not called: it wants initial
    # credentials, and its refresh logic (per-object, blocking) is what the engine replaces.
    def __init__(
        self, engine: RefreshingCredentials, method: str, account_id: Optional[str] = None
    ) -> None:
        self._engine = engine
        self.method = method
        self._account_id = account_id
        self._snapshot: Optional[tuple[TemporaryCredentials, Any]] = None

    @property
    def engine(self) -> RefreshingCredentials:
        return self._engine

    def get_frozen_credentials(self) -> Any:
        current = self._engine.get()
        snapshot = self._snapshot
        if snapshot is not None and snapshot[0] is current:
            return snapshot[1]
        frozen = botocore.credentials.ReadOnlyCredentials(
            current.access_key_id,
            current.secret_access_key,
            current.session_token,
            self._account_id,
        )
        self._snapshot = (current, frozen)  # one assignment: readers see old or new, whole
        return frozen

    @property
    def access_key(self) -> str:
        return str(self.get_frozen_credentials().access_key)

    @property
    def secret_key(self) -> str:
        return str(self.get_frozen_credentials().secret_key)

    @property
    def token(self) -> Optional[str]:
        token = self.get_frozen_credentials().token
        return None if token is None else str(token)

    @property
    def account_id(self) -> Optional[str]:
        return self._account_id

    @property
    def _expiry_time(self) -> Optional[datetime.datetime]:
        current = self._engine.current
        if current is None or current.expiration is None:
            return None
        return datetime.datetime.fromtimestamp(current.expiration, datetime.timezone.utc)

    def refresh_needed(self, refresh_in: Optional[float] = None) -> bool:
        # The engine decides; botocore's callers only use this to decide whether to refresh.
        return False

    def invalidate(self, access_key_id: Optional[str] = None) -> None:
        """Route the next call through a refresh (after a service answered ExpiredToken)."""
        self._engine.invalidate(access_key_id)

    def __repr__(self) -> str:
        current = self._engine.current
        key = current.access_key_id if current else None
        return f"<EngineCredentials method={self.method!r} access_key_id={key!r}>"


SIGNING_KEY_HANDLER_ID = "assume-provider-signing-key"
# Where the access key ID that signed a request is kept, in botocore's per-request context.
_SIGNING_KEY = "assume_provider_signing_key"


def record_signing_key(request: Any = None, **_: Any) -> None:
    """A ``request-created`` handler, run after botocore's signer: remember the signing key.

    An ExpiredToken answer must invalidate exactly the credentials that signed the request:
    not newer ones from a refresh since, nor a client's own explicit credentials.
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
        request.context[_SIGNING_KEY] = header[start:end]


def retry_once_after_expired_token(session: Any) -> Callable[..., Optional[float]]:
    """A botocore ``needs-retry`` handler: on ExpiredToken, invalidate and retry once at once.

    botocore signs every attempt afresh, so the retry is signed with refreshed credentials
    and the application never sees the error. Only requests signed with this provider's
    current credentials qualify.
    """

    def handler(
        response: Any = None, attempts: int = 1, request_dict: Any = None, **_: Any
    ) -> Optional[float]:
        if response is None or attempts > 1 or not isinstance(request_dict, dict):
            return None
        parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
        code = (parsed.get("Error") or {}).get("Code") if isinstance(parsed, dict) else None
        signing_key = (request_dict.get("context") or {}).get(_SIGNING_KEY)
        if code not in EXPIRED_TOKEN_CODES or signing_key is None:
            return None
        credentials = session.get_credentials()  # resolved already: a request was signed
        if not isinstance(credentials, EngineCredentials):
            return None
        current = credentials.engine.current
        if current is None or current.access_key_id != signing_key:
            return None
        credentials.invalidate(signing_key)
        return 0.0

    return handler
