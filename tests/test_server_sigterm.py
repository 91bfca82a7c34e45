"""SIGTERM while the background refresh is waiting on a slow STS: serve still exits 0 within
5 s (it does not wait for the prefetch thread's AssumeRole; the thread is a daemon)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from server_support import serving
from testbed import TestBed
from testbed.proxy import Fault


def test_sigterm_exits_within_5_s_while_the_background_refresh_waits_on_sts(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    bed = aws_env
    # First AssumeRole: credentials living ~20 s, so the prefetch thread refreshes a few
    # seconds later; that second AssumeRole is held 30 s at the proxy (a slow STS).
    _, answer = bed.assume_role_answer(time.time() + 20, "sigterm")
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
