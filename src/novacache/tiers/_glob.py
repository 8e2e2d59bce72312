"""Redis glob patterns (the syntax of ``SCAN MATCH``) for the SQL stores.

A pattern is parsed once into tokens and then rendered two ways:

- :func:`glob_regex`: a regular expression written only with constructs that Python's
  ``re`` and PostgreSQL's advanced regular expressions read the same way (every literal
  character as a ``\\uXXXX``/``\\UXXXXXXXX`` escape, classes as escaped ranges), so the
  SQLite tier filters with ``re`` and the PostgreSQL tier with ``~`` and both agree.
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
import re

__all__ = ["compile_glob", "glob_regex", "literal_prefix", "prefix_upper_bound"]


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


def glob_regex(pattern: str) -> str:
    """An anchored regular expression matching exactly the strings ``pattern`` matches.

    The text is valid, with the same meaning, for Python's ``re`` and for PostgreSQL's
    ``~`` operator (advanced regular expressions).
    """
    parts = ["(?s)\\A"]
    for token in _parse(pattern):
        if token is _ANY:
            parts.append(".*")
        elif token is _ONE:
            parts.append(".")
        elif isinstance(token, str):
            parts.append(_char(ord(token)))
        else:
            assert isinstance(token, tuple)
            negated, ranges = token
            if not ranges:
                # "[]" matches nothing; "[^]" matches any one character.
                parts.append("." if negated else "[^\\u0000-\\U0010ffff]")
                continue
            body = "".join(
                _char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges
            )
            parts.append(f"[{'^' if negated else ''}{body}]")
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

    Surrogates are skipped: they cannot be encoded, so no stored key contains one.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None
