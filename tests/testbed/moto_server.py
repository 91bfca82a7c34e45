"""moto's server, in this process, on a free loopback port.

In-process (rather than a ``moto_server`` subprocess) so that a test that moves the clock
moves it for both the client and moto, and so start-up costs no interpreter launch.
"""

from __future__ import annotations

import http.client
import logging
from urllib.parse import urlsplit

from moto.server import ThreadedMotoServer


class MotoServer:
    """Start/stop wrapper that knows its URL."""

    def __init__(self) -> None:
        # ThreadedMotoServer defaults to 0.0.0.0:5000; we want loopback only and a port the
        # OS picks, so parallel runs never collide. Port 0 works because it reads the real
        # port back from the bound socket in get_host_and_port().
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("moto server is not started")
        return self._url

    def start(self) -> str:
        # werkzeug logs one INFO line per request to stderr; that drowns test output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._url = f"http://{host}:{port}"
        return self._url

    def stop(self) -> None:
        if self._url is not None:
            self._server.stop()
            self._url = None


def set_auth_enforcement(moto_url: str, enabled: bool) -> None:
    """Turn moto's IAM identity-policy checks on or off.

    moto keeps this in a process-global setting: "authorise after N more requests". N=0
    means from now on; infinity (moto's default) means never.
    """
    # http.client rather than urllib: urllib honours *_PROXY variables, and this traffic
    # must never leave the loopback interface.
    parts = urlsplit(moto_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        body = b"0" if enabled else b"inf"
        connection.request(
            "POST", "/moto-api/reset-auth", body=body, headers={"Content-Type": "text/plain"}
        )
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"moto reset-auth answered HTTP {response.status}")
    finally:
        connection.close()


def reset_auth(moto_url: str) -> None:
    """``POST /moto-api/reset-auth`` with body ``0``: enforce identity policies from now on."""
    set_auth_enforcement(moto_url, enabled=True)
