"""The AWS config and credentials files, read by botocore's own rules, without botocore.

The library and the command line both find the active profile and its keys here, so they can
never disagree about it; the command line's cache-hit path (``credential-process`` answered
from the disk cache) imports this module too, so it stays cheap to import: no typing,
dataclasses, configparser or shlex until a file really has to be parsed.

botocore's rules, followed exactly (botocore/session.py and botocore/configloader.py):

- the profile is the session's own, else ``AWS_DEFAULT_PROFILE``, else ``AWS_PROFILE``
  (in that order), else ``default``; a profile that was *named* must exist, even ``default``;
- the files are ``AWS_CONFIG_FILE`` (``~/.aws/config``) and ``AWS_SHARED_CREDENTIALS_FILE``
  (``~/.aws/credentials``), with ``$VARS`` and ``~`` expanded;
- a config-file section is a profile when it is ``[default]`` or when it starts with
  ``profile`` and splits (shell rules) into two words: ``[profile  x]`` and
  ``[profile "x"]`` are profile ``x``; a later section for the same profile replaces an
  earlier one; keys are case-insensitive (stored lower-case);
- every section of the credentials file is a profile of that name, and its keys override the
  config file's keys of the same profile; a profile defined only there exists.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Optional, Union

    ProfileMap = dict[str, dict[str, Union[str, dict[str, str]]]]

DEFAULT_PROFILE = "default"
# botocore's order: AWS_DEFAULT_PROFILE is read before AWS_PROFILE.
PROFILE_VARIABLES = ("AWS_DEFAULT_PROFILE", "AWS_PROFILE")
CONFIG_FILE_VARIABLE = "AWS_CONFIG_FILE"
CREDENTIALS_FILE_VARIABLE = "AWS_SHARED_CREDENTIALS_FILE"
DEFAULT_CONFIG_FILE = os.path.join("~", ".aws", "config")
DEFAULT_CREDENTIALS_FILE = os.path.join("~", ".aws", "credentials")


def expand_path(path: str) -> str:
    """As botocore expands a configured file name: environment variables, then ``~``."""
    return os.path.expanduser(os.path.expandvars(path))


# A variable that is set counts even when empty, as in botocore: AWS_CONFIG_FILE='' names no
# file at all (not the default one), and AWS_PROFILE='' names a profile that does not exist.
def config_file_path(environ: Mapping[str, str]) -> str:
    return expand_path(environ.get(CONFIG_FILE_VARIABLE, DEFAULT_CONFIG_FILE))


def credentials_file_path(environ: Mapping[str, str]) -> str:
    return expand_path(environ.get(CREDENTIALS_FILE_VARIABLE, DEFAULT_CREDENTIALS_FILE))


class ProfileChoice:
    """The active profile's name and what named it (None: nobody did, so it is ``default``)."""

    __slots__ = ("name", "named_by")

    def __init__(self, name: str, named_by: Optional[str]) -> None:
        self.name = name
        self.named_by = named_by

    @property
    def must_exist(self) -> bool:
        """botocore raises ProfileNotFound for a named profile that is absent, even default."""
        return self.named_by is not None


def choose_profile(
    environ: Mapping[str, str], explicit: Optional[str] = None, explicit_origin: str = "--profile"
) -> ProfileChoice:
    """The profile botocore would use, given an explicit name (a session's or ``--profile``)."""
    if explicit is not None:
        return ProfileChoice(explicit, explicit_origin)
    for variable in PROFILE_VARIABLES:
        value = environ.get(variable)
        if value is not None:
            return ProfileChoice(value, f"environment variable {variable}")
    return ProfileChoice(DEFAULT_PROFILE, None)


def _read_bytes(path: Optional[str]) -> Optional[bytes]:
    """The file's content, or None where botocore would find no file (ConfigNotFound)."""
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError:
        return None


class ConfigFiles:
    """The config and credentials files as they are now: their bytes, read once.

    The bytes serve two purposes: they are what the disk-cache key covers (so an in-place
    rewrite that keeps size and modification time still starts a new entry), and they are
    parsed only when a key is really looked up.
    """

    __slots__ = ("_parsed", "config", "config_path", "credentials", "credentials_path")

    def __init__(
        self,
        config_path: Optional[str],
        credentials_path: Optional[str],
        parsed: Optional[ProfileMap] = None,
    ) -> None:
        self.config_path = config_path
        self.credentials_path = credentials_path
        self._parsed = parsed
        # Profiles given already parsed come from no file (callers holding them in memory).
        self.config = _read_bytes(config_path) if parsed is None else None
        self.credentials = _read_bytes(credentials_path) if parsed is None else None

    @classmethod
    def absent(cls) -> ConfigFiles:
        """No files at all: for checking explicit arguments on their own."""
        return cls(None, None)

    @classmethod
    def of_profiles(cls, profiles: ProfileMap, config_path: Optional[str] = None) -> ConfigFiles:
        """Profiles already parsed (for callers that hold them in memory, and tests)."""
        return cls(config_path, None, parsed=profiles)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ConfigFiles:
        return cls(config_file_path(environ), credentials_file_path(environ))

    def may_define(self, key: str) -> bool:
        """False only when no profile of either file can hold ``key`` (lower-case): then
        the caller need not parse. Keys are case-insensitive, as configparser folds them."""
        if self._parsed is not None:
            return True  # parsed already: looking the key up is free
        key = key.lower()
        for content in (self.config, self.credentials):
            if content and key in content.decode("utf-8", "replace").lower():
                return True
        return False

    def profiles(self) -> ProfileMap:
        """Every profile of both files with its keys; ConfigError if a file cannot be parsed."""
        if self._parsed is None:
            profiles: ProfileMap = {}
            for name, values in _sections(self.config, self.config_path):
                profile = _config_section_profile(name)
                if profile is not None:
                    profiles[profile] = values
            for name, values in _sections(self.credentials, self.credentials_path):
                profiles.setdefault(name, {}).update(values)
            self._parsed = profiles
        return self._parsed

    def profile(self, name: str) -> Optional[dict[str, Union[str, dict[str, str]]]]:
        """The keys of profile ``name``, or None when neither file defines it."""
        return self.profiles().get(name)


def _config_section_profile(section: str) -> Optional[str]:
    """The profile a config-file section defines, or None (``[sso-session x]``, ``[preview]``)."""
    if section == DEFAULT_PROFILE:
        return DEFAULT_PROFILE
    if not section.startswith("profile"):
        return None
    import shlex

    try:
        words = shlex.split(section)
    except ValueError:
        return None
    return words[1] if len(words) == 2 else None


def _sections(
    content: Optional[bytes], path: Optional[str]
) -> list[tuple[str, dict[str, Union[str, dict[str, str]]]]]:
    """The sections of one INI file in file order, parsed as botocore parses them."""
    if content is None:
        return []
    import configparser

    parser = configparser.RawConfigParser()
    try:
        parser.read_string(content.decode("utf-8"), source=path or "<config>")
    except (configparser.Error, UnicodeDecodeError) as exc:
        from ..errors import ConfigError

        reason = " ".join(str(exc).split())
        raise ConfigError(f"cannot parse AWS config file {path}: {reason}") from None
    sections = []
    for section in parser.sections():
        values: dict[str, Union[str, dict[str, str]]] = {}
        for option in parser.options(section):
            value = parser.get(section, option)
            # botocore reads an indented block under an empty key as a nested mapping.
            values[option] = _nested(value, path) if value.startswith("\n") else value
        sections.append((section, values))
    return sections


def _nested(value: str, path: Optional[str]) -> dict[str, str]:
    nested = {}
    for line in value.splitlines():
        line = line.strip()
        if not line:
            continue
        key, equals, item = line.partition("=")
        if not equals:
            from ..errors import ConfigError

            raise ConfigError(f"cannot parse AWS config file {path}: nested line {line!r}")
        nested[key.strip()] = item.strip()
    return nested
