"""``credential-process`` answered from the disk cache, before argparse is even imported.

The AWS CLI runs ``credential_process`` on every command, so this path imports only the
cache modules and the settings inputs (no argparse, json, re, typing, botocore; configparser
only when a config file names a cache folder): the command then costs little more than the
interpreter's own start. It reads the command line by hand and gives up (returns None, and
the full command line runs) on anything it does not fully understand: an unknown or
abbreviated option, ``--debug``, ``--no-cache``, a miss. It never prints an error of its own.
"""

from __future__ import annotations

import os
import sys

from ...config.inputs import SettingInputs
from ...diskcache.key import key_of
from ...diskcache.store import CacheUnavailable, DiskCache
from ..payload import credential_process_document

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Optional

# The options whose values it understands, as settings names (``--profile`` aside).
_VALUE_OPTIONS = {
    "--role-arn": "role_arn",
    "--source": "source",
    "--external-id": "external_id",
    "--session-name": "session_name",
    "--duration-seconds": "duration_seconds",
    "--cache-dir": "cache_dir",
    "--profile": "profile",
    "--source-identity": "source_identity",
    "--policy": "policy",
    "--tag": "tags",
    "--transitive-tag-key": "transitive_tag_keys",
    "--policy-arn": "policy_arns",
    "--sts-fallback-region": "sts_fallback_regions",
}
# Options given once per item: every value counts, joined with commas (as common.py does).
_REPEATED = ("role_arn", "tags", "transitive_tag_keys", "policy_arns", "sts_fallback_regions")


def parse_options(argv: Sequence[str]) -> Optional[dict[str, str]]:
    """The options as argparse would read them, or None when unsure."""
    options: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    position = 0
    while position < len(argv):
        name, equals, value = argv[position].partition("=")
        if name not in _VALUE_OPTIONS:
            return None
        position += 1
        if not equals:
            if position >= len(argv) or argv[position].startswith("-"):
                return None  # argparse's rules for values that look like options differ
            value = argv[position]
            position += 1
        setting = _VALUE_OPTIONS[name]
        if setting in _REPEATED:
            repeated.setdefault(setting, []).append(value)
        else:
            options[setting] = value  # the last one wins, as in argparse
    for setting, values in repeated.items():
        options[setting] = ",".join(values)
    return options


def serve_from_cache(argv: Sequence[str]) -> Optional[int]:
    """Print the cached credentials and return 0, or None to run the full command line."""
    options = parse_options(argv)
    if options is None:
        return None
    profile = options.pop("profile", None)
    inputs = SettingInputs.from_environment(options, os.environ, profile)
    # The same folder the full command line would use (a config file names one rarely, and
    # only then is it parsed here); the key covers the config files' bytes, and an entry
    # exists only for inputs that were validated when it was written: no checks needed.
    try:
        folder = inputs.cache_dir()
    except Exception:  # noqa: BLE001 - e.g. an unparsable file: the full path explains it
        return None
    key = key_of(inputs)
    try:
        cache = DiskCache(folder).open()
    except (CacheUnavailable, OSError):
        return None  # the full path explains what is wrong with the folder
    try:
        entry = cache.read(key)
    finally:
        cache.close()
    if entry is None:
        return None
    sys.stdout.write(credential_process_document(entry))
    sys.stdout.flush()
    return 0
