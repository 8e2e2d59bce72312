"""Strategies and the contract of the hostile-input suites (issue 18).

The contract of a public entry point given anything: it works, or it raises an error
novacache raises on purpose, which is a :class:`~novacache.errors.NovaCacheError`, or a
``TypeError``/``ValueError`` of argument checking raised by novacache's own code (a key
that is not a ``str``, a TTL of -1). Never a crash, never an exception raised inside a
library (redis-py, psycopg, sqlite3, msgpack, urllib), never a ``UnicodeError``.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

import novacache
from novacache.errors import NovaCacheError

# Characters that broke something once, or could: NUL and controls, lone surrogates (what
# os.fsdecode makes of undecodable bytes), the PostgreSQL escape U+FFFF and its codes,
# glob metacharacters, hash-tag braces, the bytes of the tiers' reserved namespaces.
ODD_CHARS = st.sampled_from(
    [
        "\x00", "\x01", "\x1e", "\x1f", "\x7f", "\n", "\r", "\t", "\x1b", " ", "\u00ff",
        "\ud800", "\udbff", "\udc80", "\udcff", "\udfff", "\uffff", "\ufffe", "\ue000",
        "\ue7ff", "0", "*", "?", "[", "]", "^", "-", "\\", "{", "}", ":", "\u00e9",
        "\U0001f600", "\U0010ffff",
    ]
)  # fmt: skip
ANY_CHAR = st.characters(exclude_categories=())  # every code point, surrogates included
KEY_CHARS = st.one_of(ODD_CHARS, ANY_CHAR)

KEYS = st.one_of(
    st.text(KEY_CHARS, max_size=12),
    st.text(ODD_CHARS, min_size=1, max_size=6),
    st.builds(os.fsdecode, st.binary(min_size=1, max_size=12)),
    # about 20 kB
    st.builds(lambda text, n: text * n, st.text(KEY_CHARS, min_size=1, max_size=3), st.just(7000)),
)
NON_STR_KEYS = st.one_of(
    st.binary(max_size=4),
    st.integers(),
    st.none(),
    st.floats(),
    st.tuples(st.text(max_size=2)),
    st.builds(bytearray, st.binary(max_size=4)),
)
FRAMES = st.one_of(
    st.binary(max_size=256),
    st.builds(bytearray, st.binary(max_size=64)),
    st.builds(memoryview, st.binary(max_size=64)),
)
NON_FRAMES = st.one_of(st.text(max_size=4), st.integers(), st.none(), st.lists(st.integers()))
TTLS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-5, max_value=10**400),
    st.sampled_from([0, 0.0, -0.0, 1e-300, 1e300, 10**400, math.inf, -math.inf, math.nan]),
    st.booleans(),
    st.text(max_size=3),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.just(Fraction(10**400, 3)),
    st.just(Decimal("sNaN")),
    st.just(complex(1, 1)),
)
PATTERNS = st.one_of(st.text(KEY_CHARS, max_size=8), NON_STR_KEYS)
# Values a codec round-trips exactly (no NaN: it never equals itself).
PLAIN_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.binary(max_size=40),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
# Anything at all: the codec may refuse it, with a CodecError.
ODD_VALUES = st.one_of(
    PLAIN_VALUES,
    st.text(KEY_CHARS, max_size=8),
    st.lists(st.text(KEY_CHARS, max_size=3), max_size=3),
    st.floats(),
    st.integers(),
    st.just(object()),
    st.just({1, 2}),
    st.just((1, (2,))),
    st.just({"k": {"\udcff": 1}}),
    st.just([[[[[[[[[[[[]]]]]]]]]]]] * 3),
    st.just(2**200),
)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(novacache.__file__)) + os.sep


def _innermost_file(exc: BaseException) -> str:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return "" if last is None else last.tb_frame.f_code.co_filename


def assert_typed(exc: BaseException) -> None:
    """Fail unless ``exc`` is an error novacache raises on purpose (see the module)."""
    if isinstance(exc, NovaCacheError):
        return
    assert isinstance(exc, (TypeError, ValueError)), f"untyped error: {exc!r}"
    assert not isinstance(exc, UnicodeError), f"a raw UnicodeError: {exc!r}"
    where = _innermost_file(exc)
    # Raised by novacache's own code (as installed, or from src/), not by a library: a
    # compiled module names its Cython source, ext/_core.pyx's the part of ext/core/.
    parts = os.path.normpath(where).split(os.sep)
    ours = (
        where.startswith(_PACKAGE_DIR)
        or parts[-1] in ("_tierkit.pyx", "_core.pyx", "_codec.pyx")
        or (parts[-2:-1] == ["core"] and parts[-1].endswith(".pxi"))
    )
    assert ours, f"{exc!r} raised in {where}, not by novacache's own checks"


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """``(True, result)``, or ``(False, exc)`` after checking the error is typed."""
    try:
        return True, fn(*args, **kwargs)
    except Exception as exc:
        assert_typed(exc)
        return False, exc


class Driver:
    """Calls a sync tier or manager directly, an async one on a private event loop; a
    ``scan`` is collected into a list."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.target = target
        self.loop = loop

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.target, name)
        if self.loop is None:
            result = fn(*args, **kwargs)
            return list(result) if name == "scan" else result
        if name == "scan":

            async def collect() -> list[Any]:
                it: AsyncIterator[Any] = fn(*args, **kwargs)
                return [k async for k in it]

            return self.loop.run_until_complete(collect())
        result = fn(*args, **kwargs)
        return self.loop.run_until_complete(result) if isinstance(result, Awaitable) else result

    def run(self, coro: Awaitable[Any]) -> Any:
        assert self.loop is not None
        return self.loop.run_until_complete(coro)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        return call(self, name, *args, **kwargs)


def escape_glob(key: str) -> str:
    """A pattern matching ``key`` only (Redis' syntax)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in key)
