"""Which local user owns the client end of a loopback TCP connection, asked of the kernel.

The kernel records the user that created each socket; netlink's ``sock_diag``
(``SOCK_DIAG_BY_FAMILY`` with an exact 4-tuple, the request ``ss`` sends for one socket)
answers for one connection without walking the socket table: the kernel finds it in its
connection hash, as it does for an arriving packet. The alternative, reading
``/proc/net/tcp`` or ``tcp6``, has the kernel format every socket of the host as text on
each read; with 10,000 other connections open it cost milliseconds per lookup, against
microseconds here (``benchmarks/caller_lookup.py``, docs/server.md "Who may call"). So this
is cheap enough to run on the event loop, once per connection.

Struct layouts are those of ``linux/netlink.h``, ``linux/sock_diag.h`` and
``linux/inet_diag.h`` (all native byte order except ports and addresses, which are network
order). Linux only; ``SocketOwners.open()`` says why anywhere it cannot work.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Optional, Union

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 2
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
ALL_STATES = 0xFFFFFFFF

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_REQ_V2 = struct.Struct("=BBBxI")  # family, protocol, ext, pad, states
_SOCKID = struct.Struct("!HH16s16s")  # sport, dport, src, dst (network order)
_SOCKID_TAIL = struct.Struct("=III")  # interface, cookie[2]
_DIAG_MSG = struct.Struct("=BBBB")  # family, state, timer, retrans
_DIAG_MSG_TAIL = struct.Struct("=IIIII")  # expires, rqueue, wqueue, uid, inode
_SOCKID_SIZE = _SOCKID.size + _SOCKID_TAIL.size  # 48
_REQUEST_SIZE = _NLMSGHDR.size + _REQ_V2.size + _SOCKID_SIZE  # 72
_ERRNO = struct.Struct("=i")

#: ``(host, port)`` or IPv6's ``(host, port, flowinfo, scope_id)``, as ``getpeername()`` gives.
Address = Union[tuple[str, int], tuple[str, int, int, int]]


class LookupUnavailable(OSError):
    """The kernel cannot be asked here (not Linux, or netlink refused): callers stay unknown."""


def _packed_address(family: int, host: str) -> bytes:
    return socket.inet_pton(family, host).ljust(16, b"\0")


class SocketOwners:
    """One netlink socket, asked about one connection at a time from one thread (the event
    loop's). The kernel answers during ``send``, so the reply is read without waiting: a
    missing reply is an unknown owner, never a blocked loop."""

    def __init__(self, netlink: socket.socket) -> None:
        self._netlink = netlink
        self._sequence = 0

    @classmethod
    def open(cls) -> SocketOwners:
        """A netlink ``sock_diag`` socket; LookupUnavailable saying why there is none."""
        family = getattr(socket, "AF_NETLINK", None)
        if family is None:
            raise LookupUnavailable("this system has no netlink (Linux only)")
        try:
            netlink = socket.socket(family, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
            netlink.bind((0, 0))
        except OSError as exc:
            raise LookupUnavailable(f"netlink sock_diag refused: {exc.strerror or exc}") from None
        return cls(netlink)

    @classmethod
    def open_checked(cls, host: str) -> SocketOwners:
        """``open()``, then asked about a connection of this process to a listener of its own
        on ``host``: the kernel must name this process's user (a kernel without the
        ``inet_diag`` module finds no socket at all). LookupUnavailable saying why not."""
        owners = cls.open()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            with socket.socket(family) as listener:
                listener.bind((host, 0))
                listener.listen(1)
                with socket.create_connection(listener.getsockname()[:2], timeout=5) as _client:
                    accepted, _ = listener.accept()
                    with accepted:
                        found = owners.owner_uid(accepted.getpeername(), accepted.getsockname())
        except OSError as exc:
            owners.close()
            raise LookupUnavailable(f"netlink sock_diag failed: {exc.strerror or exc}") from None
        if found != os.geteuid():
            owners.close()
            raise LookupUnavailable(
                f"netlink sock_diag named user {found} for a socket of user {os.geteuid()}"
            )
        return owners

    def close(self) -> None:
        self._netlink.close()

    def owner_uid(self, client: Address, server: Address) -> Optional[int]:
        """The user ID owning the socket whose local end is ``client`` and remote end
        ``server`` (the accepted connection's peer and own address), or None when no process
        holds such a socket any more (closed, or only the kernel's TIME_WAIT remnant left:
        the kernel reports user 0 for those, which must never pass for root)."""
        family = socket.AF_INET6 if ":" in client[0] else socket.AF_INET
        sockid = _SOCKID.pack(
            client[1],
            server[1],
            _packed_address(family, client[0]),
            _packed_address(family, server[0]),
        ) + _SOCKID_TAIL.pack(0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        request = (
            _NLMSGHDR.pack(_REQUEST_SIZE, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, self._sequence, 0)
            + _REQ_V2.pack(family, socket.IPPROTO_TCP, 0, ALL_STATES)
            + sockid
        )
        self._netlink.send(request)
        while True:  # replies to earlier, abandoned requests are skipped by sequence number
            try:
                reply = self._netlink.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None
            answer = self._parse(reply, sockid[: _SOCKID.size])
            if answer is not _OTHER_SEQUENCE:
                return answer  # type: ignore[return-value]

    def _parse(self, reply: bytes, wanted: bytes) -> object:
        """The uid in one reply datagram, None (no such socket), or _OTHER_SEQUENCE."""
        if len(reply) < _NLMSGHDR.size:
            return None
        _length, kind, _flags, sequence, _pid = _NLMSGHDR.unpack_from(reply)
        if sequence != self._sequence:
            return _OTHER_SEQUENCE
        body = _NLMSGHDR.size
        if kind == NLMSG_ERROR:
            (code,) = _ERRNO.unpack_from(reply, body)
            if -code in (errno.ENOENT, 0):
                return None
            raise OSError(-code, f"sock_diag: {errno.errorcode.get(-code, -code)}")
        if kind != SOCK_DIAG_BY_FAMILY or len(reply) < body + 4 + _SOCKID_SIZE + 20:
            return None
        found = reply[body + 4 : body + 4 + _SOCKID.size]
        if found != wanted:  # the kernel answered about another socket: trust nothing
            return None
        _, _, _, uid, inode = _DIAG_MSG_TAIL.unpack_from(reply, body + 4 + _SOCKID_SIZE)
        return uid if inode else None


_OTHER_SEQUENCE = object()
