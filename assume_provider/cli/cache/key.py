"""Settings and the disk-cache key for the command line, computed without botocore.

The CLI reads settings like the library (explicit argument > environment variable > key in
the active profile), but through ``config_file`` instead of a botocore session, so that a
``credential-process`` cache hit never imports botocore.

The cache key is a SHA-256 of the *raw* inputs, i.e. everything that can change the result
as far as it can be known without network I/O (see ``key_material``). It is computed before
validation and without parsing the config file (its path and modification stamp stand for
its content), which keeps the cache-hit path free of heavy imports; that is safe because an
entry is only ever written after the same raw inputs were validated and the chain assumed.
Two invocations with equal keys would assume the same roles from the same source with the
same STS settings, so they may share one cached result.
"""

from __future__ import annotations

import os

from ...config.profiles import active_profile_name, config_file_path, profile_values

try:  # the builtin module costs ~0.6 ms to import; hashlib loads OpenSSL (~2 ms)
    from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - Python 3.12+ renamed it; any sha256 will do
    from hashlib import sha256

# typing is not imported at run time: it costs the cache-hit path ~2 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Optional

    from ...config.settings import ConfigProfile, Settings

# As in settings.SETTING_NAMES / env_var / config_key (settings is not imported on the fast
# path: its dataclasses import alone costs ~5 ms); tests check that the two agree.
SETTING_NAMES = (
    "role_arn",
    "source",
    "external_id",
    "session_name",
    "duration_seconds",
    "cache_dir",
)
DEFAULT_CACHE_DIR = os.path.join("~", ".aws", "assume-provider", "cache")

# Set by `env`/`exec` (also in sources.EXPORTED_KEY_ID_VAR; not imported: that pulls botocore).
EXPORTED_KEY_ID_VAR = "ASSUME_PROVIDER_EXPORTED_KEY_ID"

# Recursion guard, set in our own environment before the source is resolved, so that any
# process the source chain starts (a credential_process) inherits it.
DEPTH_VAR = "ASSUME_PROVIDER_DEPTH"
CHAIN_KEYS_VAR = "ASSUME_PROVIDER_CHAIN_KEYS"
# A chain whose source runs the tool again is legitimate at most a couple of levels deep
# (profile A's source is a process that assumes profile B...); beyond this it is a loop.
MAX_DEPTH = 3

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


def credentials_file_path(environ: Mapping[str, str]) -> str:
    return os.path.expanduser(
        environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join("~", ".aws", "credentials")
    )


class RawInputs:
    """What one invocation was given: arguments, environment and the active profile's keys."""

    def __init__(
        self,
        arguments: Mapping[str, Any],
        environ: Mapping[str, str],
        profile_name: Optional[str] = None,
    ) -> None:
        self.arguments = dict(arguments)
        self.environ = environ
        self.profile = active_profile_name(environ, profile_name)
        # A profile named by --profile or AWS_PROFILE must exist; "default" may be absent.
        self.profile_named = bool(
            profile_name or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE")
        )
        self.config_file = config_file_path(environ)
        self._profile_values: Optional[dict[str, str]] = None
        self._profile_read = False

    @property
    def profile_values(self) -> Optional[dict[str, str]]:
        """The active profile's keys (None if absent), read on first use: a cache hit whose
        settings all come from arguments and environment never parses the config file."""
        if not self._profile_read:
            self._profile_values = profile_values(self.profile, self.config_file)
            self._profile_read = True
        return self._profile_values

    def given(self, name: str) -> Any:
        """The value from an argument or the environment, not looking at the config file."""
        if self.arguments.get(name) is not None:
            return self.arguments[name]
        value = self.environ.get("ASSUME_PROVIDER_" + name.upper())
        return value if value is not None and value.strip() else None

    def raw(self, name: str) -> Any:
        """The value that wins by precedence (argument > environment > profile), unparsed."""
        value = self.given(name)
        if value is not None:
            return value
        value = (self.profile_values or {}).get("assume_provider_" + name)
        if value is not None and value.strip():
            return value
        return None

    def cache_dir(self) -> str:
        """The cache folder, as settings.parse_cache_dir resolves a valid value."""
        return cache_folder(self.raw("cache_dir"))


def cache_folder(raw: Any) -> str:
    """The folder a raw cache_dir setting names (the default when it is unset or invalid)."""
    if isinstance(raw, str) and raw.strip() and "\0" not in raw:
        return os.path.abspath(os.path.expanduser(raw))
    return os.path.expanduser(DEFAULT_CACHE_DIR)


def load_cli_settings(inputs: RawInputs) -> tuple[Settings, ConfigProfile]:
    """Validated settings for a subcommand; ConfigError (exit 2) if no role is configured."""
    from ...config.settings import ConfigProfile, config_key, env_var, resolve_settings
    from ...errors import ConfigError

    if inputs.profile_values is None and inputs.profile_named:
        raise ConfigError(
            f"profile '{inputs.profile}' not found in AWS config file {inputs.config_file}"
        )
    profile = ConfigProfile(inputs.profile, inputs.config_file, inputs.profile_values or {})
    settings = resolve_settings(inputs.arguments, inputs.environ, profile)
    if not settings.active:
        raise ConfigError(
            f"no role to assume: give --role-arn, set {env_var('role_arn')}, or set "
            f"{config_key('role_arn')} in profile '{profile.name}' of {profile.path}"
        )
    return settings, profile


def visible_access_key_id(environ: Mapping[str, str]) -> Optional[str]:
    """AWS_ACCESS_KEY_ID unless it is the key that `env`/`exec` exported (never a source)."""
    key_id = environ.get("AWS_ACCESS_KEY_ID") or None
    if key_id is not None and key_id == environ.get(EXPORTED_KEY_ID_VAR):
        return None
    return key_id


def _file_stamp(path: str) -> Optional[tuple[int, int, int]]:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def key_material(inputs: RawInputs) -> dict[str, Any]:
    """Everything that determines the chain's result, as known without network I/O.

    - the chain settings (role ARNs, source, external ID, session name, duration) given as
      arguments or environment variables; for the default session name, the user and host
      it derives from;
    - the active profile's name and the config and credentials files' paths with their
      (inode, size, mtime) stamps: they stand for every setting and profile key read from
      those files, so editing either file starts a new entry;
    - the source identity: the environment's access key ID (unless it is our own export),
      the IMDS endpoint and mode, the container credentials URIs, web identity settings;
    - where STS is reached: region and endpoint variables;
    - the uid (the folder is per user anyway; this keeps a shared folder honest).
    """
    environ = inputs.environ
    environ_values = {name: environ.get(name) for name in _KEYED_ENV}
    environ_values["AWS_ACCESS_KEY_ID"] = visible_access_key_id(environ)
    credentials_path = credentials_file_path(environ)
    settings = {name: inputs.given(name) for name in SETTING_NAMES if name != "cache_dir"}
    if settings["session_name"] is None:
        settings["session_name"] = [
            "default",
            *(environ.get(name) for name in ("LOGNAME", "USER", "LNAME", "USERNAME")),
            os.uname().nodename,
        ]
    return {
        "version": 2,
        "uid": os.geteuid(),
        "settings": settings,
        "profile": inputs.profile,
        "config_file": [inputs.config_file, _file_stamp(inputs.config_file)],
        "credentials_file": [credentials_path, _file_stamp(credentials_path)],
        "environment": environ_values,
    }


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


class CredentialLoopError(Exception):
    """The source of the chain runs this tool again (exit status 1, one clear line)."""


def check_recursion(key: str, environ: Mapping[str, str]) -> None:
    """Fail fast (exit 1) when this invocation is part of a credential_process loop."""
    depth = _depth(environ)
    ancestors = [item for item in environ.get(CHAIN_KEYS_VAR, "").split(",") if item]
    if key in ancestors:
        raise CredentialLoopError(
            "credential loop: the source credentials of this role chain are provided by a "
            "credential_process that runs assume-provider for the same chain again; set "
            "--source (e.g. instance-metadata, environment or profile:NAME) to a source that "
            "does not run this tool"
        )
    if depth >= MAX_DEPTH:
        raise CredentialLoopError(
            f"credential loop: assume-provider is nested {depth} levels deep inside its own "
            f"source credential processes ({DEPTH_VAR}={depth}); refusing to go deeper. Set "
            "--source to a source that does not run this tool"
        )


def mark_for_children(key: str, environ: os._Environ[str]) -> None:
    """Tell any process the source resolution starts that it runs inside this chain."""
    ancestors = [item for item in environ.get(CHAIN_KEYS_VAR, "").split(",") if item]
    environ[DEPTH_VAR] = str(_depth(environ) + 1)
    environ[CHAIN_KEYS_VAR] = ",".join([*ancestors, key])


def _depth(environ: Mapping[str, str]) -> int:
    try:
        return max(int(environ.get(DEPTH_VAR, "0")), 0)
    except ValueError:
        return 0
