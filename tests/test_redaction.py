"""Redaction touches only the loggers that can carry credentials, and only what it must."""

from __future__ import annotations

import logging

import pytest

from assume_provider.redaction import install_redaction, redact_text, register_secret

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture(autouse=True)
def redaction() -> None:
    install_redaction()
    register_secret(SECRET)


class Capture(logging.Handler):
    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class MarkingFormatter(logging.Formatter):
    def formatException(self, ei: object) -> str:
        return "CUSTOM-TRACEBACK"


def capture(name: str) -> tuple[logging.Logger, Capture]:
    logger = logging.getLogger(name)
    handler = Capture(MarkingFormatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, handler


def test_botocore_records_are_masked() -> None:
    logger, handler = capture("botocore.endpoint")
    logger.debug("Response body: b'<SecretAccessKey>%s</SecretAccessKey>'", SECRET)
    logger.debug("key %s again", SECRET)
    assert all(SECRET not in line for line in handler.lines)
    assert "<SecretAccessKey>****</SecretAccessKey>" in handler.lines[0]


def test_the_applications_own_records_and_formatters_are_left_alone() -> None:
    logger, handler = capture("myapp.billing")
    logger.info("NextToken=%r csrf_token=%r", "page-2", "abc")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    assert handler.lines[0] == "NextToken='page-2' csrf_token='abc'"
    assert handler.lines[1].endswith("CUSTOM-TRACEBACK")


def test_field_names_are_matched_whole() -> None:
    assert redact_text("NextToken='page-2'") == "NextToken='page-2'"
    assert redact_text("'SessionToken': 'abc'") == "'SessionToken': '****'"
