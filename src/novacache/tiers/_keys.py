"""How a ``str`` key becomes what a tier stores: one encoding, total, reversible.

Every tier stores a key as its UTF-8 with lone surrogates passed through (Python's
``"surrogatepass"`` error handler: a code point U+D800..U+DFFF as its three-byte form, as
WTF-8 does; the codec binds the same bytes as AES-GCM associated data). Every ``str``
has such bytes, so every key works in every tier; distinct strings have distinct bytes
(each code point has one form, and the forms are a prefix code), so keys never collide;
and the bytes decode back to the key, so ``scan`` and the tag indexes return the keys
that were written. Bytes that are not the encoding of any ``str`` (a key someone else
wrote, e.g. ``b"\\xff"``) are recognised and skipped. The keys a file system gives
Python for undecodable names (``os.fsdecode(b"report-\\xff.csv")`` is
``"report-\\udcff.csv"``) therefore work as they are.

How each tier holds those bytes:

- Redis: the bytes themselves, after the tier's prefix.
- SQLite: a key that is valid UTF-8 (no lone surrogate) as ``TEXT`` (SQLite stores text
  as those same bytes), any other as a ``BLOB`` of its bytes. SQLite never finds a
  ``TEXT`` equal to a ``BLOB``, so the two kinds cannot collide.
- PostgreSQL: ``text`` holds neither NUL nor a surrogate, so those characters, and
  U+FFFF (a noncharacter, the escape), are written as U+FFFF followed by one code
  character: ``"0"`` for NUL, U+FFFF for U+FFFF, and U+E000 + n for the surrogate
  U+D800 + n. Every other character is itself, so any other key is stored as it is.
  The escaped form is again a prefix code: distinct keys stay distinct, and key ranges
  and glob patterns translate (see :mod:`._glob`).

The helpers here are not on the hot path of Redis ``GET``/``MGET``: those inline the
same rule (``str.encode()``, and ``"surrogatepass"`` only after a
``UnicodeEncodeError``).
"""

from __future__ import annotations

import re

__all__ = [
    "PG_ESCAPE",
    "decode_key",
    "encode_key",
    "has_surrogate",
    "pg_key",
    "pg_unkey",
    "sqlite_key",
    "sqlite_unkey",
]

#: The character PostgreSQL keys escape with (a noncharacter: never meant for text).
PG_ESCAPE = "\uffff"
_PG_SPECIAL = re.compile("[\x00\ud800-\udfff\uffff]")
_PG_ESCAPED = re.compile("\uffff(.?)", re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


def encode_key(key: str) -> bytes:
    """The bytes a tier stores for ``key`` (UTF-8, lone surrogates passed through)."""
    try:
        return key.encode()
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogatepass")


def decode_key(raw: bytes) -> str | None:
    """The key whose bytes are ``raw``, or ``None`` when no ``str`` encodes to them."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (then it has no strict UTF-8)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def sqlite_key(key: str) -> str | bytes:
    """The SQLite value of ``key``: itself (``TEXT``), or its bytes (``BLOB``) when it
    holds a lone surrogate."""
    if key.isascii() or _SURROGATE.search(key) is None:
        return key
    return key.encode("utf-8", "surrogatepass")


def sqlite_unkey(value: str | bytes) -> str | None:
    """The key of a stored SQLite value; ``None`` for a ``BLOB`` that is no key's bytes
    (or for a ``BLOB`` that is valid UTF-8: that key would have been stored as ``TEXT``)."""
    if type(value) is str:
        return value
    if not isinstance(value, bytes):
        return None
    try:
        value.decode()
    except UnicodeDecodeError:
        return decode_key(value)
    return None


def _pg_escape(match: re.Match[str]) -> str:
    c = match.group()
    if c == "\x00":
        return "\uffff0"
    if c == PG_ESCAPE:
        return "\uffff\uffff"
    return PG_ESCAPE + chr(ord(c) + 0x800)  # U+D800..U+DFFF -> U+E000..U+E7FF


def pg_key(key: str) -> str:
    """The PostgreSQL ``text`` of ``key`` (NUL, surrogates and U+FFFF escaped)."""
    if key.isascii():
        return key if "\x00" not in key else key.replace("\x00", "\uffff0")
    return _PG_SPECIAL.sub(_pg_escape, key)


class _NotAKey(Exception):
    pass


def _pg_unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code == "0":
        return "\x00"
    if code == PG_ESCAPE:
        return PG_ESCAPE
    if code and 0xE000 <= ord(code) <= 0xE7FF:
        return chr(ord(code) - 0x800)
    raise _NotAKey


def pg_unkey(text: str) -> str | None:
    """The key stored as ``text``; ``None`` when it is no key's escaped form (a row
    written by something else)."""
    if PG_ESCAPE not in text:
        return text
    try:
        return _PG_ESCAPED.sub(_pg_unescape, text)
    except _NotAKey:
        return None
