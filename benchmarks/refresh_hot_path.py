"""Hot path: RefreshingCredentials.get() vs botocore's get_frozen_credentials(), side by side.

Both hold valid credentials that need no refresh, as on every signed request between
refreshes. Runs interleaved repeats in one process and prints medians (the machine is
shared and noisy: only the ratio measured in one run means something).

    python benchmarks/refresh_hot_path.py [--number N] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from datetime import datetime, timedelta, timezone

from botocore.credentials import RefreshableCredentials

from assume_provider.engine.refresh import RefreshingCredentials, TemporaryCredentials


def build_engine() -> RefreshingCredentials:
    creds = TemporaryCredentials("AKIDBENCH", "secret", "token", time.time() + 3600)
    return RefreshingCredentials(lambda: creds, initial=creds)


def build_botocore() -> RefreshableCredentials:
    expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    metadata = {
        "access_key": "AKIDBENCH",
        "secret_key": "secret",
        "token": "token",
        "expiry_time": expiry,
    }
    return RefreshableCredentials.create_from_metadata(
        metadata, refresh_using=lambda: metadata, method="bench"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing")
    parser.add_argument("--repeat", type=int, default=15, help="interleaved timings per side")
    args = parser.parse_args()

    engine_get = build_engine().get
    botocore_get = build_botocore().get_frozen_credentials
    assert engine_get().access_key_id == botocore_get().access_key == "AKIDBENCH"

    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(args.repeat):  # interleave so drifts in machine load hit both sides
        ours.append(timeit.timeit(engine_get, number=args.number) / args.number)
        theirs.append(timeit.timeit(botocore_get, number=args.number) / args.number)

    ours_ns = statistics.median(ours) * 1e9
    theirs_ns = statistics.median(theirs) * 1e9
    print(f"calls per timing: {args.number}, timings per side: {args.repeat} (medians)")
    print(f"assume_provider RefreshingCredentials.get():    {ours_ns:8.0f} ns/call")
    print(f"botocore RefreshableCredentials.get_frozen_...: {theirs_ns:8.0f} ns/call")
    print(f"ratio botocore / assume_provider: {theirs_ns / ours_ns:.1f}x")


if __name__ == "__main__":
    main()
