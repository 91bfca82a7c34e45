"""What one caller was given: arguments, environment and the active profile, with precedence.

The one place that decides which raw value of a setting wins (explicit argument >
environment variable > key in the active profile), for the library (``settings`` validates
what this returns) and for the command line, including its cache-hit path; hence no
typing, dataclasses or re imports here.
"""

from __future__ import annotations

import os

from .profiles import ConfigFiles, ProfileChoice, choose_profile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Optional

# INTERFACE.md's "Session parameters", as argument names.
SESSION_PARAMETER_NAMES = (
    "source_identity",
    "tags",
    "transitive_tag_keys",
    "policy_arns",
    "policy",
    "sts_fallback_regions",
)
# The settings of INTERFACE.md's table and the refresh tuning, as argument names.
SETTING_NAMES = (
    "role_arn",
    "source",
    "external_id",
    "session_name",
    "duration_seconds",
    "cache_dir",
    "prefetch",
    "refresh_window_seconds",
    *SESSION_PARAMETER_NAMES,
    # INTERFACE.md's "Sharing across processes".
    "share",
)
ROLE_ARN = "role_arn"
ENV_PREFIX = "ASSUME_PROVIDER_"
CONFIG_PREFIX = "assume_provider_"
DEFAULT_CACHE_DIR = os.path.join("~", ".aws", "assume-provider", "cache")

# Set by `env`/`exec` to the access key ID they exported: never a source (INTERFACE.md).
EXPORTED_KEY_ID_VAR = "ASSUME_PROVIDER_EXPORTED_KEY_ID"

# Where a raw value came from (settings turns these into an Origin a user can look up).
ARGUMENT = "argument"
ENVIRONMENT = "environment"
CONFIG = "config"
DEFAULT = "default"


def env_var(name: str) -> str:
    return ENV_PREFIX + name.upper()


def config_key(name: str) -> str:
    return CONFIG_PREFIX + name


def cache_folder(raw: Any) -> str:
    """The folder a cache_dir value names; the default when it is unset (or not a path)."""
    if isinstance(raw, str) and raw.strip() and "\0" not in raw:
        return os.path.abspath(os.path.expanduser(raw))
    return os.path.expanduser(DEFAULT_CACHE_DIR)


def shown(value: Any, limit: int = 80) -> str:
    """A value quoted for an error message, cut short (a policy can be kilobytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def string_list(name: str, raw: Any, origin: Any, what: str) -> tuple[str, ...]:
    """A list setting's raw value as its items: a comma-separated string or a sequence of
    strings (each may hold commas too). Here rather than with the session parameters that are
    lists: the role chain is one too, and every resolution reads it."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        parts = raw.split(",")
    else:
        from collections.abc import Sequence  # not needed on the command line's fast path

        if not isinstance(raw, Sequence):
            allowed = f"expected a comma-separated list or a sequence of {what}s"
            raise _invalid(name, raw, origin, allowed)
        parts = []
        for item in raw:
            if not isinstance(item, str):
                raise _invalid(name, raw, origin, f"each {what} must be a string")
            parts.extend(item.split(","))
    items = tuple(part.strip() for part in parts)
    if not any(items):
        return ()
    if not all(items):
        raise _invalid(name, raw, origin, f"an empty {what} in the list")
    return items


def _invalid(name: str, raw: Any, origin: Any, allowed: str) -> Exception:
    from ..errors import ConfigError  # no botocore import on the command line's fast path

    return ConfigError(f"invalid {name} {shown(raw)} (from {origin}): {allowed}")


def visible_access_key_id(environ: Mapping[str, str]) -> Optional[str]:
    """AWS_ACCESS_KEY_ID unless it is the key that `env`/`exec` exported (never a source)."""
    key_id = environ.get("AWS_ACCESS_KEY_ID") or None
    if key_id is not None and key_id == environ.get(EXPORTED_KEY_ID_VAR):
        return None
    return key_id


class SettingInputs:
    """The raw inputs of one resolution; the config files are parsed only when needed."""

    __slots__ = ("arguments", "environ", "files", "profile")

    def __init__(
        self,
        arguments: Mapping[str, Any],
        environ: Mapping[str, str],
        profile: ProfileChoice,
        files: ConfigFiles,
    ) -> None:
        self.arguments = dict(arguments)
        self.environ = environ
        self.profile = profile
        self.files = files

    @classmethod
    def from_environment(
        cls,
        arguments: Mapping[str, Any],
        environ: Mapping[str, str],
        profile_name: Optional[str] = None,
    ) -> SettingInputs:
        """For the command line: the profile and files as botocore would choose them."""
        profile = choose_profile(environ, profile_name)
        return cls(arguments, environ, profile, ConfigFiles.from_environment(environ))

    def profile_values(self) -> Optional[Mapping[str, Any]]:
        """The active profile's keys, or None when neither file defines it."""
        return self.files.profile(self.profile.name)

    def given(self, name: str) -> Any:
        """The value from an argument or the environment, not looking at the files."""
        if self.arguments.get(name) is not None:
            return self.arguments[name]
        value = self.environ.get(env_var(name))
        return value if value is not None and value.strip() else None

    def lookup(self, name: str) -> tuple[Any, str]:
        """The raw value that wins by precedence, and where it came from (unparsed)."""
        if self.arguments.get(name) is not None:
            return self.arguments[name], ARGUMENT
        value = self.environ.get(env_var(name))
        if value is not None and value.strip():
            if name == ROLE_ARN and self.profile_opts_out():
                return None, CONFIG
            return value, ENVIRONMENT
        key = config_key(name)
        if self.files.may_define(key):
            found = (self.profile_values() or {}).get(key)
            if found is not None and (not isinstance(found, str) or found.strip()):
                return found, CONFIG
        return None, DEFAULT

    def profile_opts_out(self) -> bool:
        """Whether the active profile keeps itself out: ``assume_provider_role_arn`` present
        and empty. A host-wide ASSUME_PROVIDER_ROLE_ARN then does not apply to it (an explicit
        argument or ``--role-arn`` still does), so a profile with credentials of its own
        (an admin role, SSO) is not made the source of the variable's chain."""
        key = config_key(ROLE_ARN)
        if not self.files.may_define(key):
            return False
        found = (self.profile_values() or {}).get(key)
        return isinstance(found, str) and not found.strip()

    def raw(self, name: str) -> Any:
        return self.lookup(name)[0]

    def cache_dir(self) -> str:
        """The disk-cache folder, as ``settings.parse_cache_dir`` resolves a valid value."""
        return cache_folder(self.raw("cache_dir"))
