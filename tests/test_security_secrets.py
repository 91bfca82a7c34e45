"""Secrets never leak: every way in, at DEBUG, on success and on failure.

The secrets checked are every SecretAccessKey and SessionToken moto has ever issued (moto
runs in this process: that covers the instance profile, which the bed gets by assuming
InstanceRole, and every hop any test assumed) plus the fake ones planted in malformed
responses. They may appear only in the payload of ``credential-process``/``env``/``exec``
on stdout; never in logs, stderr, exception messages, tracebacks or reprs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path

import boto3
import pytest
from cli_support import run_tool
from log_capture import Capture
from testbed import Fault, TestBed

import assume_provider
from assume_provider.engine import shared
from assume_provider.errors import AssumeProviderError
from assume_provider.redaction import MASK

REPO = Path(__file__).resolve().parent.parent

# Planted in malformed STS answers: a response cut off inside the SessionToken, and one
# missing the AccessKeyId. Long and distinctive, so a leak of any part of them shows.
PLANTED_SECRET = "PlantedSecretKey0123456789abcdefghijklmnop"
PLANTED_TOKEN = "PlantedSessionToken0123456789abcdefghijklmnopqrstuvwxyz"


def _xml(inner: str) -> bytes:
    return (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<AssumeRoleResult><Credentials>{inner}</Credentials></AssumeRoleResult>"
        "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>"
    ).encode()


TRUNCATED = (
    '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
    f"<Credentials><AccessKeyId>ASIAPLANTED000000001</AccessKeyId><SecretAccessKey>"
    f"{PLANTED_SECRET}</SecretAccessKey><SessionToken>{PLANTED_TOKEN[:30]}"
).encode()
MISSING_KEY_ID = _xml(
    f"<SecretAccessKey>{PLANTED_SECRET}</SecretAccessKey><SessionToken>{PLANTED_TOKEN}"
    "</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
)

FAILURES = {
    "access-denied": Fault.error("AccessDenied", 403, "not allowed"),
    "throttling": Fault.throttle(),
    "truncated-body": Fault.raw_body(TRUNCATED),
    "missing-field": Fault.raw_body(MISSING_KEY_ID),
}


def issued_secrets(bed: TestBed) -> set[str]:
    """Every secret access key and session token moto issued, plus the planted ones."""
    from moto.sts.models import sts_backends

    found = {PLANTED_SECRET, PLANTED_TOKEN, PLANTED_TOKEN[:30]}
    found |= {bed.imds.credentials.secret_access_key, bed.imds.credentials.token}
    for account in list(sts_backends.keys()):
        for assumed in sts_backends[account]["global"].assumed_roles:
            found |= {assumed.secret_access_key, assumed.session_token}
    return {secret for secret in found if secret}


def assert_no_secret(text: str, secrets: Iterable[str], where: str) -> None:
    leaked = [secret[:6] + "..." for secret in secrets if secret in text]
    assert not leaked, f"{where} contains secrets starting {leaked}"


# -- in this process -------------------------------------------------------------------


def _reprs(*objects: object) -> str:
    return "\n".join(repr(item) for item in objects)


def _exception_text(exc: BaseException) -> str:
    return "\n".join(
        [str(exc), repr(exc), "".join(traceback.format_exception(exc))]  # type: ignore[arg-type]
    )


@pytest.mark.usefixtures("fresh_provider_state")
def test_install_two_hops_at_debug_logs_and_reprs_hold_no_secret(
    aws_env: TestBed, debug_logs: Capture
) -> None:
    world = aws_env.world
    assume_provider.install(role_arn=[world.hop_role_arn, world.target_role_arn])
    session = boto3.Session()
    assert world.account_a in session.client("sts").get_caller_identity()["Arn"]
    credentials = session.get_credentials()
    frozen = credentials.get_frozen_credentials()
    provider = session._session.get_component("credential_provider").providers[0]
    engine = credentials.engine

    secrets = issued_secrets(aws_env)
    assert frozen.secret_key in secrets and frozen.token in secrets  # the collector works
    assert aws_env.imds.credentials.secret_access_key in secrets
    # botocore really logged the STS bodies and signed headers, and they were masked.
    assert "Response body" in debug_logs.text
    assert f"<SecretAccessKey>{MASK}</SecretAccessKey>" in debug_logs.text
    assert "x-amz-security-token" in debug_logs.text.lower()
    assert_no_secret(debug_logs.text, secrets, "DEBUG logs")
    assert_no_secret(
        _reprs(
            credentials,
            engine,
            engine.current,
            provider,
            provider.settings(),
            list(shared._objects.values()),
        ),
        secrets,
        "reprs",
    )


@pytest.mark.usefixtures("fresh_provider_state")
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_install_failures_at_debug_hold_no_secret(
    aws_env: TestBed, debug_logs: Capture, failure: str
) -> None:
    aws_env.proxy.inject(FAILURES[failure], action="AssumeRole", times=10)
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    session = boto3.Session()
    with pytest.raises(Exception) as raised:
        session.client("sts").get_caller_identity()
    assert isinstance(raised.value, AssumeProviderError), raised.value
    assert aws_env.world.target_role_arn in str(raised.value)
    secrets = issued_secrets(aws_env)
    assert_no_secret(debug_logs.text, secrets, "DEBUG logs")
    assert_no_secret(_exception_text(raised.value), secrets, "the exception")
    engine = session.get_credentials().engine
    assert_no_secret(_reprs(session.get_credentials(), engine), secrets, "reprs")


# -- zero-code activation in a subprocess --------------------------------------------------

ZERO_CODE_APP = """
import json, logging, sys, boto3
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
session = boto3.Session()
try:
    print(session.client("sts").get_caller_identity()["Arn"])
except Exception as exc:
    sys.stderr.write("APP CAUGHT: %s %r\\n" % (exc, exc))
    raise SystemExit(3)
credentials = session.get_credentials()
sys.stderr.write("REPR: %r %r\\n" % (credentials, credentials.engine))
frozen = credentials.get_frozen_credentials()
with open(sys.argv[1], "w") as handle:
    json.dump([frozen.secret_key, frozen.token], handle)
"""


def _zero_code_env(subprocess_env: dict[str, str], tmp_path: Path, role_arn: str) -> dict[str, str]:
    """The start-up hook as an installed package has it: a .pth processed at interpreter
    start (added by a sitecustomize, so the application itself has no code for it)."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    pth = (REPO / "startup" / "assume_provider_startup.pth").read_text()
    (site_dir / "assume_provider_startup.pth").write_text(pth)
    (site_dir / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({str(site_dir)!r})\n")
    env = dict(subprocess_env)
    env["PYTHONPATH"] = os.pathsep.join([str(site_dir), str(REPO)])
    env["ASSUME_PROVIDER_ROLE_ARN"] = role_arn
    return env


@pytest.mark.parametrize("failure", [None, "access-denied", "truncated-body"])
def test_zero_code_at_debug_holds_no_secret(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path, failure: str | None
) -> None:
    world = aws_env.world
    if failure is not None:
        aws_env.proxy.inject(FAILURES[failure], action="AssumeRole", times=10)
    env = _zero_code_env(subprocess_env, tmp_path, f"{world.hop_role_arn},{world.target_role_arn}")
    payload = tmp_path / "payload.json"
    done = subprocess.run(
        [sys.executable, "-c", ZERO_CODE_APP, str(payload)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if failure is None:
        assert done.returncode == 0, done.stderr[-2000:]
        assert world.account_a in done.stdout
        hop_secrets = json.loads(payload.read_text())
        assert "Response body" in done.stderr and "REPR: <EngineCredentials" in done.stderr
    else:
        assert done.returncode == 3, done.stderr[-2000:]
        assert "APP CAUGHT" in done.stderr and world.hop_role_arn in done.stderr
        hop_secrets = []
    secrets = issued_secrets(aws_env) | set(hop_secrets)
    assert_no_secret(done.stderr, secrets, "zero-code stderr")
    assert_no_secret(done.stdout, secrets, "zero-code stdout")


# -- the command line ------------------------------------------------------------------------


def _cli(
    bed: TestBed, env: dict[str, str], *args: str, debug_first: bool = True
) -> subprocess.CompletedProcess[str]:
    chain = f"{bed.world.hop_role_arn},{bed.world.target_role_arn}"
    settings = ["--role-arn", chain]
    command, *rest = args
    debug = ["--debug"]
    argv = (
        [*debug, command, *settings, *rest] if debug_first else [command, *debug, *settings, *rest]
    )
    return run_tool(argv, env)


PAYLOAD_PRINTER = "import json, os; print(json.dumps(dict(os.environ)))"


def test_every_cli_subcommand_at_debug_writes_secrets_only_to_its_payload(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    bed = aws_env
    stderrs: dict[str, str] = {}
    payload_secrets: set[str] = set()

    process = _cli(bed, subprocess_env, "credential-process", "--no-cache")
    assert process.returncode == 0, process.stderr
    document = json.loads(process.stdout)
    payload_secrets |= {document["SecretAccessKey"], document["SessionToken"]}
    stderrs["credential-process"] = process.stderr
    assert "Response body" in process.stderr  # botocore's raw STS bodies were logged...
    assert f"<SessionToken>{MASK}</SessionToken>" in process.stderr  # ...and masked

    cached = _cli(bed, subprocess_env, "credential-process", debug_first=False)  # via the cache
    assert cached.returncode == 0, cached.stderr
    stderrs["credential-process (cache)"] = cached.stderr
    cached_document = json.loads(cached.stdout)
    payload_secrets |= {cached_document["SecretAccessKey"], cached_document["SessionToken"]}

    env_lines = _cli(bed, subprocess_env, "env", "--no-cache")
    assert env_lines.returncode == 0, env_lines.stderr
    assert "AWS_SECRET_ACCESS_KEY" in env_lines.stdout
    stderrs["env"] = env_lines.stderr
    for line in env_lines.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            payload_secrets.add(value.strip("'"))

    executed = _cli(
        bed, subprocess_env, "exec", "--no-cache", "--", sys.executable, "-c", PAYLOAD_PRINTER
    )
    assert executed.returncode == 0, executed.stderr
    child_env = json.loads(executed.stdout)
    payload_secrets |= {child_env["AWS_SECRET_ACCESS_KEY"], child_env["AWS_SESSION_TOKEN"]}
    stderrs["exec"] = executed.stderr

    for args in (["whoami"], ["whoami", "--json"]):
        result = _cli(bed, subprocess_env, *args)
        assert result.returncode == 0, result.stderr
        stderrs[" ".join(args)] = result.stderr + result.stdout  # whoami prints no secret

    template = run_tool(
        ["--debug", "template", "source-role", "--target-role-arn", bed.world.target_role_arn],
        subprocess_env,
    )
    assert template.returncode == 0, template.stderr
    stderrs["template"] = template.stderr + template.stdout

    secrets = issued_secrets(bed) | payload_secrets
    assert len(secrets) >= 2 + 2 * 2  # the source, and both hops of at least one chain
    for name, text in stderrs.items():
        assert "DEBUG" in text or name.startswith(("template", "credential-process (cache)"))
        assert_no_secret(text, secrets, f"{name} stderr")


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("command", ["credential-process", "env", "whoami"])
def test_cli_failures_at_debug_hold_no_secret(
    aws_env: TestBed, subprocess_env: dict[str, str], failure: str, command: str
) -> None:
    bed = aws_env
    bed.proxy.inject(FAILURES[failure], action="AssumeRole", times=10)
    extra = [] if command == "whoami" else ["--no-cache"]
    result = _cli(bed, subprocess_env, command, *extra)
    assert result.returncode == 1, result.stderr
    if command != "whoami":  # whoami prints its progress; the others print nothing
        assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith("assume-provider: error: ") and bed.world.hop_role_arn in last
    assert "Traceback" in result.stderr  # --debug: the traceback is there, redacted
    secrets = issued_secrets(bed)
    assert_no_secret(result.stderr + result.stdout, secrets, f"{command} {failure} output")


def test_redaction_masks_botocore_shapes_of_known_and_unknown_secrets() -> None:
    """The shapes botocore logs, masked whether or not the value was registered."""
    from assume_provider.redaction import redact_text, register_secret

    registered = "RegisteredSecretValue0123456789"
    register_secret(registered)
    samples = [
        f"<SecretAccessKey>{PLANTED_SECRET}</SecretAccessKey>",
        f"b'<SessionToken>{PLANTED_TOKEN}",  # body cut off inside the token
        f"{{'X-Amz-Security-Token': b'{PLANTED_TOKEN}', 'Host': 'x'}}",
        f"x-amz-security-token:{PLANTED_TOKEN}\nhost:sts",
        f'{{"SecretAccessKey": "{PLANTED_SECRET}", "Token": "{PLANTED_TOKEN}"}}',
        f'{{"Token": "{PLANTED_TOKEN}',  # IMDS document cut off
        f"https://sts/?X-Amz-Security-Token={PLANTED_TOKEN}&a=b",
        f"free text mentioning {registered} somewhere",
    ]
    for sample in samples:
        cleaned = redact_text(sample)
        assert_no_secret(cleaned, [PLANTED_SECRET, PLANTED_TOKEN[:12], registered], sample)
        assert MASK in cleaned


def test_debug_logging_goes_through_the_redacting_factory(
    aws_env: TestBed,
) -> None:
    """A record of botocore's (or this package's) loggers is redacted, formatting and
    traceback included. The application's own loggers are left alone (test_redaction.py)."""
    from assume_provider.redaction import install_redaction, register_secret

    install_redaction()
    register_secret(PLANTED_SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("botocore.some_module")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("botocore saw %s and %r", PLANTED_SECRET, {"token": PLANTED_TOKEN})
        try:
            raise RuntimeError(f"boom {PLANTED_SECRET}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert_no_secret(stream.getvalue(), [PLANTED_SECRET, PLANTED_TOKEN], "application log")
