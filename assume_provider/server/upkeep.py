"""What the server does to its routes besides answering them: the SIGHUP reload's decision
for each profile route and its stderr line, the sweep that stops the background refresh of
idle profile routes, and the gauges ``/metrics`` shows. ``RouteTable`` (``server/routes.py``)
holds the routes and calls these; nothing here reads a file or waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Optional, Protocol, TypeVar

from ..config.profiles import ConfigFiles
from ..engine.refresh import RefreshingCredentials


class Route(Protocol):
    """What this module reads of a route (``server/route.py``): its decisions need no more."""

    path: str
    engine: RefreshingCredentials
    idle: bool
    last_asked: float  # when a request last asked, on the engine's monotonic clock
    lifetime: float  # of the credentials last fetched, in seconds

    def state(self, now: float) -> str: ...

    def health(self, now: float) -> dict[str, Any]: ...


R = TypeVar("R", bound=Route)

#: A profile route nobody asked for during this many of its credential lifetimes stops
#: refreshing in the background: a route asked for once must not cost an AssumeRole an
#: hour forever. Two, so a client that asks once per lifetime (botocore does) never sees it.
IDLE_LIFETIMES = 2


def reloaded(
    routes: dict[str, R], build: Callable[[str], Optional[R]]
) -> tuple[dict[str, R], dict[str, list[str]]]:
    """The table after a reload, and what became of each profile route. ``build`` makes a
    route from the files just read (None: its profile is gone or configures no role). A route
    whose chain is unchanged is kept as it is, with its engine and cached credentials: the
    engine is process-wide per chain (``botocore/provider.py``'s ``shared_credentials``), so
    an equal chain builds to the same engine. A changed one is replaced by the new route,
    whose engine fetches with the new settings at its next request."""
    table = dict(routes)
    outcome: dict[str, list[str]] = {"changed": [], "unchanged": [], "removed": []}
    for path, old in list(routes.items())[1:]:  # "/" is the command line's: never reloaded
        new = build(path)
        if new is None:
            del table[path]
            outcome["removed"].append(path)
        elif new.engine is old.engine:
            outcome["unchanged"].append(path)
        else:
            new.engine.resume_prefetch()  # a process-wide engine a reload had retired
            table[path] = new
            outcome["changed"].append(path)
    return table, outcome


def retire_unused(before: Iterable[Route], after: Iterable[Route]) -> None:
    """Stop the background refresh of each engine no route serves any more."""
    kept = {id(route.engine) for route in after}
    for route in before:
        if id(route.engine) not in kept:
            route.engine.close(wait=False)


def describe_reload(files: ConfigFiles, outcome: dict[str, list[str]]) -> str:
    """One line for stderr: the files read and what became of each profile route."""
    parts = [f"{kind} {', '.join(paths)}" for kind, paths in outcome.items() if paths]
    routes = "; ".join(parts) if parts else "no profile routes yet"
    return (
        f"reload: read {files.config_path} and {files.credentials_path}: {routes}; "
        "/ keeps the command line's settings"
    )


def idle_routes(routes: list[R], ticks: float) -> list[R]:
    """The profile routes (``routes[1:]``) to stop: no request during IDLE_LIFETIMES of their
    credential lifetimes up to ``ticks``, and no route still asked for served by the same
    engine (the default route, started with equal settings, say)."""
    idle = []
    for route in routes[1:]:
        if route.idle or ticks - route.last_asked < IDLE_LIFETIMES * route.lifetime:
            continue
        if any(o.engine is route.engine and not o.idle for o in routes if o is not route):
            continue
        idle.append(route)
    return idle


def describe_idle(route: Route) -> str:
    return (
        f"route {route.path}: no request for {IDLE_LIFETIMES} credential lifetimes "
        f"({IDLE_LIFETIMES * route.lifetime:.0f} s): background refresh stopped until its "
        "next request"
    )


def health(routes: Sequence[Route], now: float, detailed: bool) -> dict[str, object]:
    """``/healthz``: the status of every route that is asked for; each route's expiry and
    last error when ``detailed`` (the token was sent), otherwise only ``/``'s and how many
    profile routes are in each state: profile names are for token holders."""
    states = [route.state(now) for route in routes if not route.idle]  # idle: expiry is fine
    status = "failing" if "failing" in states else "degraded" if "degraded" in states else "ok"
    shown = routes if detailed else routes[:1]  # "/" is always first
    answer: dict[str, object] = {"status": status, "routes": {r.path: r.health(now) for r in shown}}
    if not detailed:
        counts = dict.fromkeys(("ok", "degraded", "failing", "idle"), 0)
        for route in routes[1:]:
            counts["idle" if route.idle else route.state(now)] += 1
        answer["profile_routes"] = counts
    return answer


def expiries(routes: Sequence[Route], now: float) -> dict[str, Optional[float]]:
    """Seconds until each route's cached credentials expire (None: nothing cached)."""
    seconds: dict[str, Optional[float]] = {}
    for route in routes:
        current = route.engine.current
        expiration = current.expiration if current is not None else None
        seconds[route.path] = None if expiration is None else round(expiration - now, 3)
    return seconds
