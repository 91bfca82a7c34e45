"""Which HTTP server `assume-provider serve` should run on, measured: the standard library's
ThreadingHTTPServer (what serve ships) against a single-threaded asyncio server written for
this comparison, under the same 32-client load as benchmarks/server_load.py.

Both serve the same real route (assume_provider.server.routes, the engine refreshing from
moto through the local test bed) with the same checks: the Host header, the token compared in
constant time, the same JSON body, a new connection per request. Each runs in a process of its
own; they take turns (stdlib, asyncio, stdlib, asyncio, ...) because this machine is shared
and noisy, and each turn has a saturating phase (every client back to back) and a paced one
(5 requests/s per client, out of phase).

    python benchmarks/server_http_choice.py [--turns 2] [--seconds 8]

The asyncio server is a measuring stick, not a product: it parses only what this comparison
sends and has none of the stdlib server's hardening (request line and header limits, error
answers for malformed requests).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = ("stdlib", "asyncio")


def host(kind: str, token_file: str) -> None:
    """The server process: one route, warm, served by ``kind`` until stdin closes."""
    from assume_provider.cli.obtain import botocore_session, load_cli_settings
    from assume_provider.config.inputs import SettingInputs
    from assume_provider.server.http import CredentialHTTPServer
    from assume_provider.server.routes import Route, RouteTable

    settings = load_cli_settings(SettingInputs.from_environment({}, os.environ, None))
    routes = RouteTable(Route("/", settings, botocore_session(None)), environ=os.environ)
    routes.lookup("/").credentials()  # warm: the load measures serving, not STS
    token = Path(token_file).read_text()
    if kind == "stdlib":
        server = CredentialHTTPServer("127.0.0.1", 0, token, routes)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.port
    else:
        port = start_asyncio_server(token, routes)
    print(f"http://127.0.0.1:{port}/", flush=True)
    sys.stdin.read()


def start_asyncio_server(token: str, routes: Any) -> int:
    from assume_provider.server.http import credentials_body

    secret = token.encode("ascii")
    ready: list[int] = []
    started = threading.Event()

    def answer(target: str, headers: dict[str, str], own_host: str) -> tuple[int, Any]:
        if headers.get("host", "").lower() != own_host:
            return 403, {"code": "Forbidden", "message": "Host is not this server's address"}
        given = headers.get("authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, secret):
            return 401, {"code": "Unauthorized", "message": "Authorization is not the token"}
        return 200, credentials_body(routes.lookup(target))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            writer.close()
            return
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        target = request_line.split(" ")[1]
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status, body = answer(target, headers, f"127.0.0.1:{ready[0]}")
        data = json.dumps(body, separators=(",", ":")).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
        ready.append(server.sockets[0].getsockname()[1])
        started.set()
        await server.serve_forever()

    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    started.wait(10)
    return ready[0]


def measure(options: argparse.Namespace) -> None:
    from server_load import Sample, run_phase, summary
    from testbed import TestBed

    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        kind: {"saturating": [], "paced": []} for kind in KINDS
    }
    with TestBed() as bed, tempfile.TemporaryDirectory() as home:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "LANG": "C.UTF-8"}
        env.update(bed.env(Path(home) / "aws"))
        env["ASSUME_PROVIDER_ROLE_ARN"] = bed.world.target_role_arn
        token_file = Path(home) / "token"
        token_file.write_text("t" * 43)
        for turn in range(options.turns):
            for kind in KINDS:
                process = subprocess.Popen(
                    [sys.executable, __file__, "host", kind, str(token_file)],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert process.stdout is not None and process.stdin is not None
                url = process.stdout.readline().strip()
                phases: dict[str, list[Sample]] = {
                    "saturating": run_phase(
                        url, str(token_file), options.clients, options.seconds, 0
                    ),
                    "paced": run_phase(
                        url, str(token_file), options.clients, options.seconds, options.rate
                    ),
                }
                process.stdin.close()
                process.wait(timeout=10)
                for name, samples in phases.items():
                    row = summary(name, samples, options.seconds)
                    results[kind][name].append(row)
                    print(
                        f"turn {turn + 1} {kind:7} {name:10}: {row['rps']:6.0f} req/s, "
                        f"p50 {row['p50_ms']:5.2f} ms, p99 {row['p99_ms']:5.2f} ms, "
                        f"non-200 {row['non_200']}",
                        flush=True,
                    )

    print(
        f"\n{options.clients} client processes, a new connection per request; medians over "
        f"{options.turns} turns of {options.seconds:g} s per phase:"
    )
    print("| server | saturating req/s | saturating p99 ms | paced p50 ms | paced p99 ms |")
    print("|---|---:|---:|---:|---:|")
    medians: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        sat, paced = results[kind]["saturating"], results[kind]["paced"]
        medians[kind] = {
            "saturating_rps": statistics.median(r["rps"] for r in sat),
            "saturating_p99_ms": statistics.median(r["p99_ms"] for r in sat),
            "paced_p50_ms": statistics.median(r["p50_ms"] for r in paced),
            "paced_p99_ms": statistics.median(r["p99_ms"] for r in paced),
        }
        m = medians[kind]
        print(
            f"| {kind} | {m['saturating_rps']:.0f} | {m['saturating_p99_ms']:.1f} "
            f"| {m['paced_p50_ms']:.2f} | {m['paced_p99_ms']:.2f} |"
        )
    ratio = {
        key: round(medians["asyncio"][key] / medians["stdlib"][key], 2) for key in medians["stdlib"]
    }
    print("\n" + json.dumps({"asyncio_vs_stdlib": ratio}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "host":
        host(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--turns", type=int, default=2, help="turns of each server")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=5.0, help="paced: requests/s per client")
    measure(parser.parse_args())


if __name__ == "__main__":
    main()
