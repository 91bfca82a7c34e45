"""The README demo: B's EC2 instance reads A's encrypted secret, on a local stand-in for AWS.

moto's STS/IAM/DynamoDB/KMS and an IMDSv2 fake (the same test bed the tests use) play AWS;
the "application" is a separate Python process that knows nothing about roles: it only calls
boto3. The provider is switched on the way a user would: `assume_provider.install()` in the
bootstrap, with the role chain in ASSUME_PROVIDER_ROLE_ARN.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def run_application(bed: TestBed, use_provider: bool) -> dict[str, object]:
    world = bed.world
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(bed.env())
    if use_provider:
        env.update(
            DEMO_USE_PROVIDER="1",
            ASSUME_PROVIDER_ROLE_ARN=world.target_role_arn,
            ASSUME_PROVIDER_EXTERNAL_ID=world.external_id,
        )
    bed.reset()
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

        checks = {
            "A's secret was read and decrypted": after["secret"] == world.secret_plaintext,
            "the identity is A's TargetRole": str(after["arn"]).startswith(
                f"arn:aws:sts::{world.account_a}:assumed-role/"
            ),
            "B alone sees no table of A": before["tables"] == [],
            "21 sessions cost exactly one AssumeRole": after["assume_role_calls"] == 1,
        }
    print()
    for what, held in checks.items():
        print(f"  {'ok    ' if held else 'FAILED'} {what}")
    ok = all(checks.values())
    step("demo " + ("succeeded." if ok else "FAILED."))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
