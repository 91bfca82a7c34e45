"""The README demo: B's EC2 instance reads A's encrypted secret, on a local stand-in for AWS.

moto's STS/IAM/DynamoDB/KMS and an IMDSv2 fake (the same test bed the tests use) play AWS;
the "application" is a separate Python process that knows nothing about roles: it only calls
boto3. The provider is switched on the way a user would: `assume_provider.install()` in the
bootstrap, with the role chain in ASSUME_PROVIDER_ROLE_ARN. Then the host credential
server: `assume-provider serve --port 0` in the background, and clients given only its two
variables (the same boto3 application, and `aws sts get-caller-identity`: ./scripts/demo
installs the AWS CLI v1 next to this interpreter; run directly elsewhere without it, the demo
skips that client).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testbed import TestBed

APPLICATION = textwrap.dedent(
    """
    import json, os, sys
    import boto3
    if os.environ.get("DEMO_USE_PROVIDER") == "1":
        import assume_provider
        assume_provider.install()          # the one line an application adds

    table, item_name, attribute = sys.argv[1:4]
    arn = boto3.client("sts").get_caller_identity()["Arn"]
    tables = boto3.client("dynamodb").list_tables()["TableNames"]
    secret = None
    if table in tables:
        item = boto3.client("dynamodb").get_item(
            TableName=table, Key={"name": {"S": item_name}})["Item"]
        secret = boto3.client("kms").decrypt(
            CiphertextBlob=item[attribute]["B"])["Plaintext"].decode()
    for _ in range(20):                    # 20 more sessions: still one AssumeRole
        boto3.Session().client("sts").get_caller_identity()
    print(json.dumps({"arn": arn, "tables": tables, "secret": secret}))
    """
)


def run_application(
    bed: TestBed, use_provider: bool, env: dict[str, str] | None = None
) -> dict[str, object]:
    """The application as a separate process; ``env`` replaces the bed's environment (and
    the counters are then not reset: the caller counts)."""
    world = bed.world
    if env is None:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
        env.update(bed.env())
        bed.reset()
    if use_provider:
        env.update(
            DEMO_USE_PROVIDER="1",
            ASSUME_PROVIDER_ROLE_ARN=world.target_role_arn,
            ASSUME_PROVIDER_EXTERNAL_ID=world.external_id,
        )
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            APPLICATION,
            world.table_name,
            world.secret_name,
            world.secret_attribute,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(completed.stdout)
    result["assume_role_calls"] = bed.proxy.count(action="AssumeRole")
    result["imds_credential_requests"] = bed.imds.credential_request_count
    return result


BIN = Path(sys.executable).parent
TOOL = (
    [str(BIN / "assume-provider")]
    if (BIN / "assume-provider").exists()
    else [
        sys.executable,
        "-m",
        "assume_provider",
    ]
)
AWS = BIN / "aws"
SERVER_VARIABLES = ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")


def start_server(bed: TestBed, token_file: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`assume-provider serve` in the background; its two KEY=VALUE lines."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(bed.env())
    command = [*TOOL, "serve", "--port", "0", "--token-file", str(token_file)]
    command += ["--role-arn", bed.world.target_role_arn, "--external-id", bed.world.external_id]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    fd, data = server.stdout.fileno(), b""
    while data.count(b"\n") < 2:  # raw reads: a buffered readline would hide the 2nd line
        ready, _, _ = select.select([fd], [], [], 60)
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            server.kill()
            raise SystemExit(f"serve printed no variables: {server.communicate()[1]}")
        data += chunk
    variables = dict(line.split("=", 1) for line in data.decode().splitlines())
    if set(variables) != set(SERVER_VARIABLES):
        server.kill()
        raise SystemExit(f"serve printed {sorted(variables)}")
    return server, variables


def server_client_env(bed: TestBed, variables: dict[str, str]) -> dict[str, str]:
    """Only the server's two variables as credentials: PATH, HOME, the bed's region and
    endpoint, empty AWS config files, and IMDS switched off."""
    bed_env = bed.env()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    for name in ("AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        env[name] = bed_env[name]
    env["AWS_SHARED_CREDENTIALS_FILE"] = bed_env["AWS_SHARED_CREDENTIALS_FILE"]
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(variables)
    return env


def main() -> int:
    started = time.monotonic()

    def step(text: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {text}")

    step("starting the local AWS stand-in (moto + IMDSv2 fake) on 127.0.0.1 ...")
    with TestBed() as bed:
        world = bed.world
        step("seeded both accounts:")
        print(
            f"  account A {world.account_a}: table {world.table_name!r}, KMS key, "
            f"role {world.target_role_arn}"
        )
        print(
            f"  account B {world.account_b}: this 'EC2 instance' runs as "
            f"{world.instance_role_arn}\n"
        )

        step("running the application without assume-provider ...")
        before = run_application(bed, use_provider=False)
        print("Application without assume-provider:")
        print(f"  identity : {before['arn']}")
        print(f"  tables   : {before['tables']}  (A's table is invisible from B)\n")

        step("running the application with assume-provider ...")
        after = run_application(bed, use_provider=True)
        print(
            f"Application with assume_provider.install() and "
            f"ASSUME_PROVIDER_ROLE_ARN={world.target_role_arn}:"
        )
        print(f"  identity : {after['arn']}")
        print(f"  tables   : {after['tables']}")
        print(f"  secret   : {after['secret']!r} (read from A's table, decrypted with A's key)")
        print(
            f"  STS AssumeRole calls for 21 sessions: {after['assume_role_calls']}; "
            f"IMDS credential requests: {after['imds_credential_requests']}"
        )

        step("starting assume-provider serve --port 0 in the background ...")
        bed.reset()
        with tempfile.TemporaryDirectory(prefix="assume-provider-demo-") as folder:
            server, variables = start_server(bed, Path(folder) / "server-token")
            for name in SERVER_VARIABLES:
                print(f"  {name}={variables[name]}")
            env = server_client_env(bed, variables)
            step("a client with only those two variables (no role, no provider, no IMDS):")
            served = run_application(bed, use_provider=False, env=env)
            print(f"  boto3 identity : {served['arn']} (21 sessions)")
            print(f"  boto3 secret   : {served['secret']!r}")
            cli_arn: str | None = None
            if AWS.exists():
                done = subprocess.run(
                    [str(AWS), "sts", "get-caller-identity", "--output", "json"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                cli_arn = json.loads(done.stdout)["Arn"] if done.returncode == 0 else None
                print(f"  aws CLI identity: {cli_arn or done.stderr.strip()}")
            else:
                print(f"  (no AWS CLI at {AWS}: the boto3 script above is the only client)")
            server_assume_roles = bed.proxy.count(action="AssumeRole")
            server.send_signal(signal.SIGTERM)
            try:
                _, server_err = server.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server_err = server.communicate()[1]
        stop_status = server.returncode
        print(f"  server stopped by SIGTERM: exit {stop_status}")
        total = sum(int(str(r["assume_role_calls"])) for r in (before, after))
        total += server_assume_roles
        print(
            f"  STS AssumeRole calls: server part {server_assume_roles}; everything the demo "
            f"ran: {total}"
        )
        role_prefix = f"arn:aws:sts::{world.account_a}:assumed-role/"
        checks = {
            "A's secret was read and decrypted": after["secret"] == world.secret_plaintext,
            "the identity is A's TargetRole": str(after["arn"]).startswith(
                f"arn:aws:sts::{world.account_a}:assumed-role/"
            ),
            "B alone sees no table of A": before["tables"] == [],
            "21 sessions cost exactly one AssumeRole": after["assume_role_calls"] == 1,
            "the server's client is A's TargetRole and read A's secret": str(
                served["arn"]
            ).startswith(role_prefix)
            and served["secret"] == world.secret_plaintext,
            "the server's clients cost exactly one AssumeRole": server_assume_roles == 1,
            "the server exited 0 on SIGTERM": stop_status == 0,
            "the whole demo cost two AssumeRole calls": total == 2,
        }
        if AWS.exists():
            checks["the AWS CLI with the two variables is A's TargetRole"] = bool(
                cli_arn and cli_arn.startswith(role_prefix)
            )
        if stop_status != 0:
            print(server_err, file=sys.stderr)
    print()
    for what, held in checks.items():
        print(f"  {'ok    ' if held else 'FAILED'} {what}")
    ok = all(checks.values())
    step("demo " + ("succeeded." if ok else "FAILED."))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
