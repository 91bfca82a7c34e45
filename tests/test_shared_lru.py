"""``engine/shared.py``'s bound: the least recently used object goes first, a hit counts as a
use, and the factory runs once per key while its object is cached."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assume_provider.engine import shared


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    shared.clear()
    yield
    shared.clear()


def test_a_hit_returns_the_cached_object_without_the_factory() -> None:
    made: list[str] = []

    def factory() -> object:
        made.append("made")
        return object()

    first = shared.shared("key", factory)
    assert shared.shared("key", factory) is first
    assert made == ["made"]


def test_the_least_recently_used_goes_first() -> None:
    for index in range(shared.MAX_SHARED_OBJECTS):
        shared.shared(index, object)
    oldest = shared.shared(0, object)  # a hit: key 0 is now the most recently used
    shared.shared("one more", object)  # over the bound: key 1, the least recently used, goes
    assert len(shared._objects) == shared.MAX_SHARED_OBJECTS
    assert shared.shared(0, object) is oldest
    assert 1 not in shared._objects and 2 in shared._objects
