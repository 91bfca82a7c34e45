"""The server's routes: which URL path names which route, and the table that holds them.

``/`` is the chain the server was started with; ``/profile/NAME`` is the chain that profile
configures (its ``assume_provider_*`` keys and its source, resolved by config/ as for any
session of that profile, never the server's own options or ``ASSUME_PROVIDER_*``
variables), created at its first request. One route's credentials, and how a request is
served from them, are ``server/route.py``'s.

Operations: ``RouteTable.reload`` (SIGHUP) re-reads the config files for every profile
route; ``RouteTable.sweep_idle`` stops the background refresh of a profile route nobody
has asked for during two of its credential lifetimes, and its next request starts it
again (both decided in ``server/upkeep.py``; the event loop's timers call them:
``server/upkeep_timers.py``); the table hears every refresh event, hands each to its route
and keeps the server's counters (``server/metrics.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Optional

import botocore.session

from ..config.inputs import ENV_PREFIX, SettingInputs
from ..config.profiles import ConfigFiles, ProfileChoice
from ..config.settings import resolve_settings
from ..credentials import fetcher
from ..engine import events
from ..engine.model import utc_text
from ..errors import ConfigError
from . import upkeep
from .metrics import ServerMetrics
from .route import Route

PROFILE_PREFIX = "/profile/"


class UnknownRoute(LookupError):
    """No such route (an unknown profile, or one that configures no role)."""


def server_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a profile route resolves against: no ``ASSUME_PROVIDER_*`` settings."""
    return {k: v for k, v in environ.items() if not k.startswith(ENV_PREFIX)}


class RouteTable:
    """Every route the server has served, created on first request; listens to refresh events."""

    def __init__(
        self,
        default: Route,
        *,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self._routes: dict[str, Route] = {"/": default}
        self._environ = environ
        self._clock = clock
        self._log = log
        self._lock = threading.Lock()  # only while a profile route is created or reloaded
        self.metrics = ServerMetrics()
        events.add_refresh_listener(self._on_event)

    def close(self, wait: bool = True) -> None:
        """Stop listening to events and each route's prefetch thread (``wait``: see
        ``RefreshingCredentials.close``; serve's exit does not wait for a refresh at STS)."""
        events.remove_refresh_listener(self._on_event)
        for route in list(self._routes.values()):
            route.engine.close(wait)

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def known(self, path: str) -> Optional[Route]:
        """The route of ``path`` if it has been created already (never blocks)."""
        return self._routes.get(path)

    def lookup(self, path: str) -> Route:
        """The route for a request path; UnknownRoute for anything else."""
        route = self._routes.get(path)
        if route is not None:
            return route
        if not path.startswith(PROFILE_PREFIX):
            raise UnknownRoute(f"no route {path}; routes are / and /profile/NAME")
        name = path[len(PROFILE_PREFIX) :]
        if not name or "/" in name:
            raise UnknownRoute(f"no route {path}; routes are / and /profile/NAME")
        with self._lock:
            route = self._routes.get(path)
            if route is None:
                route = self._profile_route(path, name)
                route.engine.resume_prefetch()  # a shared engine a reload had retired
                self._routes = {**self._routes, path: route}
        return route

    def _profile_route(self, path: str, name: str, files: Optional[ConfigFiles] = None) -> Route:
        environ = server_environment(self._environ)
        files = files or ConfigFiles.from_environment(environ)
        inputs = SettingInputs({}, environ, ProfileChoice(name, f"route {path}"), files)
        if inputs.profile_values() is None:
            where = f"{files.config_path} or {files.credentials_path}"
            raise UnknownRoute(f"no profile '{name}' in {where}")
        settings = resolve_settings(inputs)  # ConfigError for an invalid key: the caller says so
        if not settings.active:
            raise UnknownRoute(f"profile '{name}' configures no assume_provider_role_arn")
        session = botocore.session.Session(profile=name)
        return Route(path, settings, session)

    def health(self, detailed: bool = True) -> dict[str, Any]:
        """``/healthz`` (``upkeep.health``: profile routes named only when ``detailed``)."""
        return upkeep.health(self.routes(), self._clock(), detailed)

    def expiries(self) -> dict[str, Optional[float]]:
        return upkeep.expiries(self.routes(), self._clock())

    def idle(self) -> dict[str, bool]:
        return {route.path: route.idle for route in self.routes()[1:]}

    def asked(self, route: Route) -> None:
        """A request asks for ``route`` (on the event loop)."""
        if route.asked():
            self._log(f"route {route.path}: asked again: background refresh started")

    def sweep_idle(self) -> list[str]:
        """Stop the background refresh of each idle profile route (``upkeep.idle_routes``;
        on the event loop: no I/O, no waiting)."""
        stopped = upkeep.idle_routes(self.routes(), fetcher.monotonic())
        for route in stopped:
            route.stop_background_refresh()
            self._log(upkeep.describe_idle(route))
        return [route.path for route in stopped]

    def reload(self, applying: Callable[[], None] = lambda: None) -> str:
        """Re-read the AWS config files for every profile route (SIGHUP; off the event loop:
        it reads files): unchanged ones keep their cached credentials, changed ones fetch
        with the new settings at their next request, removed ones answer 404
        (``upkeep.reloaded``); ``/`` keeps the command line's settings. A file that cannot
        be parsed changes nothing. ``applying`` runs just before the new table is in place,
        and only then (the server forgets its allow lists there: a refused reload must not
        change them either). Returns the stderr line it logged."""
        with self._lock:
            files = ConfigFiles.from_environment(server_environment(self._environ))

            def build(path: str) -> Optional[Route]:
                try:
                    return self._profile_route(path, path[len(PROFILE_PREFIX) :], files)
                except UnknownRoute:
                    return None

            before = self.routes()
            try:
                table, outcome = upkeep.reloaded(self._routes, build)
            except ConfigError as exc:
                line = f"reload: config files not reloaded, routes unchanged: {exc}"
                self._log(line)
                return line
            applying()
            self._routes = table  # one assignment: the event loop reads it without the lock
        upkeep.retire_unused(before, table.values())
        line = upkeep.describe_reload(files, outcome)
        self._log(line)
        return line

    def _on_event(self, event: events.RefreshEvent) -> None:
        for route in self.routes():
            if id(route.engine) != event.credentials_id:
                continue
            route.hear(event)
            result = "refreshed" if event.kind == events.REFRESHED else event.error_code
            self.metrics.count_refresh(route.path, result or "unknown")
            self._log(describe_event(route.path, event))


def describe_event(path: str, event: events.RefreshEvent) -> str:
    """One line for stderr: the route, what happened, the key ID and expiry; never a secret."""
    expiry = utc_text(event.expiration)
    took = f"{event.elapsed_seconds:.2f} s"
    if event.kind == events.REFRESHED:
        return f"route {path}: refreshed: {event.access_key_id} until {expiry} ({took})"
    stale = f"; serving {event.access_key_id} (until {expiry})" if event.access_key_id else ""
    return f"route {path}: {event.kind}: {event.error_code}: {event.error_message}{stale} ({took})"
