"""Property-based tests (Hypothesis) of the parsers that read untrusted text.

Anything a user, a config file or another local process can put in front of these
functions must give a valid result or the documented error, never another exception.
Example counts are fixed per test (``settings(max_examples=...)``) so the module stays fast;
``pytest --hypothesis-show-statistics`` prints how many each ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assume_provider.cli.env_cmd import export_line
from assume_provider.cli.payload import iso8601
from assume_provider.config.arns import PARTITIONS, role_arn_problem
from assume_provider.config.inputs import SETTING_NAMES, SettingInputs, config_key, env_var
from assume_provider.config.profiles import ConfigFiles, ProfileChoice
from assume_provider.config.settings import (
    Origin,
    Settings,
    parse_role_chain,
    resolve_settings,
    sanitize_session_name,
)
from assume_provider.diskcache.entry import Entry
from assume_provider.diskcache.store import DiskCache
from assume_provider.errors import ConfigError

STS_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
ROLE_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):iam::\d{12}:role/.+$")

# Any Unicode, lone surrogates included (os.environ holds undecodable bytes as surrogates).
any_text = st.text(st.characters(blacklist_categories=()), max_size=80)
near_valid_arn = st.builds(
    lambda partition, account, kind, path, name: (
        f"arn:{partition}:iam::{account}:{kind}/{path}{name}"
    ),
    st.sampled_from([*PARTITIONS, "aws-mars", "", "AWS"]),
    st.one_of(st.from_regex(r"\A\d{12}\Z"), st.from_regex(r"\A\d{0,14}\Z"), any_text),
    st.sampled_from(["role", "user", "rol", "", "role/x"]),
    st.sampled_from(["", "/", "path/", "/a/b/", "//", "p\u00e9/"]),
    st.one_of(st.from_regex(r"\A[\w+=,.@-]{1,70}\Z"), any_text),
)
setting_text = st.one_of(
    any_text,
    near_valid_arn,
    st.sampled_from(
        [
            "900",
            "43200",
            " 3600 ",
            "-1",
            "1e3",
            "0x10",
            "auto",
            "profile:x",
            "profile: ",
            "instance-metadata",
            "true",
            "off",
            "~",
            "/tmp/x",
            "\0",
            "a,b",
            ",",
            "  ",
        ]
    ),
)
origins = st.sampled_from(["argument", "environment", "config"])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(SETTING_NAMES), st.tuples(origins, setting_text)))
def test_settings_parser_gives_settings_or_config_error(
    values: dict[str, tuple[str, str]],
) -> None:
    arguments: dict[str, object] = {}
    environ: dict[str, str] = {}
    profile_values: dict[str, str] = {}
    for name, (origin, text) in values.items():
        if origin == "argument":
            arguments[name] = text
        elif origin == "environment":
            environ[env_var(name)] = text
        else:
            profile_values[config_key(name)] = text
    files = ConfigFiles.of_profiles({"default": dict(profile_values)}, "/nonexistent/config")
    try:
        result = resolve_settings(
            SettingInputs(arguments, environ, ProfileChoice("default", None), files)
        )
    except ConfigError as exc:
        assert "invalid" in str(exc) or "unknown" in str(exc)
        return
    assert isinstance(result, Settings)
    for arn in result.role_arns:
        assert ROLE_ARN.match(arn), arn
    assert STS_SESSION_NAME.match(result.session_name)
    assert 900 <= result.duration_seconds <= 43200


@settings(max_examples=200, deadline=None)
@given(st.lists(setting_text, max_size=4))
def test_role_chain_sequences_give_arns_or_config_error(items: list[str]) -> None:
    try:
        arns = parse_role_chain(items, Origin.argument("role_arn"))
    except ConfigError:
        return
    assert all(ROLE_ARN.match(arn) for arn in arns)


@settings(max_examples=500, deadline=None)
@given(st.one_of(any_text, near_valid_arn))
def test_role_arn_rule_never_raises_and_agrees_with_the_pattern(text: str) -> None:
    problem = role_arn_problem(text)
    assert problem is None or isinstance(problem, str)
    if problem is None:
        assert ROLE_ARN.match(text), text


@settings(max_examples=1000, deadline=None)
@given(st.one_of(any_text, st.text(max_size=300), st.text(st.characters(max_codepoint=127))))
def test_sanitized_session_names_always_satisfy_sts(text: str) -> None:
    name = sanitize_session_name(text)
    assert STS_SESSION_NAME.match(name), (text, name)
    assert sanitize_session_name(name) == name  # a valid name is kept as it is


# -- the disk cache's reader -----------------------------------------------------------------

NOW = 1_800_000_000.0
KEY = "0" * 40
# A valid entry file, line by line (see disk_cache.Entry.to_bytes).
VALID_LINES = [
    "assume-provider cache 2",
    "ASIAEXAMPLE",
    "secret",
    "token",
    repr(NOW + 3600),
    repr(NOW),
    "us-east-1",
]
line_values = st.one_of(
    any_text,
    st.floats().map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["inf", "nan", "1e20", str(2**63), "-1", "0", "True", "", " ", "x y"]),
)
# A valid entry with one to three lines replaced and maybe one removed: the reader's edges.
entry_like = st.builds(
    lambda changes, removed: [
        changes.get(index, line) for index, line in enumerate(VALID_LINES) if index not in removed
    ],
    st.dictionaries(st.integers(0, len(VALID_LINES) - 1), line_values, max_size=3),
    st.sets(st.integers(0, len(VALID_LINES) - 1), max_size=1),
)


def _dump(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


VALID_BYTES = _dump(VALID_LINES)
file_bytes = st.one_of(
    st.binary(max_size=300),
    st.integers(0, len(VALID_BYTES)).map(lambda n: VALID_BYTES[:n]),  # truncated writes
    st.binary(min_size=1, max_size=4).map(lambda junk: VALID_BYTES + junk),
    st.binary(max_size=8).map(lambda junk: VALID_BYTES.replace(b"secret", junk)),
)


def _read_planted(folder: Path, data: bytes) -> Entry | None:
    """What the reader makes of ``data`` planted as the entry's file (ours, 0600)."""
    cache = DiskCache(str(folder), clock=lambda: NOW).open()
    path = folder / DiskCache.file_name(KEY)
    path.write_bytes(data)
    path.chmod(0o600)
    try:
        entry = cache.read(KEY)
    finally:
        cache.close()
    if entry is not None:
        for value in (entry.access_key_id, entry.secret_access_key, entry.session_token):
            assert isinstance(value, str) and value
        assert entry.expires_at > NOW
        # Everything the CLI does with a hit must work: print the expiry, serialise it back.
        assert iso8601(entry.expires_at).endswith("Z")
        assert Entry.from_bytes(entry.to_bytes()) is not None
    return entry


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=file_bytes)
def test_disk_cache_reader_any_bytes_give_a_miss_or_valid_credentials(
    tmp_path: Path, data: bytes
) -> None:
    _read_planted(tmp_path / "cache", data)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=entry_like)
def test_disk_cache_reader_any_entry_document_gives_a_miss_or_valid_credentials(
    tmp_path: Path, lines: list[str]
) -> None:
    _read_planted(tmp_path / "cache", _dump(lines))


def test_disk_cache_reader_accepts_the_valid_entry(tmp_path: Path) -> None:
    entry = _read_planted(tmp_path / "cache", VALID_BYTES)
    assert entry is not None and entry.secret_access_key == "secret"


def test_disk_cache_reader_refuses_expiries_it_could_not_print(tmp_path: Path) -> None:
    for expires_at in ("Infinity", "1e300", "1e20", "NaN"):
        data = VALID_BYTES.replace(repr(NOW + 3600).encode(), expires_at.encode())
        assert expires_at.encode() in data
        assert _read_planted(tmp_path / "cache", data) is None, expires_at


# -- env's shell quoting ------------------------------------------------------------------

SHELL_CHECK = 'eval "$LINES"; printf %s "$VAR"'
# Values an environment can hold: any text but NUL (and lone surrogates, not encodable).
env_values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=60
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(env_values, st.sampled_from(["'", "\\'", "$(id)", "`id`", "\n", "a'b\"c$d"])))
def test_sh_quoting_round_trips_any_value(value: str) -> None:
    lines = export_line("sh", "VAR", value)
    done = subprocess.run(
        ["sh", "-c", SHELL_CHECK],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LINES": lines},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == value.encode("utf-8"), (value, lines)


def test_iso8601_is_what_credential_process_prints() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00Z"
    assert iso8601(time.time()).endswith("Z")
