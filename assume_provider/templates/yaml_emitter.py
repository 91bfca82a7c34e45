"""A minimal block-style YAML emitter for CloudFormation templates.

PyYAML is not a runtime dependency, and templates only hold dicts, lists, strings, ints,
bools and None. The output is ASCII and reads back identically under YAML 1.1 (PyYAML,
cfn-lint) and YAML 1.2: a string is written plain only when it cannot be taken for anything
else; otherwise it is double-quoted with every non-printable or non-ASCII character escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# Plain strings start with a letter and hold only characters with no YAML meaning; ":" may
# appear inside (as in "sts:AssumeRole" or "Fn::Sub") but not last, where it would start a
# mapping value.
_PLAIN_SAFE = re.compile(r"[A-Za-z][A-Za-z0-9_./:-]*(?<!:)")
# Words YAML 1.1 reads as booleans or null, whatever their case (YAML 1.2 reads fewer).
_RESERVED_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])
_SIMPLE_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\0": "\\0",
    "\t": "\\t",
    "\n": "\\n",
    "\r": "\\r",
}

_INDENT = "  "


def dump(document: Any) -> str:
    """Render ``document`` as a YAML document ending in a newline."""
    if _is_block(document):
        return "\n".join(_block_lines(document, 0)) + "\n"
    return _scalar(document) + "\n"


_MAX_IMPLICIT_KEY = 1000


def _is_block(value: Any) -> bool:
    """Non-empty containers are written as indented blocks; empty ones as ``{}``/``[]``."""
    return isinstance(value, (Mapping, list, tuple)) and len(value) > 0


def _block_lines(value: Any, level: int) -> list[str]:
    pad = _INDENT * level
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"YAML mapping keys must be strings, not {type(key).__name__}")
            rendered = _string(key)
            if len(rendered) > _MAX_IMPLICIT_KEY:
                # YAML allows implicit keys of at most 1024 characters; longer ones need the
                # explicit "? key" form.
                lines.append(f"{pad}? {rendered}")
                rendered = ""
            if _is_block(item):
                lines.append(f"{pad}{rendered}:")
                lines.extend(_block_lines(item, level + 1))
            else:
                lines.append(f"{pad}{rendered}: {_scalar(item)}")
        return lines
    for item in _as_sequence(value):
        if _is_block(item):
            # The item's first line moves up next to the dash: "- key: value".
            nested = _block_lines(item, level + 1)
            nested[0] = f"{pad}- {nested[0][len(pad) + len(_INDENT) :]}"
            lines.extend(nested)
        else:
            lines.append(f"{pad}- {_scalar(item)}")
    return lines


def _as_sequence(value: Any) -> Sequence[Any]:
    if isinstance(value, (list, tuple)):
        return value
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _scalar(value: Any) -> str:
    # bool before int: bool is a subclass of int.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _string(text: str) -> str:
    if _PLAIN_SAFE.fullmatch(text) and text.lower() not in _RESERVED_WORDS:
        return text
    return '"' + "".join(_escape(char) for char in text) + '"'


def _escape(char: str) -> str:
    if char in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[char]
    code = ord(char)
    if 0x20 <= code <= 0x7E:
        return char
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
