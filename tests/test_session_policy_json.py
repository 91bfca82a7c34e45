"""A session policy that is not JSON (by RFC 8259) is a ConfigError, never a crash (found by
a review: Python's json reads NaN and Infinity, and deep nesting raised RecursionError)."""

from __future__ import annotations

import pytest

from assume_provider.config.session_params import parse_policy
from assume_provider.errors import ConfigError


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_policy_with_a_non_json_constant_is_a_config_error(constant: str) -> None:
    # Python's json.loads accepts these; they are not JSON and IAM rejects the document.
    text = '{"Version":"2012-10-17","Statement":[],"Id":' + constant + "}"
    with pytest.raises(ConfigError, match="policy"):
        parse_policy(text, "argument policy")


def test_deeply_nested_policy_is_a_config_error_not_a_crash() -> None:
    # 20,000 nested arrays: a few tens of KB, fits a file:// policy's 64 KiB read limit.
    text = '{"Statement":' + "[" * 20000 + "]" * 20000 + "}"
    with pytest.raises(ConfigError, match="policy"):
        parse_policy(text, "argument policy")
