"""Which lookup finds the local user behind a loopback connection, measured side by side.

`assume-provider serve` asks, for every connection that reaches a route with an allow list,
which user owns the client's socket. Two ways to ask Linux, each run here on the same
connections in the same process, taking turns round by round:

  proc     read /proc/net/tcp (or tcp6) and find the line whose local and remote addresses
           are the client's; its uid column (the best case of this way: one read and a
           bytes search, no parsing of the other lines)
  netlink  sock_diag's SOCK_DIAG_BY_FAMILY with the exact 4-tuple (what the server runs,
           assume_provider/server/sock_diag.py): the kernel finds the socket in its
           connection hash, without walking the table

Both are asked about an IPv4 and an IPv6 loopback connection, while --extra other
established loopback connections are open (default 10,000, IPv4 or --extra-family 6: a
busy host's table). Those are held by two child processes, one accepting and one
connecting, so no process comes near the open-file limit. Each answer is checked: both ways
must name this process's user, and a connection that no longer exists must be unknown.

    python benchmarks/caller_lookup.py [--extra 10000] [--extra-family 4] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assume_provider.server.sock_diag import Address, SocketOwners

HOLDER = """\
import socket, sys
role, family, host, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
held = []
if role == "accept":
    listener = socket.socket(family)
    listener.bind((host, 0))
    listener.listen(4096)
    print(listener.getsockname()[1], flush=True)
    while len(held) < count:
        held.append(listener.accept()[0])
else:
    port = int(sys.stdin.readline())
    for _ in range(count):
        held.append(socket.create_connection((host, port)))
print("held", len(held), flush=True)
sys.stdin.read()  # hold them until the parent closes our stdin
"""


def hold_connections(count: int, family: int) -> list[subprocess.Popen[str]]:
    """Two children holding ``count`` established loopback connections between them."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    if count == 0:
        return []
    command = [sys.executable, "-c", HOLDER]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    acceptor = subprocess.Popen([*command, "accept", str(int(family)), host, str(count)], **pipes)  # type: ignore[call-overload]
    connector = subprocess.Popen([*command, "connect", str(int(family)), host, str(count)], **pipes)  # type: ignore[call-overload]
    assert acceptor.stdout and connector.stdin and connector.stdout
    connector.stdin.write(acceptor.stdout.readline())
    connector.stdin.flush()
    for child in (acceptor, connector):
        assert child.stdout is not None
        line = child.stdout.readline().split()
        if line != ["held", str(count)]:
            raise SystemExit(f"a holder failed: {line}")
    return [acceptor, connector]


def proc_hex(family: int, host: str, port: int) -> bytes:
    """An address as /proc/net/tcp{,6} prints it: the address's 32-bit words in host order."""
    packed = socket.inet_pton(family, host)
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return ("".join(f"{word:08X}" for word in words) + f":{port:04X}").encode()


def proc_owner_uid(client: Address, server: Address) -> Optional[int]:
    """The socket table's way: the line whose local end is ``client``, remote ``server``."""
    family = socket.AF_INET6 if ":" in client[0] else socket.AF_INET
    table = "/proc/net/tcp6" if family == socket.AF_INET6 else "/proc/net/tcp"
    needle = b" " + proc_hex(family, *client[:2]) + b" " + proc_hex(family, *server[:2]) + b" "
    with open(table, "rb") as stream:
        data = stream.read()
    at = data.find(needle)
    if at < 0:
        return None
    line = data[at : data.find(b"\n", at)].split()
    uid, inode = int(line[6]), int(line[8])  # after local, remote: st, queues, timer, retr
    return uid if inode else None


def loopback_pair(family: int) -> tuple[socket.socket, socket.socket, socket.socket]:
    """A listener, a client and the accepted end, on the family's loopback address."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    listener = socket.socket(family)
    listener.bind((host, 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname()[:2])
    accepted, _ = listener.accept()
    return listener, client, accepted


def per_lookup_us(
    lookup: Callable[[Address, Address], Optional[int]], conn: socket.socket, count: int
) -> tuple[float, float]:
    """Wall time and this thread's CPU time (user and kernel) per lookup, in microseconds:
    the CPU time is what the event loop spends, whatever else the machine runs."""
    peer, own = conn.getpeername(), conn.getsockname()
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(count):
        lookup(peer, own)
    return (time.perf_counter() - wall) / count * 1e6, (time.thread_time() - cpu) / count * 1e6


def table_lines(family: int) -> int:
    with open("/proc/net/tcp6" if family == socket.AF_INET6 else "/proc/net/tcp", "rb") as f:
        return f.read().count(b"\n") - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", type=int, default=10_000, help="other connections to hold")
    parser.add_argument("--extra-family", type=int, choices=(4, 6), default=4)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--netlink-count", type=int, default=2000, help="lookups per turn")
    parser.add_argument("--proc-count", type=int, default=20, help="lookups per turn")
    options = parser.parse_args()

    extra_family = socket.AF_INET6 if options.extra_family == 6 else socket.AF_INET
    holders = hold_connections(options.extra, extra_family)
    owners = SocketOwners.open()
    try:
        families = {"IPv4": socket.AF_INET, "IPv6": socket.AF_INET6}
        pairs = {name: loopback_pair(family) for name, family in families.items()}
        me = os.geteuid()
        ways = {"proc": proc_owner_uid, "netlink": owners.owner_uid}
        for name, (_, _, accepted) in pairs.items():
            peer, own = accepted.getpeername(), accepted.getsockname()
            for way, lookup in ways.items():
                assert lookup(peer, own) == me, (way, name)
                assert lookup((peer[0], 1), own) is None, (way, name, "a connection that is not")
        counts = {"proc": options.proc_count, "netlink": options.netlink_count}
        timings: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(options.rounds):
            for name, (_, _, accepted) in pairs.items():
                for way, lookup in ways.items():
                    took = per_lookup_us(lookup, accepted, counts[way])
                    timings.setdefault((name, way), []).append(took)
        sizes = {name: table_lines(family) for name, family in families.items()}
    finally:
        owners.close()
        for child in holders:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=60)

    print(
        f"{options.extra} extra established IPv{options.extra_family} loopback connections held; "
        f"/proc/net/tcp {sizes['IPv4']} lines, tcp6 {sizes['IPv6']} lines; "
        f"median of {options.rounds} rounds, per lookup:"
    )
    print("| connection | proc µs | netlink µs | proc / netlink | proc CPU µs | netlink CPU µs |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in families:
        proc = [statistics.median(t) for t in zip(*timings[(name, "proc")], strict=True)]
        netlink = [statistics.median(t) for t in zip(*timings[(name, "netlink")], strict=True)]
        print(
            f"| {name} | {proc[0]:.1f} | {netlink[0]:.1f} | {proc[0] / netlink[0]:.0f}x "
            f"| {proc[1]:.1f} | {netlink[1]:.1f} |"
        )


if __name__ == "__main__":
    main()
