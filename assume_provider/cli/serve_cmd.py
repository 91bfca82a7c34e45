"""``assume-provider serve``: the host credential server, in the foreground.

Order: take over SIGTERM and SIGINT (exit 0 from any phase); validate everything that can
be wrong (settings, host, a socket handed over by systemd, the token file) and exit 2
before binding; bind and listen, or take the socket systemd holds; write the token (a new
one when this start bound the port itself); only then print the two variables (a
supervisor that reads them can hand them out at once); fetch the default route's
credentials in the background and serve until SIGTERM or SIGINT (``server/lifecycle.py``).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
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
    from ..server.lifecycle import StopRequested, StopSignals

    # First of all: from here on SIGTERM and SIGINT stop the server with exit 0, whatever
    # phase it is in (server/lifecycle.py says how, and why it cannot hang).
    signals = StopSignals()
    notifier = None
    try:
        signals.install()  # in the try: a signal right after it raises in here
        # Until the server reloads on SIGHUP (_reload_on_sighup) there is nothing to re-read
        # (a profile route reads its profile at its first request): ignored, not the
        # default's death. A handler, not SIG_IGN, which a child process would inherit.
        signal.signal(signal.SIGHUP, _nothing_to_reload_yet)
        logging.getLogger(__name__).debug("serve: starting")
        from ..server.systemd import Notifier

        notifier = Notifier.from_environment(os.environ)
        _serve(args, signals, notifier)
    except StopRequested:
        _say("stopped")  # by SIGTERM or SIGINT before it served
    finally:
        signals.release()
        if notifier is not None:
            notifier.notify_once("STOPPING=1")  # when it stopped before serving, or failed
    return common.EXIT_OK


def _serve(args: argparse.Namespace, signals: Any, notifier: Any) -> None:
    from ..credentials.sts import is_loopback_host
    from ..errors import ConfigError
    from ..server.http import CredentialHTTPServer
    from ..server.lifecycle import Lifecycle, print_variables
    from ..server.limits import raise_open_file_limit
    from ..server.route import Route
    from ..server.routes import RouteTable
    from ..server.systemd import inherited_socket, listening_socket
    from ..server.token import check_token_file, kept_token_file, new_token_file

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
    callers, slash_listed, any_list = _callers(args)
    token_file = os.path.abspath(os.path.expanduser(args.token_file))
    # Everything that can be wrong is found before the port is taken: a socket handed over
    # that the server must refuse, a token file it must refuse (nothing is written yet).
    sock = inherited_socket(os.environ)
    try:
        check_token_file(token_file)
        common.drop_warnings_of(ENGINE_LOGGER)
        # The event loop answers requests in microseconds, but a refresh (botocore building
        # and parsing an AssumeRole in a worker thread) holds the GIL for up to the switch
        # interval each time the loop wants it back: 5 ms by default, which stacked to 20-60
        # ms answers during a refresh (benchmarks/server_load.py). 0.5 ms keeps it short.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        raise_open_file_limit()  # the server's connection cap follows the limit in force
        default = Route("/", settings, botocore_session(profile))
        routes = RouteTable(default, environ=os.environ, log=_say)
    except BaseException:
        callers.close()
        if sock is not None:
            sock.close()
        raise
    try:
        if sock is None:
            try:
                sock = listening_socket(args.host, args.port)
            except OSError as exc:
                raise OSError(_cannot_listen(args.host, args.port, exc)) from None
            # The port was free until now, and anyone could have collected the token from
            # clients meanwhile: this start's token is new (the old one gets 401 from now).
            token = new_token_file(token_file)
        else:
            token = kept_token_file(token_file)  # the port was never free: kept
        server = CredentialHTTPServer(
            args.host, args.port, token, routes, sock=sock, callers=callers
        )
    except BaseException:
        routes.close(wait=False)
        callers.close()
        if sock is not None:
            sock.close()
        raise
    try:
        if not any_list:
            _say(
                "no allow list (--allow-user, --allow-group, or a profile's "
                "assume_provider_allow_users/_groups): every local process that holds the "
                "token is served"
            )
        elif not slash_listed:  # the profiles' lists never apply to /: say it is open
            _say(
                "route / names no callers (--allow-user, --allow-group): any local process "
                "that holds the token is served on /; the profiles' lists apply to their "
                "/profile/NAME routes only"
            )
        _forget_own_container_settings(server.url)
        _reload_on_sighup(server)
        print_variables(server.url, token_file)
        Lifecycle(server, routes, notifier, signals).serve()
    finally:
        _say("stopping")
        server.server_close()
        routes.close(wait=False)  # exit at once, even with a refresh waiting on STS


def _callers(args: argparse.Namespace) -> tuple[Any, bool, bool]:
    """Who may call each route (INTERFACE.md "Who may call"), whether ``/`` names its
    callers, and whether any route does: ConfigError (exit 2) for an unknown user or group,
    or for lists where the kernel cannot name a caller's user."""
    from ..server.callers import CallerPolicy, option_list

    default = option_list(args.allow_user or (), args.allow_group or ())
    callers = CallerPolicy.start(args.host, default, os.environ, log=_say)
    try:
        profiles = callers.check_profiles()
    except BaseException:
        callers.close()
        raise
    return callers, default is not None, default is not None or bool(profiles)


def _nothing_to_reload_yet(signum: int, frame: Any) -> None:
    pass


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


def _forget_own_container_settings(url: str) -> None:
    """A server given its own variables (one EnvironmentFile for everything) must not use
    itself as its source: that would ask itself for credentials it does not have yet."""
    if os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "").rstrip("/") == url.rstrip("/"):
        os.environ.pop("AWS_CONTAINER_CREDENTIALS_FULL_URI", None)
