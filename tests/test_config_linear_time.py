"""Validation takes time linear in the value: a malformed setting can never hang resolution.

A backtracking pattern with a repeated group whose class also matches its separator (a role
path ``(?:[...]+/)*``) takes exponential time on a value that almost matches. These tests
feed such values, and long random ones, to every validator a user's value meets, under a
per-test timeout: an exponential validator does not finish, a linear one takes milliseconds.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assume_provider.config.arns import role_arn_problem
from assume_provider.config.session_params import (
    parse_fallback_regions,
    parse_policy,
    parse_policy_arns,
    parse_source_identity,
    parse_tags,
    parse_transitive_tag_keys,
    policy_arn_problem,
    region_problem,
)
from assume_provider.config.settings import (
    Origin,
    parse_duration,
    parse_external_id,
    parse_role_chain,
    parse_session_name,
    parse_source,
)
from assume_provider.errors import ConfigError
from assume_provider.templates import iam_policies

ORIGIN = Origin.environment("role_arn")
PREFIX = "arn:aws:iam::111111111111:role/"


@pytest.mark.timeout(5)
@pytest.mark.parametrize("segments", [26, 40, 5000])
def test_an_almost_valid_long_role_path_is_refused_at_once(segments: int) -> None:
    arn = PREFIX + "a/" * segments + "x!"
    with pytest.raises(ConfigError, match="invalid role name"):
        parse_role_chain(arn, ORIGIN)
    with pytest.raises(ConfigError):
        iam_policies.validate_role_arn(arn, "--trusted-role-arn")


@pytest.mark.timeout(5)
def test_a_long_valid_role_path_is_accepted_and_checked_against_its_limit() -> None:
    assert role_arn_problem(PREFIX + "a/" * 200 + "Name") is None
    assert role_arn_problem(PREFIX + "a/" * 300 + "Name") is not None  # path over 512


adversarial = st.text(alphabet="a/!*:=,.@-_ 0123456789", min_size=1000, max_size=20000)
near_arns = st.builds(lambda tail: PREFIX + tail, adversarial)


@pytest.mark.timeout(60)
@settings(max_examples=60, deadline=None)
@given(value=st.one_of(adversarial, near_arns))
def test_every_validator_is_quick_on_long_values(value: str) -> None:
    role_arn_problem(value)
    role_arn_problem(value, allow_wildcards=False)
    for parse in (parse_role_chain, parse_external_id, parse_session_name, parse_source):
        try:
            parse(value, ORIGIN)
        except ConfigError:
            pass
    try:
        parse_duration(value, ORIGIN)
    except ConfigError:
        pass
    policy_arn_problem(value)
    region_problem(value)
    for parse in (
        parse_source_identity,
        parse_tags,
        parse_policy_arns,
        parse_policy,
        parse_fallback_regions,
    ):
        try:
            parse(value, ORIGIN)
        except ConfigError:
            pass
    try:
        parse_transitive_tag_keys(value, ORIGIN, [("a", "b")])
    except ConfigError:
        pass
    for validate in (
        iam_policies.validate_role_arn,
        iam_policies.validate_table,
        iam_policies.validate_kms_key_arn,
        iam_policies.validate_external_id,
    ):
        try:
            validate(value, "--option")
        except ConfigError:
            pass
