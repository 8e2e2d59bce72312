"""Redis glob patterns (the syntax of ``SCAN MATCH``) for the SQL stores.

A pattern is parsed once into tokens and then rendered two ways:

- :func:`glob_regex`: a regular expression written only with constructs that Python's
  ``re`` and PostgreSQL's advanced regular expressions read the same way (every literal
  character as a ``\\uXXXX``/``\\UXXXXXXXX`` escape, classes as escaped ranges), so the
  SQLite tier filters with ``re`` and the PostgreSQL tier with ``~`` and both agree.
  With ``escaped=True`` it matches the PostgreSQL form of the keys instead (NUL,
  surrogates and U+FFFF written as two characters, see :mod:`._keys`): a pattern
  character then matches one escape sequence or one other character.
- :func:`literal_prefix` and :func:`prefix_upper_bound`: the literal head of the pattern
  and the smallest string above every string that starts with it, so the stores read
  only the index range ``prefix <= key < upper`` instead of the whole table.

Note that the semantics follow Redis' ``stringmatchlen``: ``*`` is any run of
characters, ``?`` one character, ``[abc]``/``[a-z]``/``[^...]`` a class (a reversed
range is swapped, an unterminated class ends with the pattern), and ``\\`` makes the
next character literal (a trailing ``\\`` is a literal backslash).
"""

from __future__ import annotations

import functools
import itertools
import re

from ._keys import PG_ESCAPE, pg_key

__all__ = [
    "bytes_upper_bound",
    "compile_glob",
    "glob_regex",
    "literal_prefix",
    "prefix_upper_bound",
]


class _Any:
    """``*``: any run of characters."""


class _One:
    """``?``: exactly one character."""


_ANY = _Any()
_ONE = _One()

# A class: (negated, [(low, high), ...]) with inclusive code-point ranges.
_Class = tuple[bool, tuple[tuple[int, int], ...]]
_Token = str | _Any | _One | _Class


@functools.lru_cache(maxsize=256)
def _parse(pattern: str) -> tuple[_Token, ...]:
    tokens: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if not tokens or tokens[-1] is not _ANY:
                tokens.append(_ANY)
            i += 1
        elif c == "?":
            tokens.append(_ONE)
            i += 1
        elif c == "\\":
            if i + 1 < n:
                tokens.append(pattern[i + 1])
                i += 2
            else:
                tokens.append("\\")
                i += 1
        elif c == "[":
            i += 1
            negated = i < n and pattern[i] == "^"
            if negated:
                i += 1
            ranges: list[tuple[int, int]] = []
            while i < n and pattern[i] != "]":
                if pattern[i] == "\\" and i + 1 < n:
                    ranges.append((ord(pattern[i + 1]), ord(pattern[i + 1])))
                    i += 2
                elif i + 2 < n and pattern[i + 1] == "-":
                    lo, hi = ord(pattern[i]), ord(pattern[i + 2])
                    ranges.append((min(lo, hi), max(lo, hi)))
                    i += 3
                else:
                    ranges.append((ord(pattern[i]), ord(pattern[i])))
                    i += 1
            i += 1  # the closing "]" (or the end of an unterminated class)
            tokens.append((negated, tuple(ranges)))
        else:
            tokens.append(c)
            i += 1
    return tuple(tokens)


def _char(code: int) -> str:
    if code < 0x80 and chr(code).isalnum():
        return chr(code)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


# The characters the PostgreSQL form of a key escapes: NUL, the surrogates and U+FFFF
# itself, each written as U+FFFF and a code character (see ._keys.pg_key).
_ESC = ord(PG_ESCAPE)
_SPECIAL: tuple[tuple[int, int], ...] = ((0, 0), (0xD800, 0xDFFF), (_ESC, _ESC))
_NOTHING = "[^\\u0000-\\U0010ffff]"
# One key character in the escaped form: a plain character or an escape sequence.
_ONE_ESCAPED = f"(?:[^{_char(_ESC)}]|{_char(_ESC)}.)"


def _class(ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...], negated: bool) -> str:
    body = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


def _split(
    ranges: tuple[tuple[int, int], ...],
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The plain part of a class (its ranges with the escaped characters cut out) and
    the code characters of the escaped characters it holds, both as ranges."""
    plain: list[tuple[int, int]] = []
    codes: list[tuple[int, int]] = []
    for lo, hi in ranges:
        for s_lo, s_hi in _SPECIAL:
            if hi < s_lo or lo > s_hi:
                continue
            if lo < s_lo:
                plain.append((lo, s_lo - 1))
            a, b = max(lo, s_lo), min(hi, s_hi)
            if s_lo == 0:
                codes.append((0x30, 0x30))  # NUL is written U+FFFF "0"
            elif s_lo == _ESC:
                codes.append((_ESC, _ESC))  # U+FFFF is written U+FFFF U+FFFF
            else:
                codes.append((a + 0x800, b + 0x800))  # U+D800 + n: U+FFFF, U+E000 + n
            lo = s_hi + 1
            if lo > hi:
                break
        if lo <= hi:
            plain.append((lo, hi))
    return plain, codes


def _escaped_class(negated: bool, ranges: tuple[tuple[int, int], ...]) -> str:
    """A class of key characters, over the escaped form of the keys."""
    plain, codes = _split(ranges)
    if negated:
        # Any plain character outside the class (never the escape itself), or an escape
        # sequence whose character is outside it.
        seq = _class(codes, True) if codes else "."
        return f"(?:{_class([*plain, (_ESC, _ESC)], True)}|{_char(_ESC)}{seq})"
    options = []
    if plain:
        options.append(_class(plain, False))
    if codes:
        options.append(_char(_ESC) + _class(codes, False))
    return f"(?:{'|'.join(options)})" if options else _NOTHING


def glob_regex(pattern: str, *, escaped: bool = False, after_prefix: bool = False) -> str:
    """An anchored regular expression matching exactly the strings ``pattern`` matches
    (with ``escaped=True``: the PostgreSQL forms of those strings, see :mod:`._keys`;
    with ``after_prefix=True``: what follows the pattern's :func:`literal_prefix` in
    them, so that a long literal prefix, which an index range already checks, does not
    make a long expression).

    The text is valid, with the same meaning, for Python's ``re`` and for PostgreSQL's
    ``~`` operator (advanced regular expressions).
    """
    one = _ONE_ESCAPED if escaped else "."
    parts = ["(?s)\\A"]
    tokens = _parse(pattern)
    if after_prefix:
        tokens = tuple(itertools.dropwhile(lambda token: isinstance(token, str), tokens))
    for token in tokens:
        if token is _ANY:
            parts.append(f"{one}*")
        elif token is _ONE:
            parts.append(one)
        elif isinstance(token, str):
            text = pg_key(token) if escaped else token
            parts.extend(_char(ord(c)) for c in text)
        else:
            assert isinstance(token, tuple)
            negated, ranges = token
            if escaped:
                parts.append(_escaped_class(negated, ranges))
            elif not ranges:
                # "[]" matches nothing; "[^]" matches any one character.
                parts.append("." if negated else _NOTHING)
            else:
                parts.append(_class(ranges, negated))
    parts.append("\\Z")
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """``glob_regex(pattern)`` compiled for Python (cached)."""
    return re.compile(glob_regex(pattern))


def literal_prefix(pattern: str) -> str:
    """The literal characters every match of ``pattern`` starts with (maybe ``""``)."""
    prefix = []
    for token in _parse(pattern):
        if not isinstance(token, str):
            break
        prefix.append(token)
    return "".join(prefix)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``, in
    code-point order (which is also UTF-8 byte order), or ``None`` when there is none.

    Surrogates are skipped: it bounds ranges of SQLite ``TEXT`` keys and of PostgreSQL
    keys, and neither holds a surrogate (see :mod:`._keys`).
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def bytes_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every one starting with ``prefix``, or
    ``None`` when there is none (``prefix`` empty or all ``0xff``)."""
    head = prefix.rstrip(b"\xff")
    if not head:
        return None
    return head[:-1] + bytes((head[-1] + 1,))
