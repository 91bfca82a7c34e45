"""How many connections the server holds open: the open-file limit and the cap under it.

Any local process can open connections without the token, so the number the server keeps
open is capped (``MAX_CONNECTIONS``) and kept below the open-file limit, leaving room for
what a refresh needs (``FILES_KEPT_FREE``): accepting one connection too many must never
make an STS call or a config read fail with "too many open files".
"""

from __future__ import annotations

import resource

# Open connections at most (also kept below the open-file limit): at the cap the one waiting
# longest on its client (for a request, or to read an answer) is closed to make room; one
# being answered never is (the transport, server/http.py, does the closing).
MAX_CONNECTIONS = 1024
FILES_KEPT_FREE = 64  # for STS and IMDS connections, the token and config files, logging
MIN_CONNECTIONS = 16  # even under a tiny open-file limit, a few clients get in
UNLIMITED_SOFT_LIMIT = 65536  # what "raise to the hard limit" means when that is unlimited


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit (a long-lived server may hold many
    connections; the default soft limit is often 1024); the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else UNLIMITED_SOFT_LIMIT
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            return soft
    return soft if soft != resource.RLIM_INFINITY else target


def connection_limit() -> int:
    """``MAX_CONNECTIONS``, kept ``FILES_KEPT_FREE`` below the open-file limit in force."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, soft - FILES_KEPT_FREE))
