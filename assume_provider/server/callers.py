"""Who may call a route: the local user behind a connection, and the route's allow list.

INTERFACE.md "Who may call": ``--allow-user``/``--allow-group`` restrict ``/``, a profile's
``assume_provider_allow_users``/``_groups`` its ``/profile/NAME``; a route without a list is
served to every holder of the token, as before. The caller is the user that owns the
client's socket, as the kernel reports it (``server/sock_diag.py``), asked once per
connection at most (the owner of a connection cannot change) and only when a route with a
list needs it, so a server without lists never asks.

Names are resolved in the system's user database when a list is built: at start for ``/``
and for every profile then in the config files (an unknown name is exit 2), and again when
a profile route is first asked for (an unknown name then is that route's 500
``ConfigError``, as for any invalid key of its profile). A numeric ID is taken as it is, so
a user without a passwd entry (a container's) can be named. A user is a member of a group
when the group is its primary group (passwd) or lists it by name (group); each user's
passwd entry is read once per process.
"""

from __future__ import annotations

import enum
import functools
import grp
import pwd
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Optional, Union

from ..config.allow_lists import AllowedNames, profile_allowed_names, profiles_naming_callers
from ..config.profiles import ConfigFiles
from ..config.settings import Origin
from ..errors import ConfigError
from .routes import PROFILE_PREFIX, server_environment
from .sock_diag import Address, LookupUnavailable, SocketOwners

MAX_ID = 2**32 - 2  # (uid_t)-1 means "no user" to the kernel


@dataclass(frozen=True)
class AllowList:
    """Who may call one route: user IDs, and groups by ID with their members' names."""

    uids: frozenset[int]
    gids: frozenset[int]
    member_names: frozenset[str]
    named_by: str  # what set it, for the refusal's stderr line

    def allows(self, uid: int) -> bool:
        if uid in self.uids:
            return True
        if not self.gids:
            return False
        entry = _passwd_entry(uid)
        return entry is not None and (entry[1] in self.gids or entry[0] in self.member_names)

    @classmethod
    def resolve(cls, names: AllowedNames, named_by: str) -> AllowList:
        """The IDs ``names`` stand for; ConfigError naming the first unknown name's origin."""
        uids = {_user_id(user, names.users_origin) for user in names.users}
        gids: set[int] = set()
        members: set[str] = set()
        for group in names.groups:
            gid, group_members = _group(group, names.groups_origin)
            gids.add(gid)
            members.update(group_members)
        return cls(frozenset(uids), frozenset(gids), frozenset(members), named_by)


@functools.lru_cache(maxsize=1024)
def _passwd_entry(uid: int) -> Optional[tuple[str, int]]:
    """(name, primary gid) of ``uid``, or None without a passwd entry: then it is in no group."""
    try:
        entry = pwd.getpwuid(uid)
    except (KeyError, OverflowError):
        return None
    return entry.pw_name, entry.pw_gid


def _numeric(name: str, origin: Origin, what: str) -> Optional[int]:
    if not (name.isascii() and name.isdigit()):
        return None
    if int(name) > MAX_ID:
        raise ConfigError(f"invalid {what} {name!r} (from {origin}): IDs go up to {MAX_ID}")
    return int(name)


def _user_id(name: str, origin: Origin) -> int:
    number = _numeric(name, origin, "user")
    if number is not None:
        return number
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise ConfigError(
            f"invalid user {name!r} (from {origin}): no such user in this system's user "
            "database (a numeric ID is taken as it is)"
        ) from None


def _group(name: str, origin: Origin) -> tuple[int, list[str]]:
    """The group's ID and the names of its listed members (none for an unknown numeric ID)."""
    number = _numeric(name, origin, "group")
    try:
        entry = grp.getgrgid(number) if number is not None else grp.getgrnam(name)
    except KeyError:
        if number is not None:
            return number, []  # still matches as a primary group
        raise ConfigError(
            f"invalid group {name!r} (from {origin}): no such group in this system's group "
            "database (a numeric ID is taken as it is)"
        ) from None
    return entry.gr_gid, list(entry.gr_mem)


class Caller:
    """The client of one connection: the user owning its socket, asked of the kernel at most
    once, when a route with an allow list first needs it."""

    __slots__ = ("_asked", "_client", "_owners", "_server", "_uid")

    def __init__(
        self, owners: Optional[SocketOwners], client: Optional[Address], server: Optional[Address]
    ) -> None:
        self._owners = owners
        self._client = client
        self._server = server
        self._asked = False
        self._uid: Optional[int] = None

    def uid(self) -> Optional[int]:
        """The owner's user ID; None when unknown (the socket is gone, or no lookup)."""
        if not self._asked:
            self._asked = True
            if self._owners is not None and self._client and self._server:
                try:
                    self._uid = self._owners.owner_uid(self._client, self._server)
                except OSError:
                    self._uid = None
        return self._uid


class Unread(enum.Enum):
    """A profile route's list not read yet (its first request reads it off the loop)."""

    UNREAD = "unread"


class CallerPolicy:
    """Each route's allow list, the kernel lookup, and the bounded refusal log.

    ConfigError when a list is given (``default``, or a profile's when read) and ``owners``
    says the kernel cannot name callers here: never a silent allow."""

    def __init__(
        self,
        default: Optional[AllowList],
        owners: Union[SocketOwners, LookupUnavailable],
        environ: Mapping[str, str],
        log: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owners = owners if isinstance(owners, SocketOwners) else None
        self._unavailable = owners if isinstance(owners, LookupUnavailable) else None
        self._lists: dict[str, Optional[AllowList]] = {"/": default}
        self._environ = environ
        self.refusals = RefusalLog(log, clock)
        if default is not None:
            self._require_lookup(default.named_by)

    @classmethod
    def start(
        cls,
        host: str,
        default: Optional[AllowList],
        environ: Mapping[str, str],
        log: Callable[[str], None] = lambda line: None,
    ) -> CallerPolicy:
        """The policy of a server on ``host``; ConfigError when ``default`` is a list and the
        kernel cannot name callers here (never a silent allow)."""
        try:
            owners: Union[SocketOwners, LookupUnavailable] = SocketOwners.open_checked(host)
        except LookupUnavailable as exc:
            owners = exc
        return cls(default, owners, environ, log)

    def close(self) -> None:
        if self.owners is not None:
            self.owners.close()

    def caller(self, client: Optional[Address], server: Optional[Address]) -> Caller:
        return Caller(self.owners, client, server)

    def known(self, path: str) -> Union[AllowList, Unread, None]:
        """The route's list if it has been read (None: it has none): never blocks."""
        return self._lists.get(path, Unread.UNREAD)

    def lookup(self, path: str) -> Optional[AllowList]:
        """The route's list, a profile route's read from its profile (ConfigError if invalid,
        or if it names callers the kernel cannot name here)."""
        # Kept in the table this read began with: a reload meanwhile replaces the table, and
        # a list read before it (perhaps from the files as they were) must not outlive it.
        lists = self._lists
        if path in lists:
            return lists[path]
        name = path[len(PROFILE_PREFIX) :]
        files = ConfigFiles.from_environment(server_environment(self._environ))
        allowed = profile_list(files, name)
        if allowed is not None:
            self._require_lookup(allowed.named_by)
        lists[path] = allowed
        return allowed

    def check_profiles(self) -> list[str]:
        """At start: every profile of the config files that names callers, each resolved
        (ConfigError for an unknown name, or where the kernel cannot name callers)."""
        files = ConfigFiles.from_environment(server_environment(self._environ))
        names = profiles_naming_callers(files)
        for name in names:
            allowed = profile_list(files, name)
            if allowed is not None:
                self._require_lookup(allowed.named_by)
        return names

    def reload(self) -> None:
        """Forget the profile routes' lists: each is read again at its route's next request."""
        self._lists = {"/": self._lists["/"]}

    def _require_lookup(self, named_by: str) -> None:
        if self._unavailable is not None:
            raise ConfigError(
                f"{named_by} names who may call, but this server cannot learn a caller's "
                f"user: {self._unavailable}"
            )


def option_list(users: Iterable[str], groups: Iterable[str]) -> Optional[AllowList]:
    """``/``'s list from ``--allow-user``/``--allow-group``; None when neither is given."""
    names = AllowedNames(
        tuple(users), tuple(groups), Origin.option("allow_user"), Origin.option("allow_group")
    )
    return AllowList.resolve(names, "--allow-user/--allow-group") if names.any else None


def profile_list(files: ConfigFiles, profile: str) -> Optional[AllowList]:
    """A profile route's list from its keys; None when it has neither."""
    names = profile_allowed_names(files, profile)
    if not names.any:
        return None
    return AllowList.resolve(names, f"profile '{profile}' (assume_provider_allow_users/_groups)")


class RefusalLog:
    """One stderr line per refused user and route a minute, in bounded memory: a flood of
    refused requests must not flood stderr, nor grow a table without end."""

    MAX_KEYS = 256
    INTERVAL = 60.0

    def __init__(self, log: Callable[[str], None], clock: Callable[[], float]) -> None:
        self._log = log
        self._clock = clock
        self._said: dict[tuple[Optional[int], str], float] = {}
        self._unsaid = 0

    def refused(self, uid: Optional[int], path: str, named_by: str) -> None:
        now = self._clock()
        key = (uid, path)
        last = self._said.get(key)
        if last is not None and now - last < self.INTERVAL:
            self._unsaid += 1
            return
        if last is None and len(self._said) >= self.MAX_KEYS:
            self._said = {k: t for k, t in self._said.items() if now - t < self.INTERVAL}
            if len(self._said) >= self.MAX_KEYS:
                self._unsaid += 1
                return
        self._said[key] = now
        who = f"user ID {uid}" if uid is not None else "a caller whose user is unknown"
        unsaid = f" ({self._unsaid} earlier refusals not shown)" if self._unsaid else ""
        self._unsaid = 0
        self._log(f"route {path}: CallerNotAllowed: {who} is not in {named_by}{unsaid}")
