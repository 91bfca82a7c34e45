"""Reading the active profile of the AWS config file without importing botocore.

The library reads profiles through the botocore session (so a session's own profile and
config file are honoured); the CLI's cache-hit fast path must not import botocore, so it
uses this small reader, which follows botocore's rules for section names.
"""

from __future__ import annotations

import os

# Not imported at run time on the CLI's cache-hit path: typing (~2 ms), configparser (which
# imports re, ~4 ms) and settings (dataclasses, ~5 ms) are loaded only when a profile is read.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Optional

    from .settings import ConfigProfile


def config_file_path(environ: Mapping[str, str]) -> str:
    return os.path.expanduser(environ.get("AWS_CONFIG_FILE") or os.path.join("~", ".aws", "config"))


def active_profile_name(environ: Mapping[str, str], explicit: Optional[str] = None) -> str:
    return explicit or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"


def profile_values(name: str, path: str) -> Optional[dict[str, str]]:
    """The keys of profile ``name`` in the config file at ``path``, or None if it is absent."""
    import configparser

    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        from ..errors import ConfigError

        raise ConfigError(f"cannot parse AWS config file {path}: {exc}") from None
    # botocore's rule: "[profile NAME]" sections; the default profile may also be "[default]".
    sections = ("default", "profile default") if name == "default" else (f"profile {name}",)
    for section in sections:
        if parser.has_section(section):
            return dict(parser.items(section))
    return None


def read_profile(name: str, path: str, *, required: bool) -> ConfigProfile:
    """The keys of profile ``name``; ConfigError if ``required`` and the profile is missing."""
    from .settings import ConfigProfile

    values = profile_values(name, path)
    if values is None and required:
        from ..errors import ConfigError

        raise ConfigError(f"profile '{name}' not found in AWS config file {path}")
    return ConfigProfile(name, path, values or {})
