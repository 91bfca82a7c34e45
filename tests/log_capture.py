"""Every log record at DEBUG, as a handler on the root logger sees it (for the secrets tests)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class Capture(logging.Handler):
    """Every record, formatted with its traceback, as a handler on the root logger sees it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    """The root logger at DEBUG for one test, its records captured; restored afterwards."""
    root = logging.getLogger()
    capture = Capture()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(level)
