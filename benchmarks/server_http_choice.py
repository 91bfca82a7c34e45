"""Which HTTP server `assume-provider serve` runs on, measured: the standard library's
http.server ThreadingHTTPServer (one thread per connection; what serve ran on first) against
serve's asyncio server (assume_provider/server/http.py), under the same 32-client load as
benchmarks/server_load.py.

Both serve the same real route (assume_provider.server.routes, the engine refreshing from
moto through the local test bed) with the same checks: the Host header, the token compared in
constant time, the same JSON body. The clients open a new connection per request, as
botocore's container fetcher does. Each server runs in a process of its own; they take turns
(threads, asyncio, threads, asyncio, ...) because this machine is shared and noisy, and each
turn has a saturating phase (every client back to back) and a paced one (5 requests/s per
client, out of phase).

    python benchmarks/server_http_choice.py [--turns 2] [--seconds 8]
"""

from __future__ import annotations

import argparse
import gc
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

KINDS = ("threads", "asyncio")


def host(kind: str, token_file: str) -> None:
    """The server process: one route, warm, served by ``kind`` until stdin closes."""
    from assume_provider.cli.obtain import botocore_session, load_cli_settings
    from assume_provider.cli.serve_cmd import SWITCH_INTERVAL_SECONDS
    from assume_provider.config.inputs import SettingInputs
    from assume_provider.server.http import CredentialHTTPServer
    from assume_provider.server.route import Route
    from assume_provider.server.routes import RouteTable

    settings = load_cli_settings(SettingInputs.from_environment({}, os.environ, None))
    routes = RouteTable(Route("/", settings, botocore_session(None)), environ=os.environ)
    routes.lookup("/").credentials()  # warm: the load measures serving, not STS
    token = Path(token_file).read_text()
    # What `serve` does for either server (cli/serve_cmd.py): a short GIL switch interval and
    # the start-up objects frozen out of the garbage collector's sight.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    gc.collect()
    gc.freeze()
    server: Any
    if kind == "asyncio":
        server = CredentialHTTPServer("127.0.0.1", 0, token, routes)
    else:
        server = threading_server(token, routes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1] if kind == 'threads' else server.port}/")
    sys.stdout.flush()
    sys.stdin.read()


def threading_server(token: str, routes: Any) -> Any:
    """What serve ran on before: the standard library's ThreadingHTTPServer, one thread per
    connection, with the same checks and answers (headers and body in one write, Nagle off)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from assume_provider.server.protocol import credentials_body

    secret = token.encode("ascii")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            own = f"127.0.0.1:{self.server.server_address[1]}"
            if (self.headers.get("Host") or "").strip().lower() != own:
                status, body = 403, {"code": "Forbidden", "message": "Host"}
            elif not hmac.compare_digest(
                (self.headers.get("Authorization") or "").encode("utf-8", "surrogateescape"),
                secret,
            ):
                status, body = 401, {"code": "Unauthorized", "message": "token"}
            else:
                route = routes.lookup(self.path)
                status, body = 200, credentials_body(route.credentials(), route.account_id)
            data = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    return Server(("127.0.0.1", 0), Handler)


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
        key: round(medians["asyncio"][key] / medians["threads"][key], 2)
        for key in medians["threads"]
    }
    print("\n" + json.dumps({"asyncio_vs_threads": ratio}))


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
