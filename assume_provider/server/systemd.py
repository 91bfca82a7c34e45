"""systemd's two small protocols, spoken by ``serve``: socket activation and notification.

Socket activation (``sd_listen_fds``): a supervisor that holds the listening socket hands
it over as file descriptor 3, with ``LISTEN_PID`` (the process it is meant for) and
``LISTEN_FDS`` (how many). The port then stays bound while ``serve`` restarts: the kernel
queues connections on it, and no other local user can take the port in between.

Notification (``sd_notify``): one datagram per state change (``READY=1``, ``STOPPING=1``,
``WATCHDOG=1``) to the AF_UNIX socket named in ``NOTIFY_SOCKET`` (a path, or an abstract
name written with a leading ``@``).

Why our own ~60 lines and no library: both protocols are a handful of environment
variables and one ``sendto``, stable since 2010 and documented in sd_listen_fds(3) and
sd_notify(3); the Python bindings (``systemd-python``, ``sdnotify``) either need
libsystemd's headers to build (a C extension on every install, for a feature most users
never turn on) or are unmaintained, and none of them checks what the server must check
about the socket it is handed. Standard library only.

Every variable is removed from the environment once read, so no child process (a
``credential_process`` source, say) believes the socket or the notifications are its own.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import MutableMapping
from typing import Optional

from ..credentials.sts import is_loopback_host
from ..errors import ConfigError

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START: the first descriptor a supervisor hands over
LISTEN_BACKLOG = 256  # many processes starting together must not find the queue full
_LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _take(environ: MutableMapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The variables ``names`` that are set, removed from ``environ``."""
    return {name: environ.pop(name) for name in names if name in environ}


def inherited_socket(environ: MutableMapping[str, str]) -> Optional[socket.socket]:
    """The listening socket a supervisor handed this process, or None when none was.

    ConfigError (exit 2) when the variables are meant for this process but do not describe
    exactly one loopback TCP listener: serving on anything else would either hand
    credentials to the network or silently listen where nobody asks.
    """
    variables = _take(environ, _LISTEN_VARIABLES)
    if variables.get("LISTEN_PID") != str(os.getpid()):
        return None  # not set, or meant for another process (our parent, say)
    count = variables.get("LISTEN_FDS", "")
    if count != "1":
        raise ConfigError(
            f"socket activation: LISTEN_FDS={count or '(unset)'}; serve takes exactly one "
            "socket (one ListenStream= in the .socket unit)"
        )
    os.set_inheritable(LISTEN_FDS_START, False)  # as sd_listen_fds does: not for children
    try:
        sock = socket.socket(fileno=LISTEN_FDS_START)
    except OSError as exc:
        raise ConfigError(f"socket activation: descriptor 3 is not a socket ({exc})") from None
    try:
        check_loopback_listener(sock)
    except ConfigError:
        sock.detach()  # leave the descriptor to its owner; the process exits anyway
        raise
    return sock


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket of our own, bound and listening (no socket handed over)."""
    # The one loopback rule (credentials/sts.py); the Host check accepts this address only.
    if not is_loopback_host(host):
        raise ConfigError(f"--host {host}: only loopback addresses (127.0.0.1, ::1) allowed")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(LISTEN_BACKLOG)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


def check_loopback_listener(sock: socket.socket) -> None:
    """ConfigError unless ``sock`` is a listening TCP socket bound to a loopback address
    (127.0.0.0/8 or ::1), the only kind the server accepts to serve on."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        raise ConfigError(
            "socket activation: the socket handed over is not a TCP socket; use "
            "ListenStream=127.0.0.1:PORT"
        )
    address = sock.getsockname()[0]
    if not ipaddress.ip_address(address).is_loopback:
        raise ConfigError(
            f"socket activation: the socket handed over is bound to {address}, not to a "
            "loopback address (127.0.0.1 or ::1): the server hands out credentials to "
            "whoever can connect"
        )
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        raise ConfigError("socket activation: the socket handed over is not listening")


class Notifier:
    """Where to send state changes (``NOTIFY_SOCKET``), and the watchdog interval asked for.

    Built once at start from the environment (which it empties of the variables); a
    notifier without a socket sends nothing, so callers need not ask whether systemd runs.
    """

    def __init__(self, address: Optional[str], watchdog_usec: Optional[int]) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sent_once: set[str] = set()

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str]) -> Notifier:
        variables = _take(environ, _NOTIFY_VARIABLES)
        address = variables.get("NOTIFY_SOCKET") or None
        if address is not None and not address.startswith(("/", "@")):
            address = None  # another transport (vsock:...) that the server does not speak
        usec: Optional[int] = None
        watchdog_pid = variables.get("WATCHDOG_PID")
        if watchdog_pid in (None, str(os.getpid())):
            try:
                usec = int(variables.get("WATCHDOG_USEC", "")) or None
            except ValueError:
                usec = None  # unset or not a number: no watchdog, as sd_watchdog_enabled
        return cls(address, usec)

    @property
    def watchdog_interval(self) -> Optional[float]:
        """Seconds between two ``WATCHDOG=1``: half of what systemd waits for, as
        sd_watchdog_enabled(3) advises; None when no watchdog is asked for."""
        if self.address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    def notify_once(self, state: str) -> None:
        """``notify(state)`` unless sent before (READY=1, STOPPING=1: one each per life)."""
        if state not in self._sent_once:
            self._sent_once.add(state)
            self.notify(state)

    def notify(self, state: str) -> bool:
        """Send one state datagram; True when it was sent. Never blocks and never raises:
        the server's work does not depend on its supervisor hearing it (a full queue or a
        vanished socket loses that one message)."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.sendto(state.encode("ascii"), target)
        except OSError:  # EAGAIN (queue full), ENOENT, ECONNREFUSED: that message is lost
            return False
        return True
