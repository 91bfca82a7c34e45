"""aiobotocore's view of the refresh engine: what aiobotocore's signers and users await.

``await get_frozen_credentials()`` asks the engine without ever waiting (``poll()``): valid
credentials are one clock read and a comparison, on the loop, with no thread hop. When a
refresh is due it runs ``engine.get()`` off the loop with the engine's off-thread helper
(``engine/offthread.py``), so the loop never waits on STS or IMDS; a task awaits that
flight only when there is nothing valid to serve. All tasks, loops and threads (and the
server and the prefetch thread) share one flight per engine, and the engine's own lock
makes it one refresh with sync callers too.

The flight is a ``concurrent.futures.Future``, not an asyncio object: each waiter wraps it for
its own running loop at the moment it waits, so several loops in threads, ``asyncio.run()``
called twice, and a forked child (where the flight is forgotten) all work.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Optional

import aiobotocore.credentials

from ..botocore.credentials import EngineCredentials, EngineView, refresh_metadata
from ..credentials import fetcher as _fetcher
from ..credentials.fetcher import engine_now
from ..engine.forksafe import ForkSafeLock
from ..engine.offthread import get_off_thread
from ..engine.refresh import RefreshingCredentials


def engine_clock() -> float:
    return _fetcher.clock()  # looked up at each call: tests replace the engine's clock


_views_lock = ForkSafeLock()
_views: weakref.WeakKeyDictionary[EngineCredentials, AioEngineCredentials] = (
    weakref.WeakKeyDictionary()
)


def async_view(credentials: EngineCredentials) -> AioEngineCredentials:
    """The one async view of ``credentials`` (so all async sessions share its flight)."""
    with _views_lock:
        view = _views.get(credentials)
        if view is None:
            view = _views[credentials] = AioEngineCredentials(credentials)
        return view


class AioEngineCredentials(EngineView, aiobotocore.credentials.AioRefreshableCredentials):  # type: ignore[misc]
    """An ``AioRefreshableCredentials`` whose credentials and refresh decisions are the engine's.

    Built on the sync view (``EngineCredentials``) of the same engine: that publishes botocore's
    frozen tuple once per refresh and records each key it hands out, which the ExpiredToken
    retry (the same handler for sync and async clients) relies on.
    """

    def __init__(self, view: EngineCredentials) -> None:
        self._view = view
        self._engine: RefreshingCredentials = view.engine
        super().__init__(
            access_key="",
            secret_key="",
            token=None,
            expiry_time=None,
            refresh_using=self._metadata,
            method=view.method,
            time_fetcher=engine_now,
            account_id=view.account_id,
        )

    def _create_lock(self) -> Any:
        # aiobotocore's _refresh would take it; ours never does. A threading lock, because an
        # asyncio.Lock belongs to one event loop.
        return threading.Lock()

    @property
    def issued_keys(self) -> tuple[str, ...]:
        return self._view.issued_keys

    # -- what aiobotocore's signers and users await ----------------------------------------

    async def get_frozen_credentials(self) -> Any:
        current, due = self._engine.poll()
        if current is None:  # nothing valid to serve: wait for the worker thread
            current = await asyncio.wrap_future(get_off_thread(self._engine))
        elif due:  # early: refresh in the background, serve the valid ones now
            get_off_thread(self._engine)
        return self._view.frozen(current)

    async def get_account_id(self) -> Optional[str]:
        # Known from the last role's ARN: endpoint resolution reads it with no fetch.
        return self._view.account_id

    async def get_access_key(self) -> str:
        return str((await self.get_frozen_credentials()).access_key)

    async def get_secret_key(self) -> str:
        return str((await self.get_frozen_credentials()).secret_key)

    async def get_token(self) -> Optional[str]:
        token = (await self.get_frozen_credentials()).token
        return None if token is None else str(token)

    # aiobotocore's properties raise NotImplementedError (they cannot await a refresh). These
    # answer from credentials the engine can serve now, and raise the same way only when
    # there are none (a refresh must be awaited first).
    def _serving(self) -> Any:
        current, _due = self._engine.poll()
        if current is None:
            # Nothing that may be served without a refresh (none fetched yet, or past the
            # blocking window): a property cannot await one, as in aiobotocore.
            raise NotImplementedError(
                "no credentials to serve without a refresh: await get_frozen_credentials()"
            )
        return self._view.frozen(current)

    @property
    def account_id(self) -> Optional[str]:
        return self._view.account_id

    @account_id.setter
    def account_id(self, value: Optional[str]) -> None:
        self._account_id = value

    # -- aiobotocore's refresh entry points, answered by the engine --------------------------

    def refresh_needed(self, refresh_in: Optional[float] = None) -> bool:
        return bool(self._view.refresh_needed(refresh_in))

    def _seconds_remaining(self) -> float:
        current = self._engine.current
        if current is None:
            return 0.0
        if current.expiration is None:
            return float("inf")
        return current.expiration - engine_clock()

    async def _refresh(self) -> None:
        await self.get_frozen_credentials()

    async def _protected_refresh(self, is_mandatory: bool) -> None:
        try:
            await self.get_frozen_credentials()
        except Exception:
            if is_mandatory:
                raise

    async def _metadata(self) -> dict[str, Any]:
        """``refresh_using``: the engine's credentials in botocore's metadata form."""
        frozen = await self.get_frozen_credentials()
        return refresh_metadata(frozen, self._engine.current, self._view.account_id)
