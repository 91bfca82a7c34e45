"""The engine beyond the shared scenarios: jitter, prefetch, invalidation, error memory, secrets."""

from __future__ import annotations

import ast
import logging
import random
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
from refresh_fakes import T0, AccessDenied, FakeClock, SourceDown

import assume_provider.engine.refresh as refresh_module
from assume_provider.engine.events import (
    REFRESHED,
    RefreshEvent,
    add_refresh_listener,
    remove_refresh_listener,
)
from assume_provider.engine.refresh import (
    RefreshingCredentials,
    StaleCredentialsError,
    TemporaryCredentials,
    advisory_window_for,
)
from assume_provider.engine.schedule import JITTER_FRACTION

TIMEOUT = 60.0  # failure-only: a wait that ends early on success


class Source:
    """Returns credentials living `lifetime` seconds, or raises `error` if set."""

    def __init__(self, clock: FakeClock, lifetime: Optional[float] = 3600.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.error: Optional[Exception] = None
        self.last: Optional[TemporaryCredentials] = None

    def __call__(self) -> TemporaryCredentials:
        self.calls += 1
        if self.error is not None:
            raise self.error
        expiration = None if self.lifetime is None else self.clock.now + self.lifetime
        self.last = TemporaryCredentials(
            f"AKID-{self.calls}", f"SECRET-{self.calls}", f"TOKEN-{self.calls}", expiration
        )
        return self.last


def make(
    lifetime: Optional[float] = 3600.0, draw: float = 0.0, **kwargs: object
) -> tuple[RefreshingCredentials, Source, FakeClock]:
    clock = FakeClock()
    source = Source(clock, lifetime)
    engine = RefreshingCredentials(
        source,
        clock=clock,
        monotonic=clock.monotonic,
        random=lambda: draw,
        **kwargs,  # type: ignore[arg-type]
    )
    return engine, source, clock


# -- advisory window and jitter --------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "window"),
    [
        (0, 300),
        (900, 300),
        (1200, 300),
        (1201, 900),
        (3600, 900),
        (5400, 900),
        (5401, 3600),
        (43200, 3600),
    ],
)
def test_advisory_window_table(lifetime: float, window: float) -> None:
    assert advisory_window_for(lifetime) == window


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999])
def test_jitter_places_refresh_in_first_part_of_window(draw: float) -> None:
    engine, source, clock = make(lifetime=3600, draw=draw)
    engine.get()
    expiration = T0 + 3600
    start, blocking = expiration - 900, expiration - 60
    expected = start + draw * JITTER_FRACTION * (blocking - start)
    assert engine.refresh_at == pytest.approx(expected)
    assert start <= expected < blocking

    clock.now = expected - 0.001
    engine.get()
    assert source.calls == 1  # not yet: this credential's jittered start lies ahead
    clock.now = expected
    engine.get()
    assert source.calls == 2


def test_jitter_spreads_a_fleet_started_together() -> None:
    rng = random.Random(7)
    starts = []
    for _ in range(200):
        clock = FakeClock()
        engine = RefreshingCredentials(
            Source(clock), clock=clock, monotonic=clock.monotonic, random=rng.random
        )
        engine.get()
        assert engine.refresh_at is not None
        starts.append(engine.refresh_at - T0)
    assert min(starts) >= 3600 - 900
    assert max(starts) < 3600 - 60
    assert max(starts) - min(starts) > 0.8 * JITTER_FRACTION * (900 - 60)


def test_short_lived_credentials_are_not_refreshed_on_every_call() -> None:
    engine, source, clock = make(lifetime=200)  # shorter than the 5-minute window
    engine.get()
    for _ in range(10):
        engine.get()
    assert source.calls == 1
    clock.now += 50  # a quarter of the lifetime: now it is due
    engine.get()
    assert source.calls == 2


def test_never_expiring_credentials_never_refresh_until_invalidated() -> None:
    engine, source, clock = make(lifetime=None)
    first = engine.get()
    clock.now += 10 * 365 * 86400
    assert engine.get() is first
    assert engine.advisory_window is None
    engine.invalidate()
    assert engine.get() is not first
    assert source.calls == 2


# -- invalidate ------------------------------------------------------------------------


def test_invalidate_without_key_forces_a_refresh() -> None:
    engine, source, _ = make()
    first = engine.get()
    engine.invalidate()
    second = engine.get()
    assert second is not first and source.calls == 2
    assert engine.get() is second  # back on the hot path
    assert source.calls == 2


def test_invalidate_stale_key_and_empty_cache_change_nothing() -> None:
    engine, source, _ = make()
    engine.invalidate("AKID-1")  # nothing cached yet
    first = engine.get()
    engine.invalidate("AKID-OTHER")
    assert engine.get() is first
    assert source.calls == 1


def test_invalidate_failed_refresh_keeps_trying_after_backoff() -> None:
    engine, source, clock = make()
    first = engine.get()
    engine.invalidate(first.access_key_id)
    source.error = SourceDown("throttled")
    assert engine.get() is first
    assert engine.get() is first  # rate limited: still valid, but invalidated
    assert source.calls == 2 and engine.stats.rate_limited == 1
    clock.now += 300  # the backoff with draw 0
    source.error = None
    assert engine.get() is not first
    assert source.calls == 3


# -- error memory and failures ---------------------------------------------------------


def test_fatal_error_is_remembered_then_forgotten() -> None:
    engine, source, clock = make()
    source.error = AccessDenied("AccessDenied")
    for _ in range(3):
        with pytest.raises(AccessDenied):
            engine.get()
    assert source.calls == 1
    clock.now += 4.9
    with pytest.raises(AccessDenied):
        engine.get()
    assert source.calls == 1
    clock.now += 0.2
    source.error = None
    engine.get()
    assert source.calls == 2


def test_remembered_error_traceback_does_not_grow() -> None:
    engine, source, _ = make()
    source.error = AccessDenied("AccessDenied")
    depths = []
    for _ in range(5):
        with pytest.raises(AccessDenied) as info:
            engine.get()
        tb, depth = info.value.__traceback__, 0
        while tb is not None:
            tb, depth = tb.tb_next, depth + 1
        depths.append(depth)
    assert len(set(depths[1:])) == 1


def test_custom_is_recoverable_and_error_memory() -> None:
    engine, source, clock = make(is_recoverable=lambda exc: False, error_memory=1.0)
    source.error = SourceDown("treated as fatal")
    with pytest.raises(SourceDown):
        engine.get()
    clock.now += 1.0
    with pytest.raises(SourceDown):
        engine.get()
    assert source.calls == 2


def test_stale_answer_with_nothing_cached_raises() -> None:
    engine, _, _ = make(lifetime=0)
    with pytest.raises(StaleCredentialsError, match="AKID-1"):
        engine.get()
    assert engine.current is None


def test_backoff_is_drawn_from_the_configured_range() -> None:
    for draw, backoff in [(0.0, 300), (0.5, 450), (0.999, 599.7)]:
        engine, source, clock = make(draw=draw)
        engine.get()
        clock.now += 3600  # expired
        source.error = SourceDown("down")
        engine.get()
        clock.now += backoff - 0.01
        engine.get()
        assert source.calls == 2
        clock.now += 0.02
        engine.get()
        assert source.calls == 3


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="backoff"):
        make(backoff=(600.0, 300.0))
    with pytest.raises(ValueError, match="mandatory_window"):
        make(mandatory_window=-1.0)


# -- secrets ---------------------------------------------------------------------------


def test_reprs_hide_secrets() -> None:
    creds = TemporaryCredentials("AKID-X", "TOPSECRET", "SESSIONTOKEN", T0)
    for text in (repr(creds), str(creds), f"{creds}"):
        assert "AKID-X" in text and "TOPSECRET" not in text and "SESSIONTOKEN" not in text
    engine = RefreshingCredentials(lambda: creds, initial=creds)
    assert "AKID-X" in repr(engine) and "TOPSECRET" not in repr(engine)


def test_failure_is_logged_at_warning_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    engine, source, clock = make(draw=0.5)
    first = engine.get()
    clock.now += 3600
    source.error = SourceDown("Throttling: Rate exceeded")
    with caplog.at_level(logging.DEBUG, logger="assume_provider.engine.refresh"):
        engine.get()
        engine.invalidate()
        source.error = None
        clock.now += 450
        engine.get()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "Throttling: Rate exceeded" in message and "450 s" in message
    assert first.access_key_id in message
    everything = caplog.text
    assert "SECRET-" not in everything and "TOKEN-" not in everything


# -- prefetch --------------------------------------------------------------------------


def test_prefetch_step_refreshes_at_the_window_start() -> None:
    engine, source, clock = make()
    engine.get()
    assert engine.refresh_at == T0 + 3600 - 900
    assert engine._prefetch_step() == 60.0  # capped: re-read the clock at least every minute
    clock.now = T0 + 3600 - 900 - 10
    assert engine._prefetch_step() == pytest.approx(10.0)
    assert source.calls == 1
    clock.now += 10
    assert engine._prefetch_step() == 60.0
    assert source.calls == 2
    assert engine.get() is source.last  # request threads find fresh credentials
    assert source.calls == 2


def test_prefetch_step_respects_backoff() -> None:
    engine, source, clock = make()
    engine.get()
    clock.now = T0 + 3600 - 900
    source.error = SourceDown("down")
    assert engine._prefetch_step() == 60.0  # backed off for 300 s (draw 0); re-check each minute
    clock.now += 299
    assert engine._prefetch_step() == pytest.approx(1.0)
    assert source.calls == 2
    source.error = AccessDenied("AccessDenied")
    clock.now += 1
    assert engine._prefetch_step() == 300.0  # a fatal error: the thread backs off as well
    assert source.calls == 3


def test_prefetch_thread_refreshes_and_close_stops_it() -> None:
    clock = FakeClock()
    published = threading.Event()
    new = TemporaryCredentials("AKID-NEW", "S", "T", T0 + 3600)

    def fetch() -> TemporaryCredentials:
        return new

    def on_refresh(event: RefreshEvent) -> None:
        # Listeners run after the engine has published the attempt's outcome.
        if event.kind == REFRESHED and event.access_key_id == "AKID-NEW":
            published.set()

    due = TemporaryCredentials("AKID-OLD", "S", "T", T0 + 90)
    add_refresh_listener(on_refresh)  # before the thread starts, so no event is missed
    try:
        engine = RefreshingCredentials(
            fetch,
            clock=clock,
            monotonic=clock.monotonic,
            random=lambda: 0.0,
            initial=due,
            prefetch=True,
        )
    except BaseException:
        remove_refresh_listener(on_refresh)
        raise
    try:
        thread = engine._prefetcher.thread
        assert thread is not None and thread.daemon
        assert published.wait(TIMEOUT)
        assert engine.current is new
    finally:
        engine.close()
        remove_refresh_listener(on_refresh)
    assert not thread.is_alive()
    assert engine.get() is new


def test_with_prefetch_callers_leave_the_thread_time_to_go_first() -> None:
    engine, source, clock = make(prefetch=True)
    try:
        engine.close()  # stop the thread; drive the steps by hand
        engine.get()
        start = T0 + 3600 - 900
        clock.now = start + 29
        engine.get()
        assert source.calls == 1  # the thread's turn: callers are still served the cache
        clock.now = start + 30
        engine.get()
        assert source.calls == 2  # the thread never came: one caller refreshes
    finally:
        engine.close()


def test_prefetch_off_by_default() -> None:
    engine, _, _ = make()
    engine.get()
    assert engine._prefetcher is None  # no thread, and none of its machinery


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` but those only the type checker reads (``if TYPE_CHECKING:``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            yield from (item for branch in node.orelse for item in _runtime_nodes_of(branch))
            continue
        yield from _runtime_nodes_of(node)


def _runtime_nodes_of(node: ast.AST) -> Iterator[ast.AST]:
    yield node
    yield from _runtime_nodes(node)


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names is 3.10+")
def test_engine_imports_only_the_standard_library() -> None:
    """refresh.py and every engine module it imports, transitively: stdlib and each other."""
    engine_dir = Path(refresh_module.__file__).parent
    seen: set[str] = set()
    pending = ["refresh"]
    imported: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((engine_dir / f"{name}.py").read_text(encoding="utf-8"))
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module, f"{name}.py leaves engine/"
                pending.append(node.module)  # a sibling in engine/: check it as well
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert {"schedule", "policy", "prefetch"} <= seen
    assert imported
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


# -- a backoff never outlasts the credentials it protects ------------------------------


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_refresh_failing_30s_before_expiry_is_retried_within_a_minute_of_expiry(
    draw: float,
) -> None:
    engine, source, clock = make(draw=draw)  # a 300-600 s backoff once it fails
    first = engine.get()
    expiration = T0 + 3600
    clock.now = expiration - 30  # blocking window: this caller waits for the refresh
    source.error = SourceDown("Throttling: Rate exceeded")
    assert engine.get() is first
    assert source.calls == 2
    source.error = None  # the source is back

    contacted_at = None
    while clock.now <= expiration + 60:  # a caller asks every 10 s of fake time
        clock.now += 10
        served = engine.get()
        if source.calls == 3:
            contacted_at = clock.now
            break
        assert served is first  # the backoff still holds: the cache is served
    assert contacted_at is not None, "the source was not contacted within a minute of expiry"
    assert expiration <= contacted_at <= expiration + 60
    assert served is source.last and served is not first


def test_backoff_while_valid_ends_at_expiry_then_the_full_backoff_resumes() -> None:
    engine, source, clock = make(draw=0.5)  # 450 s
    first = engine.get()
    expiration = T0 + 3600
    clock.now = expiration - 30
    source.error = SourceDown("down")
    assert engine.get() is first
    clock.now = expiration - 0.001
    assert engine.get() is first  # inside the backoff, which ends when the credentials do
    assert source.calls == 2 and engine.stats.rate_limited == 1
    engine.invalidate()
    assert engine.get() is first  # no contact during a backoff, even after an invalidate
    assert source.calls == 2

    clock.now = expiration
    assert engine.get() is first  # retried at expiry; fails again; expired ones are served
    assert source.calls == 3
    clock.now = expiration + 450 - 0.01  # expired credentials: the whole drawn backoff
    assert engine.get() is first
    assert source.calls == 3
    source.error = None
    clock.now += 0.02
    assert engine.get() is source.last
    assert source.calls == 4


def test_backoff_far_from_expiry_is_not_shortened() -> None:
    engine, source, clock = make(draw=0.5)  # 450 s
    first = engine.get()
    clock.now = T0 + 3600 - 600  # early window, 10 minutes left
    source.error = SourceDown("down")
    engine.get()
    clock.now += 450 - 0.01
    assert engine.get() is first
    assert source.calls == 2
    clock.now += 0.02
    engine.get()
    assert source.calls == 3


def test_prefetch_sleep_after_a_failure_ends_at_expiry() -> None:
    engine, source, clock = make(draw=0.5)  # 450 s
    engine.get()
    expiration = T0 + 3600
    clock.now = expiration - 30
    source.error = SourceDown("down")
    assert engine._prefetch_step() == pytest.approx(30.0)  # the backoff ends at expiry
    assert source.calls == 2
    source.error = AccessDenied("AccessDenied")
    clock.now = expiration  # the backoff is over: the thread tries again, fatally
    assert engine._prefetch_step() == pytest.approx(450.0)  # expired: the full backoff
    assert source.calls == 3

    engine, source, clock = make(draw=0.5)
    engine.get()
    clock.now = expiration - 30
    source.error = AccessDenied("AccessDenied")
    assert engine._prefetch_step() == pytest.approx(30.0)  # fatal: sleeps until expiry only
    assert source.calls == 2
