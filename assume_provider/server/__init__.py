"""The host credential server: the chain's credentials over the container-credentials protocol.

``token`` guards the shared secret's file, ``routes`` maps a URL to the process-wide
refreshing credentials of its settings (and keeps what ``/healthz`` reports), ``http`` is the
request handler and the listening socket. The command line (``cli/serve_cmd.py``) only parses
options, prints the two variables and waits for a signal.
"""
