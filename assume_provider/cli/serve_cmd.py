"""``assume-provider serve``: the host credential server, in the foreground.

Order: validate everything that can be wrong with the command line (settings, host, token
file) and exit 2 before binding; bind and listen; only then print the two variables (a
supervisor that reads them can hand them out at once); fetch the default route's
credentials in the background; wait for SIGTERM or SIGINT and exit 0.
"""

from __future__ import annotations

import argparse
import errno
import gc
import logging
import os
import signal
import sys
import threading
from typing import Any

from ..config.inputs import SettingInputs
from . import common
from .obtain import botocore_session, load_cli_settings

DEFAULT_PORT = 9911
SWITCH_INTERVAL_SECONDS = 0.0005
#: The engine's own failure warnings repeat what the server's one line per event says.
ENGINE_LOGGER = "assume_provider.engine.refresh"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    from ..server.token import DEFAULT_TOKEN_FILE

    parser = subparsers.add_parser(
        "serve",
        parents=parents,
        help="serve the chain's credentials to every process on this host (container protocol)",
        description=(
            "Run a loopback HTTP server that speaks the AWS SDKs' container-credentials "
            "protocol. Prints AWS_CONTAINER_CREDENTIALS_FULL_URI and "
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE once listening; a process with those two "
            "variables gets the chain's credentials from any AWS SDK or the AWS CLI."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (0: a free one); default 9911"
    )
    parser.add_argument(
        "--token-file",
        default=DEFAULT_TOKEN_FILE,
        help=f"the shared secret's file, created when missing (default {DEFAULT_TOKEN_FILE})",
    )
    parser.add_argument(
        "--allow-user",
        action="append",
        metavar="USER",
        help="serve / only to this user's processes (name or numeric ID; repeatable)",
    )
    parser.add_argument(
        "--allow-group",
        action="append",
        metavar="GROUP",
        help="serve / only to members of this group (name or numeric ID; repeatable)",
    )
    parser.set_defaults(handler=run)


def _say(line: str) -> None:
    from ..redaction import redact_text

    sys.stderr.write(f"assume-provider: serve: {common.one_line(redact_text(line))}\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from ..credentials.sts import is_loopback_host
    from ..errors import ConfigError
    from ..server.http import CredentialHTTPServer
    from ..server.limits import raise_open_file_limit
    from ..server.routes import Route, RouteTable
    from ..server.token import load_or_create_token

    if not is_loopback_host(args.host):  # names too, localhost included: see the rule's why
        raise ConfigError(
            f"--host {args.host}: only loopback addresses (127.0.0.1, ::1) are allowed; the "
            "server hands out credentials to whoever can connect"
        )
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be 0-65535 (0 picks a free port)")
    profile = getattr(args, "profile", None)
    inputs = SettingInputs.from_environment(common.settings_arguments(args), os.environ, profile)
    settings = load_cli_settings(inputs)
    callers, any_list = _callers(args)
    token_file = os.path.abspath(os.path.expanduser(args.token_file))
    # A token file this start creates is removed again if the start fails: a failed start
    # leaves nothing behind (an existing file is only read, and stays as it was).
    created = _missing_parts(token_file)
    token = load_or_create_token(token_file)
    try:
        common.drop_warnings_of(ENGINE_LOGGER)
        # The event loop answers requests in microseconds, but a refresh (botocore building
        # and parsing an AssumeRole in a worker thread) holds the GIL for up to the switch
        # interval each time the loop wants it back: 5 ms by default, which stacked to 20-60
        # ms answers during a refresh (benchmarks/server_load.py). 0.5 ms keeps it short.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        raise_open_file_limit()  # the server's connection cap follows the limit in force
        default = Route("/", settings, botocore_session(profile))
        routes = RouteTable(default, environ=os.environ, log=_say)
        try:
            server = CredentialHTTPServer(args.host, args.port, token, routes, callers=callers)
        except OSError as exc:
            routes.close()
            raise OSError(_cannot_listen(args.host, args.port, exc)) from None
    except BaseException:
        callers.close()
        _remove_created(created)
        raise
    if not any_list:
        _say(
            "no allow list (--allow-user, --allow-group, or a profile's "
            "assume_provider_allow_users/_groups): every local process that holds the token "
            "is served"
        )
    _forget_own_container_settings(server.url)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    _reload_on_sighup(server)
    serving = threading.Thread(target=server.serve_forever, name="assume-provider-serve")
    serving.daemon = True
    serving.start()
    sys.stdout.write(
        f"AWS_CONTAINER_CREDENTIALS_FULL_URI={server.url}\n"
        f"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={token_file}\n"
    )
    sys.stdout.flush()
    threading.Thread(target=_warm_up, args=(routes,), daemon=True).start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        _say("stopping")
        server.shutdown()
        server.server_close()
        routes.close(wait=False)  # exit at once, even with a refresh waiting on STS
    return common.EXIT_OK


def _callers(args: argparse.Namespace) -> tuple[Any, bool]:
    """Who may call each route (INTERFACE.md "Who may call"), and whether any route names its
    callers: ConfigError (exit 2) for an unknown user or group, or for lists where the kernel
    cannot name a caller's user."""
    from ..server.callers import CallerPolicy, option_list

    default = option_list(args.allow_user or (), args.allow_group or ())
    callers = CallerPolicy.start(args.host, default, os.environ, log=_say)
    try:
        profiles = callers.check_profiles()
    except BaseException:
        callers.close()
        raise
    return callers, default is not None or bool(profiles)


def _reload_on_sighup(server: Any) -> None:
    """SIGHUP re-reads the AWS config files (``RouteTable.reload``, on a worker thread). The
    handler only queues that on the server's event loop: no lock, no ``Event.set()``, nothing
    the interrupted main thread may be holding."""
    signal.signal(signal.SIGHUP, lambda *_: server.reload_soon())


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    """The bind failure in words; a busy port is most often this server, started before."""
    reason = exc.strerror or str(exc)
    if exc.errno != errno.EADDRINUSE:
        return f"cannot listen on {host}:{port}: {reason}"
    return (
        f"cannot listen on {host}:{port}: {reason}: another program, perhaps an "
        "assume-provider serve started earlier, is listening there; stop it, or choose "
        "another port with --port PORT (--port 0 picks a free one)"
    )


def _missing_parts(path: str) -> list[str]:
    """The file and the folders above it that do not exist yet, the file first."""
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def _remove_created(paths: list[str]) -> None:
    """Remove what a failed start created (the token file, then its new folders if empty)."""
    for position, path in enumerate(paths):
        try:
            if position == 0:
                os.unlink(path)
            else:
                os.rmdir(path)
        except OSError:
            return


def _warm_up(routes: Any) -> None:
    """Fetch the default route once, so the first client does not wait (failures are logged);
    then move everything loaded so far out of the garbage collector's sight."""
    try:
        routes.lookup("/").credentials()
    except Exception as exc:  # noqa: BLE001 - the refresh event has said what failed
        logging.getLogger(__name__).debug("warm-up of / failed: %s", exc)
    # botocore's models and clients are hundreds of thousands of objects that live as long as
    # the process: a full collection walking them held every request for 20-70 ms, a few
    # times a minute under load (measured with benchmarks/server_load.py). Frozen, they are
    # never walked again; what requests allocate is collected as usual.
    gc.collect()
    gc.freeze()


def _forget_own_container_settings(url: str) -> None:
    """A server given its own variables (one EnvironmentFile for everything) must not use
    itself as its source: that would ask itself for credentials it does not have yet."""
    if os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "").rstrip("/") == url.rstrip("/"):
        os.environ.pop("AWS_CONTAINER_CREDENTIALS_FULL_URI", None)
