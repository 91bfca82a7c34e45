"""One cached result and its file format: plain lines, so that a hit needs no parser.

A hit on the ``credential-process`` path must be cheap, so this module imports nothing
heavy (not even ``json`` or ``typing``: each pulls in modules worth milliseconds at
start-up). A corrupt, truncated or foreign file reads as None: a miss, never an error.
"""

from __future__ import annotations

from ..engine.windows import advisory_window_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

# An entry file: this header, then one value per line (see Entry.to_bytes).
FORMAT_HEADER = "assume-provider cache 2"
_LINES = 8  # header, 6 values, and the empty string after the final newline
MAX_FILE_SIZE = 64 * 1024

# The last second of year 9999: an expiry past it (or inf/NaN, which float() accepts)
# cannot be printed by ``credential-process`` and is never one STS issued.
_MAX_TIMESTAMP = 253402300799.0


class Entry:
    """One cached result: the final hop's credentials and what ``env`` needs besides."""

    __slots__ = (
        "access_key_id",
        "expires_at",
        "fetched_at",
        "region",
        "secret_access_key",
        "session_token",
    )

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str,
        expires_at: float,
        fetched_at: float,
        region: Optional[str] = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expires_at = expires_at
        self.fetched_at = fetched_at
        self.region = region

    def __repr__(self) -> str:
        return f"Entry(access_key_id={self.access_key_id!r}, expires_at={self.expires_at!r})"

    def fresh_at(self, now: float) -> bool:
        """Valid for at least the engine's early-refresh window for its own lifetime."""
        lifetime = max(self.expires_at - self.fetched_at, 0.0)
        return self.expires_at - now >= advisory_window_for(lifetime)

    def to_bytes(self) -> bytes:
        """Plain lines, so that reading needs no parser (``json`` costs a cache hit ~2 ms)."""
        values = (self.access_key_id, self.secret_access_key, self.session_token)
        if not all(_is_token(value) for value in values):
            raise ValueError("credentials with whitespace or control characters are not cached")
        lines = (
            FORMAT_HEADER,
            *values,
            repr(float(self.expires_at)),
            repr(float(self.fetched_at)),
            self.region or "",
        )
        return ("\n".join(lines) + "\n").encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> Optional[Entry]:
        """The entry, or None for anything malformed (truncated, foreign, old format)."""
        try:
            lines = data.decode("ascii").split("\n")
        except UnicodeDecodeError:
            return None
        # The final newline is written last: a truncated file lacks it, or lines.
        if len(lines) != _LINES or lines[0] != FORMAT_HEADER or lines[-1] != "":
            return None
        access_key_id, secret_access_key, session_token = lines[1:4]
        if not all(_is_token(value) for value in (access_key_id, secret_access_key, session_token)):
            return None
        expires_at, fetched_at = _timestamp(lines[4]), _timestamp(lines[5])
        if expires_at is None or fetched_at is None:
            return None
        region = lines[6]
        if region and not _is_token(region):
            return None
        return cls(
            access_key_id, secret_access_key, session_token, expires_at, fetched_at, region or None
        )


def _is_token(value: str) -> bool:
    """Non-empty printable ASCII without spaces: what STS's keys and tokens are."""
    return bool(value) and value.isascii() and value.isprintable() and " " not in value


def _timestamp(text: str) -> Optional[float]:
    """A POSIX timestamp the CLI can print (finite, year 1970 to 9999), or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0.0 <= value <= _MAX_TIMESTAMP else None  # NaN fails both comparisons
