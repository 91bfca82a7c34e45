"""The disk-cache key: a SHA-256 of everything that can change the chain's result.

It is computed from the *raw* inputs (``config.inputs.SettingInputs``), before validation
and without parsing the config files: their bytes stand for every profile key read from
them, so any edit, even one that keeps the size and modification time (``cp -p``,
``tar x``), starts a new entry. That keeps the cache-hit path free of heavy imports, and it
is safe because an entry is only ever written after the same raw inputs were validated and
the chain assumed: two invocations with equal keys would assume the same roles from the
same source with the same STS settings.
"""

from __future__ import annotations

import os
from hashlib import sha256

from ..config.inputs import SETTING_NAMES, SettingInputs, visible_access_key_id

# typing is not imported at run time: it costs the cache-hit path ~2 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Optional

KEY_VERSION = 4
# Settings that decide the result (the cache folder and refresh tuning only decide where
# and how long an entry is kept; ``share`` only whether the library uses the cache at all,
# so a library process with ``share = disk`` and ``credential-process`` find one entry).
_NOT_KEYED = ("cache_dir", "prefetch", "refresh_window_seconds", "share")
KEYED_SETTINGS = tuple(name for name in SETTING_NAMES if name not in _NOT_KEYED)

# Environment variables that decide the source identity or where STS is reached.
_KEYED_ENV = (
    "AWS_ACCESS_KEY_ID",  # environment source (hidden when it is our own export, see below)
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)


def _digest(content: Optional[bytes]) -> Optional[str]:
    return None if content is None else str(sha256(content).hexdigest())


def key_material(inputs: SettingInputs, session_overrides: Optional[str] = None) -> dict[str, Any]:
    """Everything that determines the chain's result, as known without network I/O.

    The one computation for the command line and the library (``share = disk``), so that
    equal settings find one entry. ``session_overrides`` is what a library session sets
    beyond its environment and files (``boto3.Session(region_name=...)``, a client config):
    the command line's session never has any, so a session with some gets keys of its own.

    - the chain settings given as arguments or environment variables; for the default
      session name, the user and host it derives from;
    - the active profile's name and the config and credentials files' paths and content
      digests: they stand for every setting and profile key read from those files;
    - the source identity: the environment's access key ID (unless it is our own export),
      the IMDS endpoint and mode, the container credentials URIs, web identity settings;
    - where STS is reached: region and endpoint variables;
    - the uid (the folder is per user anyway; this keeps a shared folder honest).
    """
    environ = inputs.environ
    environ_values = {name: environ.get(name) for name in _KEYED_ENV}
    environ_values["AWS_ACCESS_KEY_ID"] = visible_access_key_id(environ)
    settings = {name: inputs.given(name) for name in KEYED_SETTINGS}
    if settings["session_name"] is None:
        settings["session_name"] = [
            "default",
            *(environ.get(name) for name in ("LOGNAME", "USER", "LNAME", "USERNAME")),
            os.uname().nodename,
        ]
    files = inputs.files
    material: dict[str, Any] = {
        # An inline policy given as file://PATH: that file's content decides the result too.
        "policy_file": _policy_file(inputs),
        "version": KEY_VERSION,
        "uid": os.geteuid(),
        "settings": settings,
        "profile": inputs.profile.name,
        "config_file": [files.config_path, _digest(files.config)],
        "credentials_file": [files.credentials_path, _digest(files.credentials)],
        "environment": environ_values,
    }
    if session_overrides is not None:
        material["session_overrides"] = session_overrides
    return material


def _policy_file(inputs: SettingInputs) -> Optional[list[Any]]:
    """The path and content digest of a ``file://`` inline policy, wherever it was set."""
    try:
        raw = inputs.raw("policy")
    except Exception:  # noqa: BLE001 - an unparsable file: validation (a miss) explains it
        return ["unreadable configuration"]
    if not isinstance(raw, str) or not raw.strip().startswith("file://"):
        return None
    path = os.path.expanduser(raw.strip()[len("file://") :])
    try:
        with open(path, "rb") as handle:
            content: Optional[bytes] = handle.read(64 * 1024 + 1)
    except (OSError, ValueError):
        content = None
    return [path, _digest(content)]


def _canonical(value: Any) -> Any:
    """Nested dicts and lists as sorted tuples, so that ``repr`` is a stable serialisation."""
    if isinstance(value, dict):
        return tuple(sorted((str(key), _canonical(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(item) for item in value)
    return value


def cache_key(material: Mapping[str, Any]) -> str:
    # repr, not json: json's import costs a cache hit ~2 ms. Values are str, int, None and
    # tuples of those, whose repr is stable across runs and Python versions.
    text = repr(_canonical(dict(material)))
    return str(sha256(text.encode("utf-8")).hexdigest()[:40])


def key_of(inputs: SettingInputs, session_overrides: Optional[str] = None) -> str:
    """The entry's key: ``credential-process`` and the library's ``share = disk`` both ask here."""
    return cache_key(key_material(inputs, session_overrides))
