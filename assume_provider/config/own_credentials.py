"""One warning when a host-wide ASSUME_PROVIDER_ROLE_ARN takes over a profile that says how to
get credentials of its own.

``AWS_PROFILE=admin`` with ``role_arn``/``source_profile`` (or SSO, or a credential_process):
the variable's chain still applies, with the admin role as its source, which is what the
contract says but rarely what the person who chose ``admin`` meant. Behaviour stays as it is;
one WARNING line per profile and process says so and how to keep the profile out (an empty
``assume_provider_role_arn =`` in it: ``SettingInputs.profile_opts_out``).

"Its own credentials" means a way to obtain them, not keys to start from: static keys in a
profile are the ordinary source a role chain starts from (source ``auto``), so they are not
counted; a profile with any ``assume_provider_*`` key was written for this tool and is not
warned about either.
"""

from __future__ import annotations

import logging

from .inputs import CONFIG_PREFIX, ENVIRONMENT, ROLE_ARN, SettingInputs, config_key, env_var

logger = logging.getLogger(__name__)

# Keys with which a profile obtains credentials itself (botocore's providers read them).
OWN_CREDENTIAL_KEYS = (
    "role_arn",
    "credential_source",
    "source_profile",
    "credential_process",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "sso_role_name",
    "login_session",
)

_considered: set[str] = set()


def own_credential_keys(given: SettingInputs) -> list[str]:
    """The active profile's own-credential keys, or none if it has an assume_provider_* key."""
    files = given.files
    if not any(files.may_define(key) for key in OWN_CREDENTIAL_KEYS):
        return []  # no profile of either file can have one: no parsing
    values = given.profile_values() or {}
    if any(key.startswith(CONFIG_PREFIX) for key in values):
        return []
    return [key for key in OWN_CREDENTIAL_KEYS if key in values]


def warn_if_profile_taken_over(given: SettingInputs, role_place: str) -> None:
    """Called with the place the active role chain came from (inputs.ENVIRONMENT, ...)."""
    profile = given.profile.name
    if role_place != ENVIRONMENT or profile in _considered:
        return
    _considered.add(profile)
    keys = own_credential_keys(given)
    if not keys:
        return
    where = f" of {given.files.config_path}" if given.files.config_path else ""
    logger.warning(
        "profile '%s'%s gets credentials of its own (%s), but %s applies to it too: those "
        "credentials become the source of the role chain; to keep this profile out, add an "
        "empty '%s =' line to it",
        profile,
        where,
        ", ".join(keys),
        env_var(ROLE_ARN),
        config_key(ROLE_ARN),
    )
