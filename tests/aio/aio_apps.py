"""Running async applications as separate processes against the local test bed."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

from testbed import TestBed


def zero_code_available() -> bool:
    """The start-up files are installed where this interpreter reads .pth files."""
    return (Path(sysconfig.get_path("purelib")) / "assume_provider_startup.pth").exists()


def run_app(code: str, env: dict[str, str], *args: str, timeout: float = 90) -> Any:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON, returned parsed."""
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_app_raw(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def world_args(bed: TestBed) -> list[str]:
    world = bed.world
    return [world.table_name, world.secret_name, world.secret_attribute]


# Reads A's DynamoDB item and decrypts it with KMS, through one AioSession.
READ_SECRET = """
async def read_secret(session, table, item_name, attribute):
    result = {}
    async with session.create_client("sts") as sts:
        result["arn"] = (await sts.get_caller_identity())["Arn"]
    async with session.create_client("dynamodb") as dynamodb:
        result["tables"] = (await dynamodb.list_tables())["TableNames"]
        if table in result["tables"]:
            item = await dynamodb.get_item(TableName=table, Key={"name": {"S": item_name}})
            blob = item["Item"][attribute]["B"]
            async with session.create_client("kms") as kms:
                plain = (await kms.decrypt(CiphertextBlob=blob))["Plaintext"]
            result["secret"] = plain.decode()
    return result
"""
