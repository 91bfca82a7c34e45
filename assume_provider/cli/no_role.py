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
    advice = (
        f"no role to assume: give --role-arn, set {env_var('role_arn')}, or name a profile "
        f"that has {key} with --profile NAME (none was named, so {where} was read)"
    )
    if named:
        return (
            f"{advice}; profile {', '.join(repr(name) for name in named)} keeps its role in "
            f"{key}, but the AWS CLI and SDKs do not tell a credential_process its profile: "
            f"write its line as '{_line(named[0])}'"
        )
    return (
        f"{advice}; the AWS CLI and SDKs do not tell a credential_process its profile: "
        f"write its line as '{_line('NAME')}'"
    )


def _line(profile: str) -> str:
    return f"credential_process = assume-provider credential-process --profile {profile}"


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
