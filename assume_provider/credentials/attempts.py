"""Why a source found no credentials: each place botocore tried, in its order, and why.

A bare "no credentials found" leaves the user guessing which of a dozen places was looked
at. The reasons here are read from the inputs botocore's providers read (the environment,
the session's config variables and profile map), after they all returned nothing; nothing
here makes a network call or reads a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import botocore.credentials
import botocore.utils

from ..config.inputs import EXPORTED_KEY_ID_VAR
from ..config.settings import PROFILE_SOURCE_PREFIX, SOURCE_KINDS, Source
from ..engine.records import frozen
from .imds import imds_attempts

ENVIRONMENT = "environment"
SHARED_FILES = "shared files"
CONTAINER = "container endpoint"
INSTANCE_METADATA = "instance metadata"

# botocore's provider METHODs, grouped by the place a user knows them by.
_PLACE_OF_METHOD = {
    "env": ENVIRONMENT,
    "assume-role": SHARED_FILES,
    "assume-role-with-web-identity": SHARED_FILES,
    "sso": SHARED_FILES,
    "shared-credentials-file": SHARED_FILES,
    "login": SHARED_FILES,
    "custom-process": SHARED_FILES,
    "config-file": SHARED_FILES,
    "ec2-credentials-file": SHARED_FILES,
    "boto-config": SHARED_FILES,
    "container-role": CONTAINER,
    "iam-role": INSTANCE_METADATA,
}
# The profile key each profile-based provider looks for, in botocore's order.
_PROFILE_KEY_OF_METHOD = {
    "assume-role": "role_arn",
    "assume-role-with-web-identity": "web_identity_token_file",
    "sso": "sso_account_id/sso_role_name",
    "shared-credentials-file": "aws_access_key_id",
    "login": "login_session",
    "custom-process": "credential_process",
    "config-file": "aws_access_key_id",
}
_CONTAINER_VARS = (
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@frozen
class Attempt:
    """One place the source looked for credentials, and why it found none there."""

    place: str
    reason: str


def explain(
    methods: Sequence[str],
    session: Any,
    *,
    env_skipped_for_profile: bool = False,
    environ: Optional[Mapping[str, str]] = None,
) -> list[Attempt]:
    """The places botocore's providers ``methods`` (in chain order) stand for, with reasons.

    ``session`` is the botocore session the providers were built from;
    ``env_skipped_for_profile`` says botocore left the environment out because the session's
    profile was named explicitly.
    """
    env = os.environ if environ is None else environ
    groups: list[tuple[str, list[str]]] = []
    for method in methods:
        place = _PLACE_OF_METHOD.get(method, f"botocore provider {method}")
        if groups and groups[-1][0] == place:
            groups[-1][1].append(method)
        else:
            groups.append((place, [method]))
    attempts = []
    if env_skipped_for_profile:
        profile = session.get_config_variable("profile")
        attempts.append(
            Attempt(
                ENVIRONMENT,
                f"not read, because profile '{profile}' was named explicitly "
                "(botocore then ignores AWS_ACCESS_KEY_ID)",
            )
        )
    for place, group in groups:
        if place == ENVIRONMENT:
            reason = _environment(env)
        elif place == SHARED_FILES:
            reason = _shared_files(group, session, env)
        elif place == CONTAINER:
            reason = f"neither {_CONTAINER_VARS[0]} nor {_CONTAINER_VARS[1]} is set"
        elif place == INSTANCE_METADATA:
            reason = _instance_metadata(session, env)
        else:
            reason = "returned no credentials"
        attempts.append(Attempt(place, reason))
    return attempts


def _environment(env: Mapping[str, str]) -> str:
    key_id = env.get("AWS_ACCESS_KEY_ID")
    if not key_id:
        return "AWS_ACCESS_KEY_ID is not set"
    if key_id == env.get(EXPORTED_KEY_ID_VAR):
        return (
            f"AWS_ACCESS_KEY_ID is hidden: it is the key that assume-provider env/exec exported "
            f"({EXPORTED_KEY_ID_VAR}), never a source"
        )
    return "AWS_ACCESS_KEY_ID is set, but botocore found no credentials there"


def _shared_files(methods: Sequence[str], session: Any, env: Mapping[str, str]) -> str:
    name = session.get_config_variable("profile") or "default"
    credentials_file = os.path.expanduser(session.get_config_variable("credentials_file") or "")
    config_file = os.path.expanduser(session.get_config_variable("config_file") or "")
    # What the providers themselves read: the config file's profiles merged with the
    # credentials file's.
    profile = (session.full_config.get("profiles") or {}).get(name)
    files = f"the credentials file {credentials_file} or the config file {config_file}"
    parts = []
    if profile is None:
        parts.append(f"profile '{name}' is in neither {files.replace(' or ', ' nor ')}")
    else:
        wanted = [_PROFILE_KEY_OF_METHOD[m] for m in methods if m in _PROFILE_KEY_OF_METHOD]
        missing = [key for key in dict.fromkeys(wanted) if not _has(profile, key)]
        if missing:
            parts.append(f"profile '{name}' has no {_or(missing)} in {files}")
        if "credential_process" in profile and "custom-process" not in methods:
            parts.append(
                f"the credential_process of profile '{name}' runs assume-provider itself and "
                "is skipped (it would ask this tool again)"
            )
    # botocore's web identity provider ignores the environment for an explicitly named profile.
    env_ignored = session.instance_variables().get("profile") is not None
    if "assume-role-with-web-identity" in methods and not env_ignored:
        if not env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
            parts.append("AWS_WEB_IDENTITY_TOKEN_FILE is not set")
    if "ec2-credentials-file" in methods and "AWS_CREDENTIAL_FILE" in env:
        parts.append(f"AWS_CREDENTIAL_FILE {env['AWS_CREDENTIAL_FILE']} has no AWSAccessKeyId")
    if "boto-config" in methods:
        boto = botocore.credentials.BotoProvider
        names = [env[boto.BOTO_CONFIG_ENV]] if boto.BOTO_CONFIG_ENV in env else None
        for path in names or boto.DEFAULT_CONFIG_FILENAMES:
            if names or os.path.isfile(os.path.expanduser(path)):
                parts.append(f"the boto config {path} has no [Credentials] aws_access_key_id")
    return ", and ".join(parts) or "returned no credentials"


def _has(profile: Mapping[str, Any], key: str) -> bool:
    return any(name in profile for name in key.split("/"))


def _or(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _instance_metadata(session: Any, env: Mapping[str, str]) -> str:
    # botocore's IMDSFetcher reads this variable from the environment, nothing else.
    if env.get("AWS_EC2_METADATA_DISABLED", "false").lower() == "true":
        return "disabled by AWS_EC2_METADATA_DISABLED=true"
    # The endpoint as botocore's fetcher chooses it: the configured one, else by mode.
    endpoint = session.get_config_variable("ec2_metadata_service_endpoint")
    if not endpoint:
        ipv6 = botocore.credentials.resolve_imds_endpoint_mode(session) == "ipv6"
        utils = botocore.utils
        endpoint = utils.METADATA_BASE_URL_IPv6 if ipv6 else utils.METADATA_BASE_URL
    per_try = session.get_config_variable("metadata_service_num_attempts")
    tries = imds_attempts(session)
    timeout = session.get_config_variable("metadata_service_timeout")
    attempts = f"{per_try} attempt(s)"
    if tries > 1:
        attempts = f"{tries} tries with backoff, {attempts} each"
    return (
        f"no credentials from IMDS at {endpoint} ({attempts}, {timeout} s timeout): "
        "unreachable (not on EC2?) or no IAM role attached to the instance"
    )


def _other_sources(source: Source) -> str:
    kinds = [kind for kind in SOURCE_KINDS if kind != source.kind]
    kinds.append(f"{PROFILE_SOURCE_PREFIX}NAME")
    return _or(kinds)


def not_found_message(source: Source, attempts: Sequence[Attempt]) -> str:
    """One line: what was tried, why each had nothing, and the setting that chooses another."""
    tried = "; ".join(
        f"{number}. {attempt.place}: {attempt.reason}"
        for number, attempt in enumerate(attempts, start=1)
    )
    setting = "set --source or ASSUME_PROVIDER_SOURCE (source= in Python)"
    if source.kind == "auto":
        advice = (
            f"To choose one source, {setting} to {_other_sources(source)}; or provide "
            "credentials in one of these places"
        )
    else:
        where = "there" if len(attempts) == 1 else "in one of these places"
        advice = (
            f"Provide credentials {where}, or {setting} to another source: "
            f"{_other_sources(source)}"
        )
    return (
        f"no source credentials found (source {source}); tried, in botocore's order: "
        f"{tried}. {advice}"
    )
