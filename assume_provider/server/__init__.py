"""The host credential server: the chain's credentials over the container-credentials protocol.

One job per module: ``token`` guards the shared secret's file; ``routes`` maps a URL to the
process-wide refreshing credentials of its settings (and keeps what ``/healthz`` reports);
``protocol`` is the HTTP/1.1 wire format (the strict parser, the JSON answers);
``answers`` decides what a request gets (the method, ``Host`` and token checks, the route,
its callers, the bounded wait); ``callers`` knows who may call each route, and
``sock_diag`` asks the kernel which user owns a connection; ``limits`` keeps the open
connections under the open-file limit; ``http`` is the transport (the socket, the
connections, the event loop); ``metrics`` counts answers and refreshes for ``/metrics``;
``upkeep`` decides what a SIGHUP reload and the idle sweep do to the routes. The command
line (``cli/serve_cmd.py``) only parses options, prints the two variables and waits for a
signal.
"""
