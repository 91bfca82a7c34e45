"""Settings: read from arguments, environment and config profile; validated before any network call.

Precedence is explicit argument > environment variable > key in the active profile of the
AWS config file > default. Every value remembers where it came from, so an error can say
"ASSUME_PROVIDER_DURATION_SECONDS (environment variable) = '99': must be ...".

No botocore import here: the CLI's fast path parses settings too.
"""

from __future__ import annotations

import functools
import getpass
import re
import socket
import string
from dataclasses import field
from typing import TYPE_CHECKING, Any, Optional, Union

from ..engine.records import frozen
from .arns import role_arn_problem
from .inputs import (
    ARGUMENT,
    CONFIG,
    ENVIRONMENT,
    SESSION_PARAMETER_NAMES,
    SETTING_NAMES,
    SettingInputs,
    cache_folder,
    config_key,
    env_var,
    string_list,
)
from .own_credentials import warn_if_profile_taken_over
from .variables import warn_unknown_variables

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

ROLE_ARN = "role_arn"
SOURCE = "source"
EXTERNAL_ID = "external_id"
SESSION_NAME = "session_name"
DURATION_SECONDS = "duration_seconds"
CACHE_DIR = "cache_dir"
PREFETCH = "prefetch"
REFRESH_WINDOW_SECONDS = "refresh_window_seconds"
SHARE = "share"
# INTERFACE.md's "Session parameters". Their parsers (``session_params.py``, with its
# character tables) are imported only when one of them is set: most processes set none, and
# with no value each is its default in ``Settings`` (``docs/performance.md``, "Short-lived
# processes").
SESSION_PARAMETERS = SESSION_PARAMETER_NAMES

# Patterns as text, compiled at first use (``re`` keeps them): a process that sets neither
# needs none of them (``docs/performance.md``, "Short-lived processes").
_SESSION_NAME = r"(?a)[\w+=,.@-]{2,64}"
_SESSION_NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_+=,.@-")
# STS's own rule for ExternalId (the settings and the templates both check it).
_EXTERNAL_ID = r"(?a)[\w+=,.@:/-]{2,1224}"


def is_external_id(text: str) -> bool:
    """Whether ``text`` is a valid ExternalId, by STS's own rule."""
    return re.fullmatch(_EXTERNAL_ID, text) is not None

MIN_DURATION = 900
MAX_DURATION = 43200
DEFAULT_DURATION = 3600
SOURCE_KINDS = ("auto", "instance-metadata", "container", "environment", "web-identity")
PROFILE_SOURCE_PREFIX = "profile:"
# How far credentials are shared: within the process, or also through the disk cache.
SHARE_PROCESS = "process"
SHARE_DISK = "disk"
SHARE_MODES = (SHARE_PROCESS, SHARE_DISK)


# Settings whose command-line option is named in the singular (it is given once per item).
_REPEATED_OPTIONS = {
    "tags": "tag",
    "transitive_tag_keys": "transitive_tag_key",
    "policy_arns": "policy_arn",
    "sts_fallback_regions": "sts_fallback_region",
}


@frozen
class Origin:
    """Where one setting's value came from, in words a user can look up."""

    description: str

    @staticmethod
    def of(
        place: str,
        name: str,
        profile: str,
        path: Optional[str],
        argument: Optional[Callable[[str], Origin]] = None,
    ) -> Origin:
        """The origin for one of ``inputs``' places (argument, environment, config, default).

        ``argument`` words an explicit argument as its caller takes it: the library's keyword
        argument by default, the command line's option (``Origin.option``) for the CLI.
        """
        if place == ARGUMENT:
            return (argument or Origin.argument)(name)
        if place == ENVIRONMENT:
            return Origin.environment(name)
        if place == CONFIG:
            return Origin.config(name, profile, path)
        return Origin.default()

    @staticmethod
    def argument(name: str) -> Origin:
        """A keyword argument of the Python API, e.g. ``argument role_arn``."""
        return Origin(f"argument {name}")

    @staticmethod
    def option(name: str) -> Origin:
        """A command-line option, as the user typed it, e.g. ``option --role-arn``."""
        flag = _REPEATED_OPTIONS.get(name, name)
        return Origin(f"option --{flag.replace('_', '-')}")

    @staticmethod
    def environment(name: str) -> Origin:
        return Origin(f"environment variable {env_var(name)}")

    @staticmethod
    def config(name: str, profile: str, path: Optional[str]) -> Origin:
        where = f" of {path}" if path else ""
        return Origin(f"key {config_key(name)} in profile '{profile}'{where}")

    @staticmethod
    def default() -> Origin:
        return Origin("default")

    def __str__(self) -> str:
        return self.description


@frozen
class Source:
    """Where the first hop's credentials come from."""

    kind: str  # one of SOURCE_KINDS or "profile"
    profile: Optional[str] = None

    def __str__(self) -> str:
        return f"{PROFILE_SOURCE_PREFIX}{self.profile}" if self.kind == "profile" else self.kind


@frozen
class Settings:
    """Validated settings. ``role_arns`` empty means the provider is inactive."""

    role_arns: tuple[str, ...]
    source: Source
    external_id: Optional[str]
    session_name: str
    duration_seconds: int
    cache_dir: str
    profile: str
    # Refresh tuning (beyond INTERFACE.md's table): background prefetch, and an early-refresh
    # window that overrides the one chosen from the credential lifetime.
    prefetch: bool = False
    refresh_window_seconds: Optional[int] = None
    # INTERFACE.md's "Session parameters": SourceIdentity on the first hop; tags, transitive
    # tag keys and session policies on the last hop; regions to try when the STS region fails.
    source_identity: Optional[str] = None
    tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    policy: Optional[str] = None
    sts_fallback_regions: tuple[str, ...] = ()
    # INTERFACE.md's "Sharing across processes": "process", or "disk" (the disk cache too).
    share: str = SHARE_PROCESS
    origins: Mapping[str, Origin] = field(compare=False, hash=False, default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.role_arns)

    def origin(self, name: str) -> Origin:
        return self.origins.get(name, Origin.default())


def _config_error(name: str, origin: Origin, value: object, allowed: str) -> Exception:
    # Imported here so that parsing valid settings never imports botocore (CLI fast path).
    from ..errors import ConfigError

    return ConfigError(f"invalid {name} {value!r} (from {origin}): {allowed}")


def parse_role_chain(raw: Union[str, Sequence[str], None], origin: Origin) -> tuple[str, ...]:
    arns = string_list(ROLE_ARN, raw, origin, "role ARN")
    for arn in arns:
        problem = role_arn_problem(arn)
        if problem:
            raise _config_error(ROLE_ARN, origin, arn, problem)
    return arns


def parse_source(raw: Any, origin: Origin) -> Source:
    allowed = f"expected one of {', '.join(SOURCE_KINDS)}, or {PROFILE_SOURCE_PREFIX}NAME"
    if raw is None:
        return Source("auto")
    if not isinstance(raw, str):
        raise _config_error(SOURCE, origin, raw, allowed)
    value = raw.strip()
    if value in SOURCE_KINDS:
        return Source(value)
    if value.startswith(PROFILE_SOURCE_PREFIX):
        profile = value[len(PROFILE_SOURCE_PREFIX) :].strip()
        if profile and not any(ch.isspace() for ch in profile):
            return Source("profile", profile)
    raise _config_error(SOURCE, origin, raw, allowed)


def _whole_seconds(name: str, raw: Any, origin: Origin, low: int, high: int) -> int:
    """A number of seconds from ``low`` to ``high``: an int, or digits in a string."""
    allowed = f"expected whole seconds from {low} to {high}"
    if isinstance(raw, int) and not isinstance(raw, bool):
        seconds = raw
    elif isinstance(raw, str) and re.fullmatch(r"\s*[0-9]{1,9}\s*", raw):
        seconds = int(raw)
    else:
        raise _config_error(name, origin, raw, allowed)
    if not low <= seconds <= high:
        raise _config_error(name, origin, raw, allowed)
    return seconds


def parse_duration(raw: Any, origin: Origin) -> int:
    if raw is None:
        return DEFAULT_DURATION
    return _whole_seconds(DURATION_SECONDS, raw, origin, MIN_DURATION, MAX_DURATION)


def parse_external_id(raw: Any, origin: Origin) -> Optional[str]:
    if raw is None:
        return None
    if not isinstance(raw, str) or not is_external_id(raw):
        raise _config_error(
            EXTERNAL_ID, origin, raw, "expected 2-1224 characters of letters, digits and +=,.@:/-"
        )
    return raw


def parse_session_name(raw: Any, origin: Origin) -> str:
    if raw is None:
        return default_session_name()
    if not isinstance(raw, str) or re.fullmatch(_SESSION_NAME, raw) is None:
        raise _config_error(
            SESSION_NAME, origin, raw, "expected 2-64 characters of letters, digits and +=,.@_-"
        )
    return raw


def parse_cache_dir(raw: Any, origin: Origin) -> str:
    if raw is not None and (not isinstance(raw, str) or not raw.strip() or "\0" in raw):
        raise _config_error(CACHE_DIR, origin, raw, "expected a folder path")
    return cache_folder(raw)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_prefetch(raw: Any, origin: Origin) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    raise _config_error(PREFETCH, origin, raw, "expected true or false")


def parse_refresh_window(raw: Any, origin: Origin) -> Optional[int]:
    if raw is None:
        return None
    return _whole_seconds(REFRESH_WINDOW_SECONDS, raw, origin, 0, MAX_DURATION)


def parse_share(raw: Any, origin: Origin) -> str:
    if raw is None:
        return SHARE_PROCESS
    if isinstance(raw, str) and raw.strip().lower() in SHARE_MODES:
        return raw.strip().lower()
    raise _config_error(SHARE, origin, raw, f"expected one of {', '.join(SHARE_MODES)}")


def sanitize_session_name(text: str) -> str:
    """Make any text a valid RoleSessionName (2-64 characters of [\\w+=,.@-])."""
    cleaned = "".join(c if c in _SESSION_NAME_CHARACTERS else "-" for c in text)
    cleaned = cleaned[:64]
    if len(cleaned) < 2:
        cleaned = (cleaned + "assume-provider")[:64] if cleaned else "assume-provider"
    return cleaned


@functools.lru_cache(maxsize=1)
def default_session_name() -> str:
    """user@host, so CloudTrail in account A shows who assumed the role from where."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers; any name will do
        user = "unknown"
    host = socket.gethostname().split(".")[0] or "host"
    return sanitize_session_name(f"{user}@{host}")


def _session_parameters(raw: Mapping[str, tuple[Any, Origin]]) -> dict[str, Any]:
    """The session parameters' values by setting name, none when none is set (their parsers
    give the defaults of ``Settings`` for no value); tags first, as the transitive keys need
    them."""
    if all(raw[name][0] is None for name in SESSION_PARAMETERS):
        return {}
    from . import session_params as params  # imported here: see SESSION_PARAMETERS

    tags = params.parse_tags(*raw[params.TAGS])
    return {
        params.SOURCE_IDENTITY: params.parse_source_identity(*raw[params.SOURCE_IDENTITY]),
        params.TAGS: tags,
        params.TRANSITIVE_TAG_KEYS: params.parse_transitive_tag_keys(
            *raw[params.TRANSITIVE_TAG_KEYS], tags
        ),
        params.POLICY_ARNS: params.parse_policy_arns(*raw[params.POLICY_ARNS]),
        params.POLICY: params.parse_policy(*raw[params.POLICY]),
        params.STS_FALLBACK_REGIONS: params.parse_fallback_regions(
            *raw[params.STS_FALLBACK_REGIONS]
        ),
    }


def resolve_settings(
    given: SettingInputs, *, argument_origin: Optional[Callable[[str], Origin]] = None
) -> Settings:
    """Validate the winning value of every setting; raise ConfigError on any invalid one.

    ``argument_origin`` names where explicit arguments came from (``Origin.option`` for the
    command line); by default they are the Python API's keyword arguments.
    """
    unknown = set(given.arguments) - set(SETTING_NAMES)
    if unknown:
        from ..errors import ConfigError

        raise ConfigError(
            f"unknown setting(s) {', '.join(sorted(unknown))}; "
            f"settings are {', '.join(SETTING_NAMES)}"
        )
    profile = given.profile
    if profile.must_exist and given.profile_values() is None:
        from ..errors import MissingProfileError

        raise MissingProfileError(
            f"profile '{profile.name}' (named by {profile.named_by}) is not in the AWS config "
            f"file {given.files.config_path} or the credentials file "
            f"{given.files.credentials_path}",
            profile.name,
        )
    warn_unknown_variables(given.environ)
    raw: dict[str, tuple[Any, Origin]] = {}
    places: dict[str, str] = {}
    for name in SETTING_NAMES:
        value, place = given.lookup(name)
        origin = Origin.of(place, name, profile.name, given.files.config_path, argument_origin)
        raw[name] = (value, origin)
        places[name] = place
    session_parameters = _session_parameters(raw)
    settings = Settings(
        role_arns=parse_role_chain(*raw[ROLE_ARN]),
        source=parse_source(*raw[SOURCE]),
        external_id=parse_external_id(*raw[EXTERNAL_ID]),
        session_name=parse_session_name(*raw[SESSION_NAME]),
        duration_seconds=parse_duration(*raw[DURATION_SECONDS]),
        cache_dir=parse_cache_dir(*raw[CACHE_DIR]),
        profile=profile.name,
        prefetch=parse_prefetch(*raw[PREFETCH]),
        refresh_window_seconds=parse_refresh_window(*raw[REFRESH_WINDOW_SECONDS]),
        **session_parameters,
        share=parse_share(*raw[SHARE]),
        origins={name: origin for name, (_, origin) in raw.items()},
    )
    if settings.active:
        warn_if_profile_taken_over(given, places[ROLE_ARN])
    return settings
