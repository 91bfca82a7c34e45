"""``assume-provider whoami``: the chain hop by hop, for diagnosing trust policies.

Never uses the disk cache: it calls STS GetCallerIdentity with the source credentials and
after every AssumeRole, and when a hop fails it names the hop, the role, the identity that
asked and the AWS error code, which is what an operator needs to fix a trust policy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

from ..config.inputs import SETTING_NAMES, SettingInputs
from ..config.settings import Settings
from ..diskcache.key import key_of
from . import common
from .obtain import botocore_session, load_cli_settings
from .payload import iso8601
from .recursion import check_recursion, mark_for_children


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "whoami",
        parents=parents,
        help="show the identity of the source and of every hop (GetCallerIdentity)",
        description=(
            "Resolve the role chain hop by hop and print the caller identity, account and "
            "expiry of the source and of each hop, and where each setting came from."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=run)


class WhoamiError(Exception):
    """A step of the chain failed; the message says which and as whom."""

    def __init__(self, message: str, code: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


def error_document(exc: BaseException) -> dict[str, Any]:
    """The ``--json`` form of a failure: ``{"error": {"code", "message", "exit_status", ...}}``.

    ``code`` is one of a fixed set (see ``_error_code``); ``message`` is the stderr line's text;
    some codes add fields: ``tried`` for no_source_credentials, ``hop``, ``role_arn`` and
    ``aws_error_code`` for assume_role_failed.
    """
    error: dict[str, Any] = {
        "code": _error_code(exc),
        "message": common.one_line(common.describe(exc)),
        "exit_status": common.exit_status_for(exc),
    }
    if isinstance(exc, WhoamiError):
        error.update(exc.details)
    tried = getattr(exc, "tried", None)
    if error["code"] == "no_source_credentials" and tried is not None:
        error["tried"] = [{"place": place, "reason": reason} for place, reason in tried]
    return {"error": error}


def _error_code(exc: BaseException) -> str:
    from ..errors import ConfigError, NoSourceCredentialsError, SourceCredentialsError
    from .recursion import CredentialLoopError

    if isinstance(exc, WhoamiError):
        return exc.code
    if isinstance(exc, ConfigError):
        return "invalid_configuration"
    if isinstance(exc, NoSourceCredentialsError):
        return "no_source_credentials"
    if isinstance(exc, SourceCredentialsError):
        return "source_credentials_failed"
    if isinstance(exc, CredentialLoopError):
        return "credential_loop"
    return "failed"


def _setting_value(settings: Settings, name: str) -> str:
    if name == "role_arn":
        return ",".join(settings.role_arns)
    if name == "tags":
        return ",".join(f"{key}={value}" for key, value in settings.tags) or "(none)"
    value = getattr(settings, name, None)  # settings added later print as they are
    if isinstance(value, tuple):
        return ",".join(value) or "(none)"
    return "(none)" if value is None else str(value)


def hop_parameters(hop: Any) -> dict[str, Any]:
    """The session parameters this hop sends (only those it sends)."""
    shown: dict[str, Any] = {}
    if hop.external_id is not None:
        shown["external_id"] = hop.external_id
    if hop.source_identity is not None:
        shown["source_identity"] = hop.source_identity
    if hop.tags:
        shown["tags"] = dict(hop.tags)
    if hop.transitive_tag_keys:
        shown["transitive_tag_keys"] = list(hop.transitive_tag_keys)
    if hop.policy_arns:
        shown["policy_arns"] = list(hop.policy_arns)
    if hop.policy is not None:
        shown["policy"] = hop.policy
    return shown


def _say(enabled: bool, text: str) -> None:
    if enabled:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except Exception as exc:
        if args.json:  # a machine reading stdout gets the failure too; stderr is unchanged
            sys.stdout.write(json.dumps(error_document(exc), indent=2) + "\n")
            sys.stdout.flush()
        raise


def _run(args: argparse.Namespace) -> int:
    text = not args.json
    inputs = SettingInputs.from_environment(
        common.settings_arguments(args), os.environ, getattr(args, "profile", None)
    )
    settings = load_cli_settings(inputs)
    key = key_of(inputs)
    check_recursion(key, os.environ)
    mark_for_children(key, os.environ)

    from ..credentials.chain import assume_hop
    from ..credentials.fetcher import fallback_regions, session_parameters
    from ..credentials.hops import plan_hops
    from ..credentials.sources import SourceCredentials
    from ..credentials.sts import sts_client_factory, sts_target
    from ..engine.refresh import TemporaryCredentials
    from ..errors import AssumeRoleError

    _say(text, f"settings (profile '{settings.profile}' of {inputs.files.config_path}):")
    for name in SETTING_NAMES:
        _say(text, f"  {name}: {_setting_value(settings, name)}  [{settings.origin(name)}]")

    session: Any = botocore_session(getattr(args, "profile", None))
    target = sts_target(session)
    endpoint = target.configured_endpoint or "botocore's default endpoint"
    where = f" (from {target.endpoint_origin})" if target.endpoint_origin else ""
    _say(text, f"  sts: region {target.region or '(none)'}, endpoint {endpoint}{where}")
    make_client = sts_client_factory(session, target)

    frozen, method = SourceCredentials(settings.source, session).get()
    caller = TemporaryCredentials(frozen.access_key, frozen.secret_key, frozen.token, None)
    source_identity = _identity(
        make_client,
        caller,
        f"source credentials ({settings.source}, found by botocore as "
        f"{method}, key {frozen.access_key})",
    )
    report: dict[str, Any] = {
        "source": {"arn": source_identity["Arn"], "account": source_identity["Account"]},
        "hops": [],
    }
    _say(text, f"source: {settings.source} (botocore method {method})")
    _say(text, f"  arn: {source_identity['Arn']}")
    _say(text, f"  account: {source_identity['Account']}")

    caller_arn = str(source_identity["Arn"])
    hops = plan_hops(
        settings.role_arns,
        duration_seconds=settings.duration_seconds,
        external_id=settings.external_id,
        source_is_role_session=caller.session_token is not None,
        parameters=session_parameters(settings),
    )
    fallbacks = fallback_regions(settings, target)
    for hop in hops:
        try:
            result = assume_hop(
                hop,
                caller,
                session_name=settings.session_name,
                make_sts_client=make_client,
                fallback_regions=fallbacks,
            )
        except AssumeRoleError as exc:
            raise WhoamiError(
                f"hop {hop.index} of {len(hops)} failed: AssumeRole {hop.role_arn} "
                f"called by {caller_arn}: {exc.error_code or 'no AWS error code'}: {exc.message}",
                "assume_role_failed",
                hop=hop.index,
                role_arn=hop.role_arn,
                aws_error_code=exc.error_code,
            ) from None
        caller = result.credentials
        identity = _identity(make_client, caller, f"hop {hop.index} ({hop.role_arn})")
        expiration = iso8601(caller.expiration) if caller.expiration is not None else None
        entry = {
            "role_arn": hop.role_arn,
            "arn": identity["Arn"],
            "account": identity["Account"],
            "expiration": expiration,
        }
        # Present only when there is something to show (the keys above are the stable ones).
        if hop_parameters(hop):
            entry["parameters"] = hop_parameters(hop)
        if result.fallback_region is not None:
            entry["fallback_region"] = result.fallback_region
        report["hops"].append(entry)
        _say(text, f"hop {hop.index}: {hop.role_arn}")
        _say(text, f"  arn: {identity['Arn']}")
        _say(text, f"  account: {identity['Account']}")
        _say(text, f"  expires: {expiration} (duration requested {hop.duration_seconds} s)")
        for name, value in hop_parameters(hop).items():
            if isinstance(value, dict):
                value = ",".join(f"{k}={v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ",".join(value)
            _say(text, f"  {name}: {value}")
        if result.fallback_region is not None:
            _say(text, f"  served by fallback region {result.fallback_region}")
        caller_arn = str(identity["Arn"])
    if not text:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        sys.stdout.flush()
    return common.EXIT_OK


def _identity(make_client: Any, credentials: Any, what: str) -> dict[str, Any]:
    import botocore.exceptions

    client = make_client(
        credentials.access_key_id, credentials.secret_access_key, credentials.session_token
    )
    try:
        response: dict[str, Any] = client.get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        error: dict[str, Optional[str]] = exc.response.get("Error", {})
        raise WhoamiError(
            f"GetCallerIdentity failed for {what}: {error.get('Code') or 'Unknown'}: "
            f"{(error.get('Message') or '').strip()}",
            "caller_identity_failed",
            aws_error_code=error.get("Code") or None,
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise WhoamiError(
            f"GetCallerIdentity failed for {what}: {exc}",
            "caller_identity_failed",
            aws_error_code=None,
        ) from None
    return response
