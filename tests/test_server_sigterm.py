"""SIGTERM while the background refresh is waiting on a slow STS: serve still exits 0 within
5 s (it does not wait for the prefetch thread's AssumeRole; the thread is a daemon)."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

from server_support import serving
from testbed import TestBed
from testbed.proxy import Fault


def _short_lived_answer(bed: TestBed, expiration: float) -> bytes:
    """Real moto credentials whose Expiration is crafted (as benchmarks/server_load.py does)."""
    world = bed.world
    credentials = bed.assume(world.target_role_arn, session_name="sigterm")
    stamp = datetime.fromtimestamp(expiration, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    arn = world.assumed_role_arn(world.target_role_arn, "sigterm")
    return (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<AssumeRoleResult><Credentials>"
        f"<AccessKeyId>{escape(credentials['AccessKeyId'])}</AccessKeyId>"
        f"<SecretAccessKey>{escape(credentials['SecretAccessKey'])}</SecretAccessKey>"
        f"<SessionToken>{escape(credentials['SessionToken'])}</SessionToken>"
        f"<Expiration>{stamp}</Expiration>"
        "</Credentials><AssumedRoleUser>"
        f"<AssumedRoleId>AROASIGTERM:sigterm</AssumedRoleId><Arn>{escape(arn)}</Arn>"
        "</AssumedRoleUser></AssumeRoleResult>"
        "<ResponseMetadata><RequestId>sigterm</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    ).encode()


def test_sigterm_exits_within_5_s_while_the_background_refresh_waits_on_sts(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    bed = aws_env
    # First AssumeRole: credentials living ~20 s, so the prefetch thread refreshes a few
    # seconds later; that second AssumeRole is held 30 s at the proxy (a slow STS).
    answer = _short_lived_answer(bed, time.time() + 20)
    bed.proxy.inject(Fault.raw_body(answer), action="AssumeRole")
    bed.proxy.inject(Fault.delay(30.0), action="AssumeRole")
    args = ["--role-arn", bed.world.target_role_arn]
    with serving(subprocess_env, args, tmp_path / "t" / "token") as server:
        deadline = time.monotonic() + 40
        while bed.proxy.count(action="AssumeRole") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bed.proxy.count(action="AssumeRole") == 2  # the early refresh is at STS now
        time.sleep(0.5)
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            code = server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - began
    assert code == 0
    assert took < 5.0, f"exit took {took:.1f} s"
