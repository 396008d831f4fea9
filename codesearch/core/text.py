"""Bytes to text the same way everywhere: files on disk and queries from argv.

Bytes that are not UTF-8 are read as Windows-1252 (Latin-1 where that leaves a byte
undefined), the rest as UTF-8 still: `café` written in Latin-1 stays `café`. U+FFFD, the
usual replacement, is no identifier character, so tree-sitter cut `def café_menu`
down to the symbol `_menu`.
"""

from __future__ import annotations

import codecs

LEGACY_ERRORS = "codesearch-legacy"  # an error handler name for bytes.decode


def _legacy_bytes(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    out = []
    for byte in err.object[err.start : err.end]:
        try:
            out.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(byte))
    return "".join(out), err.end


codecs.register_error(LEGACY_ERRORS, _legacy_bytes)


def decode_bytes(data: bytes) -> tuple[str, bool]:
    """(text, whether any byte was not UTF-8)."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors=LEGACY_ERRORS), True
