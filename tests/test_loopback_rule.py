"""One loopback rule (``credentials/sts.py: is_loopback_host``) for every "loopback only" check:
a plain-http STS endpoint, ``serve --host`` and, through the server's own address, its ``Host``
check. Loopback means an address: names, ``localhost`` included, are refused everywhere."""

from __future__ import annotations

import errno
from typing import Optional, cast

import pytest

from assume_provider import ConfigError
from assume_provider.credentials.sts import check_endpoint_transport, is_loopback_host
from assume_provider.server.answers import host_refusal
from assume_provider.server.http import CredentialHTTPServer, url_host
from assume_provider.server.protocol import parse_head
from assume_provider.server.routes import RouteTable

LOOPBACK = ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "0:0::1"]
# Each reaches loopback, or looks as if it did, but is not a loopback address as written.
NOT_LOOPBACK = [
    "localhost",  # a name: what it resolves to is decided after the check, and it means two
    "LocalHost",
    "localhost.",
    "localhost.example.com",
    "[::1]",  # a URL's spelling; the rule takes the address itself
    "::ffff:127.0.0.1",  # IPv4-mapped: loopback to Python 3.13, not before (nor to botocore)
    "::1%lo",  # a zone ID
    "127.1",
    "0x7f.0.0.1",
    " 127.0.0.1",
    "127.0.0.1 ",
    "0.0.0.0",
    "::",
    "169.254.169.254",
    "192.0.2.10",
    "",
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_addresses_are_loopback(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", [*NOT_LOOPBACK, None])
def test_names_and_other_spellings_are_not(host: Optional[str]) -> None:
    assert not is_loopback_host(host)


def _url_of(host: str) -> Optional[str]:
    """A plain-http URL whose host part is ``host``, if ``host`` can be written in one."""
    if not host or host != host.strip() or host.startswith("["):
        return None
    return f"http://{url_host(host.replace('%', '%25'))}:4566/"


@pytest.mark.parametrize("host", [h for h in LOOPBACK + NOT_LOOPBACK if _url_of(h)])
def test_a_plain_http_sts_endpoint_follows_the_rule(host: str) -> None:
    url = _url_of(host)
    assert url is not None
    if is_loopback_host(host):
        check_endpoint_transport(url, "environment variable AWS_ENDPOINT_URL_STS")
    else:
        with pytest.raises(ConfigError, match="not names such as localhost"):
            check_endpoint_transport(url, "environment variable AWS_ENDPOINT_URL_STS")


@pytest.mark.parametrize("host", LOOPBACK + NOT_LOOPBACK)
def test_the_server_binds_by_the_rule_and_accepts_only_its_own_address_as_host(
    host: str,
) -> None:
    # The address is checked before routes are used: none are needed to bind or refuse.
    routes = cast(RouteTable, None)
    if not is_loopback_host(host):
        with pytest.raises(ConfigError, match="only loopback addresses"):
            CredentialHTTPServer(host, 0, "t" * 43, routes)
        return
    try:
        server = CredentialHTTPServer(host, 0, "t" * 43, routes)
    except OSError as exc:
        if ":" in host and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            pytest.skip(f"no IPv6 loopback on this machine: {exc}")
        raise
    try:
        own = f"{url_host(host)}:{server.port}"
        assert server.url == f"http://{own}/"
        for sent, refused in (
            (own, False),
            (own.upper(), False),
            (f"localhost:{server.port}", True),
        ):
            request = parse_head(f"GET / HTTP/1.1\r\nHost: {sent}\r\n\r\n".encode())
            assert (host_refusal(request, server.answers.own_hosts) is not None) is refused, sent
    finally:
        server.server_close()
