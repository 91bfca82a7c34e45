"""One route of the server: the process-wide refreshing credentials of its settings, and what
a request, ``/healthz`` and a 503 hear of them.

A route's credentials come from ``shared_credentials`` with prefetch on, so the engine
refreshes them ahead of expiry in its background thread, single-flight; two routes of an
equal chain share one engine (a reload counts on it: ``server/upkeep.py``).

A request never waits on STS while something valid is cached: it asks the engine with
``poll()`` (no lock, no network), is served at once, and when a refresh is due it starts on
the engine's worker (``engine/offthread.py``: one flight per engine, shared with the engine's
prefetch thread). Only when nothing can be served does a request wait, and then it waits for
that same flight, with every other such request; what it is answered when that fails or
runs out is ``NothingValidToServe`` or ``RefreshInProgress``, naming the route's last failure.

Which path names which route, and what a reload or the idle sweep does to it, is the
table's business (``server/routes.py``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from typing import Any, Optional

import botocore.session

from ..botocore import provider
from ..config.settings import Settings
from ..credentials import fetcher
from ..engine import events
from ..engine.model import utc_text
from ..engine.offthread import get_off_thread
from ..engine.refresh import RefreshingCredentials, TemporaryCredentials

# The early-refresh window of a route, unless configured: longer than the 15 minutes in which
# botocore's RefreshableCredentials (every SDK client of the server) refreshes from the server
# on every call, with room for the jitter, so clients normally never see fewer than 15 minutes.
SERVER_REFRESH_WINDOW = 25 * 60


class Route:
    """One route's credentials and what ``/healthz`` says about them."""

    def __init__(self, path: str, settings: Settings, session: botocore.session.Session) -> None:
        self.path = path
        window = settings.refresh_window_seconds
        self.settings = dataclasses.replace(
            settings,
            prefetch=True,
            refresh_window_seconds=SERVER_REFRESH_WINDOW if window is None else window,
        )
        self.account_id = fetcher.account_of(self.settings.role_arns[-1])
        self.engine: RefreshingCredentials = provider.shared_credentials(
            self.settings, session
        ).engine
        self.last_failure: Optional[events.RefreshEvent] = None  # the last failed attempt
        # The engine's failed attempts whose event this route has heard, and who waits for the
        # next: the engine hands a flight's result to its waiters before its events to
        # listeners, so a request that got expired credentials back may be ahead of the
        # failure's event, which is what its 503 must name (``failure_heard``).
        self._failures_heard = self.engine.stats.failures
        self._hearing: list[concurrent.futures.Future[None]] = []
        self._heard_lock = threading.Lock()
        # For the idle sweep (``RouteTable.sweep_idle``): when a request last asked (the
        # engine's monotonic clock), the lifetime of the credentials last fetched, and whether
        # the background refresh stopped.
        self.last_asked = fetcher.monotonic()
        self.lifetime = float(self.settings.duration_seconds)
        self.idle = False

    def asked(self) -> bool:
        """A request asks for this route now; True if that ends its idleness (its background
        refresh starts again; the request is served, or waits for a fetch, as any other)."""
        self.last_asked = fetcher.monotonic()
        if not self.idle:
            return False
        self.idle = False
        self.engine.resume_prefetch()
        return True

    def stop_background_refresh(self) -> None:
        self.idle = True
        self.engine.close(wait=False)  # on the event loop: never waits for a refresh

    def served_now(self) -> Optional[TemporaryCredentials]:
        """Valid credentials to serve without waiting (a due refresh starts on the engine's
        worker), or None: nothing valid is cached, and the caller must wait for ``refresh()``
        and check what it gives with ``servable()``.

        Stricter than the engine about expiry, and about errors: credentials that are still
        valid are served even while the engine raises a remembered error (AccessDenied, for a
        few seconds) to its callers.
        """
        try:
            cached, due = self.engine.poll()
        except Exception:
            still_valid = self.still_valid()
            if still_valid is not None:
                return still_valid
            raise
        if due:
            self.refresh()  # not waited for: the refresh events say how it went
        if cached is None or self.expired(cached):
            return None
        return cached

    def still_valid(self) -> Optional[TemporaryCredentials]:
        """The cached credentials if they have not expired, whatever the engine would do: what
        a request serves when its wait for the refresh fails or runs out (the last minute
        before expiry, with STS failing or slow) rather than a 503."""
        current = self.engine.current
        if current is None or self.expired(current):
            return None
        return current

    def refresh(self) -> concurrent.futures.Future[TemporaryCredentials]:
        """The engine's refresh on its worker thread, or the one in flight (single flight per
        engine: every request, the prefetch thread and the async view share it)."""
        return get_off_thread(self.engine)

    def servable(self, credentials: TemporaryCredentials) -> TemporaryCredentials:
        """``credentials`` (what the refresh gave), or ``NothingValidToServe`` when they have
        expired (STS still failing: the engine serves them during its backoff, but a client
        can sign nothing with them)."""
        if self.expired(credentials):
            raise NothingValidToServe(self, credentials)
        return credentials

    def expired(self, credentials: TemporaryCredentials) -> bool:
        """Expired on the engine's clock: never served (AWS refuses them)."""
        expiration = credentials.expiration
        return expiration is not None and expiration <= fetcher.clock()  # the engine's clock

    @property
    def last_error(self) -> Optional[str]:
        """The error code of the engine's latest attempt, if it failed: read from the engine,
        which knows it before the attempt's waiters do (its event may still be on its way)."""
        error = self.engine.last_error
        return events.error_code_of(error) if error is not None else None

    def failure_heard(self) -> Optional[concurrent.futures.Future[None]]:
        """None when the event of every failed attempt of the engine has reached this route
        (``last_failure`` is the latest); otherwise a future set when the next one has."""
        with self._heard_lock:
            if self._failures_heard >= self.engine.stats.failures:
                return None
            heard: concurrent.futures.Future[None] = concurrent.futures.Future()
            heard.set_running_or_notify_cancel()  # a waiter giving up cannot cancel it
            self._hearing.append(heard)
            return heard

    def hear(self, event: events.RefreshEvent) -> None:
        """Take in one refresh event of this route's engine (from the refresh listener)."""
        with self._heard_lock:
            if event.kind != events.REFRESHED:
                self.last_failure = event
                self._failures_heard += 1
            elif event.expiration is not None:
                self.lifetime = max(1.0, event.expiration - fetcher.clock())
            waiting, self._hearing = self._hearing, []
        for heard in waiting:
            heard.set_result(None)

    def credentials(self) -> TemporaryCredentials:
        """Credentials to serve now, blocking the calling thread only when nothing valid is
        cached (serve's warm-up thread; the event loop never calls this)."""
        return self.served_now() or self.servable(self.engine.get())

    def health(self, now: float) -> dict[str, Any]:
        current = self.engine.current
        expires_in: Optional[int] = None
        if current is not None and current.expiration is not None:
            expires_in = int(current.expiration - now)
        return {"expires_in": expires_in, "last_error": self.last_error}

    def state(self, now: float) -> str:
        """ok, degraded (served, but the last attempt failed or they expired) or failing."""
        current = self.engine.current
        if current is None:
            return "failing"
        if self.last_error is not None:
            return "degraded"
        if current.expiration is not None and current.expiration <= now:
            return "degraded"
        return "ok"


class NothingValidToServe(RuntimeError):
    """Only expired credentials are cached and the last refresh failed: a 503 naming it."""

    def __init__(self, route: Route, credentials: TemporaryCredentials) -> None:
        failure = route.last_failure
        self.error_code = failure.error_code if failure is not None else "ExpiredToken"
        cause = failure.error_message if failure is not None else "no refresh has succeeded"
        super().__init__(
            f"the credentials of route {route.path} expired at "
            f"{utc_text(credentials.expiration)} and the last refresh failed: {cause}"
        )


class RefreshInProgress(RuntimeError):
    """A request with nothing to serve waited ``max_wait`` and the refresh is still going."""

    def __init__(self, route: Route, waited: float) -> None:
        failure = route.last_failure
        self.error_code = failure.error_code if failure is not None else "RefreshInProgress"
        last = f"; the last attempt failed: {failure.error_message}" if failure else ""
        super().__init__(
            f"no credentials for route {route.path} yet: the refresh of "
            f"{', '.join(route.settings.role_arns)} has run {waited:g} s (STS slow or "
            f"throttling){last}; retry"
        )
