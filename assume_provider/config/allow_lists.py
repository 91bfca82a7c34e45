"""A profile's callers: its ``assume_provider_allow_users`` and ``assume_provider_allow_groups``.

`assume-provider serve` restricts a ``/profile/NAME`` route to the users these keys name
(INTERFACE.md, "Who may call"). They are keys of the profile only, not settings of the
chain: no argument or environment variable sets them (a profile route never reads the
server's own options or ``ASSUME_PROVIDER_*`` variables anyway), and they do not take part
in which credentials are shared. Here they are only read, as comma lists with where they
came from; which IDs the names stand for is the server's business (``server/callers.py``),
as the user database is the host's, not the config file's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .inputs import config_key, string_list
from .profiles import ConfigFiles
from .settings import Origin

ALLOW_USERS = "allow_users"
ALLOW_GROUPS = "allow_groups"
KEYS = (config_key(ALLOW_USERS), config_key(ALLOW_GROUPS))


@dataclass(frozen=True)
class AllowedNames:
    """User and group names (or numeric IDs) as written, and where each list came from."""

    users: tuple[str, ...]
    groups: tuple[str, ...]
    users_origin: Origin
    groups_origin: Origin

    @property
    def any(self) -> bool:
        """Whether a list is given: a route with none is served to every token holder."""
        return bool(self.users or self.groups)


def profile_allowed_names(files: ConfigFiles, profile: str) -> AllowedNames:
    """The two keys of ``profile``; ConfigError for a key that is present but lists nothing
    (it would read as "everyone" or "no one": neither is safe to guess)."""
    values = (files.profile(profile) or {}) if any(map(files.may_define, KEYS)) else {}
    lists = []
    for name in (ALLOW_USERS, ALLOW_GROUPS):
        origin = Origin.config(name, profile, files.config_path)
        lists.append((_names(name, values.get(config_key(name)), origin), origin))
    (users, users_origin), (groups, groups_origin) = lists
    return AllowedNames(users, groups, users_origin, groups_origin)


def profiles_naming_callers(files: ConfigFiles) -> list[str]:
    """The profiles of the config files that have either key, sorted."""
    if not any(map(files.may_define, KEYS)):
        return []
    return sorted(name for name, values in files.profiles().items() if set(KEYS) & set(values))


def _names(name: str, raw: Any, origin: Origin) -> tuple[str, ...]:
    from ..errors import ConfigError

    if raw is None:
        return ()
    if not isinstance(raw, str):
        raise ConfigError(f"invalid {config_key(name)} (from {origin}): expected a comma list")
    names = string_list(config_key(name), raw, origin, "name")
    if not names:
        raise ConfigError(
            f"invalid {config_key(name)} {raw!r} (from {origin}): an empty list; name users "
            "or groups, or remove the key to serve every holder of the token"
        )
    return names
