"""The ``credential_process`` document, written without the json module.

It is printed on every ``aws`` command, from the cache-hit path that must not pay for
importing ``json`` (which imports ``re``). The values are access keys, tokens and a
timestamp; any character is escaped as JSON requires anyway.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..diskcache.entry import Entry

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def json_string(value: str) -> str:
    """``value`` as a JSON string literal (ASCII only, like ``json.dumps``)."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            for unit in _utf16_units(char):
                out.append(f"\\u{unit:04x}")
    return '"' + "".join(out) + '"'


def _utf16_units(char: str) -> list[int]:
    code = ord(char)
    if code < 0x10000:
        return [code]
    code -= 0x10000
    return [0xD800 | (code >> 10), 0xDC00 | (code & 0x3FF)]


def iso8601(timestamp: float) -> str:
    """UTC with a ``Z``, the form botocore's ProcessProvider and AWS SDKs parse."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def credential_process_document(entry: Entry) -> str:
    """The Version 1 document botocore's ProcessProvider and every AWS SDK read, one line."""
    fields = (
        ("AccessKeyId", entry.access_key_id),
        ("SecretAccessKey", entry.secret_access_key),
        ("SessionToken", entry.session_token),
        ("Expiration", iso8601(entry.expires_at)),
    )
    body = ", ".join(f'"{name}": {json_string(value)}' for name, value in fields)
    return '{"Version": 1, ' + body + "}\n"
