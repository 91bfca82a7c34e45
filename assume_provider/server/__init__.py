"""The host credential server: the chain's credentials over the container-credentials protocol.

One job per module: ``token`` guards the shared secret's file; ``routes`` maps a URL to a
route, and ``route`` serves the process-wide refreshing credentials of its settings (and
keeps what ``/healthz`` and a 503 report); ``protocol`` is the HTTP/1.1 wire format (the
strict parser, the JSON answers); ``answers`` decides what a request gets (the method,
``Host`` and token checks, the route, its callers, the bounded wait); ``callers`` knows who
may call each route, and ``sock_diag`` asks the kernel which user owns a connection;
``limits`` keeps the open connections under the open-file limit and the loop's error lines
to one a minute per kind; ``http`` is the transport (the socket, the connections, the event
loop); ``metrics`` counts answers and refreshes for ``/metrics``; ``upkeep`` decides what a
SIGHUP reload and the idle sweep do to the routes, and ``upkeep_timers`` runs them from the
event loop. The command line (``cli/serve_cmd.py``) only parses options, prints the two
variables and waits for a signal.
"""
