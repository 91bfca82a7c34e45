"""The "no role to assume" message: what to change, for the way the tool was most likely run.

The usual way to get here: a ``credential_process`` profile keeps its role in
``assume_provider_role_arn``, and ``aws --profile NAME`` or ``boto3.Session(profile_name=NAME)``
runs the tool. Neither tells the process which profile it belongs to (only ``AWS_PROFILE``,
inherited, does), so the tool reads ``[default]``. Telling that user to set the key in
``default`` sends them the wrong way: the line must name the profile itself.
"""

from __future__ import annotations

from ..config.inputs import SettingInputs, config_key, env_var


def no_role_message(inputs: SettingInputs) -> str:
    profile = inputs.profile
    key = config_key("role_arn")
    if inputs.profile_opts_out():
        return (
            f"no role to assume: profile '{profile.name}' keeps itself out of assume-provider "
            f"with an empty {key}; give --role-arn to assume a role anyway"
        )
    where = f"profile '{profile.name}' of {inputs.files.config_path}"
    if profile.named_by is not None:
        return (
            f"no role to assume: give --role-arn, set {env_var('role_arn')}, or set {key} "
            f"in {where}"
        )
    named = _profiles_needing_their_name(inputs)
    example = named[0] if named else "NAME"
    line = f"credential_process = assume-provider credential-process --profile {example}"
    which = (
        f"profile {', '.join(repr(name) for name in named)} keeps its role in {key}: "
        if named
        else f"a profile that keeps its role in {key} must be named: "
    )
    return (
        f"no role to assume in {where}, the profile used when none is named; the AWS CLI "
        f"and SDKs do not tell a credential_process its profile, so {which}"
        f"write its line as '{line}' (or give --role-arn, or set {env_var('role_arn')})"
    )


def _profiles_needing_their_name(inputs: SettingInputs) -> list[str]:
    """Profiles whose credential_process runs this tool without naming a profile or a role,
    and that keep a role in assume_provider_role_arn."""
    try:
        profiles = inputs.files.profiles()
    except Exception:  # noqa: BLE001 - an unparsable file: the generic advice will do
        return []
    found = []
    for name, values in sorted(profiles.items()):
        command = values.get("credential_process")
        role = values.get(config_key("role_arn"))
        if not isinstance(command, str) or not isinstance(role, str) or not role.strip():
            continue
        words = command.split()
        if "credential-process" in words and not {"--profile", "--role-arn"} & {
            word.partition("=")[0] for word in words
        }:
            found.append(name)
    return found
