"""The bulk-path helpers of the tiers: the compiled twin equals the pure one."""

from __future__ import annotations

import math
import os
from decimal import Decimal
from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacache.errors import EntryTooLarge
from novacache.tiers import _kit
from novacache.tiers._checks import MAX_TTL

NAMES = ["a", "user:1", "ключ", "键/子键", "emoji:\U0001f600", ""]


def _twins() -> list[Any]:
    params: list[Any] = [pytest.param(_kit, id="pure")]
    try:
        from novacache import _tierkit
    except ImportError:
        if os.environ.get("CI"):
            raise
        _tierkit = None
    if _tierkit is not None:
        params.append(pytest.param(_tierkit, id="compiled"))
    return params


@pytest.fixture(params=_twins())
def kit(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    if module is _kit:
        return _PureKit  # type: ignore[return-value]  # the pure functions, whatever is selected
    return module


class _PureKit:
    prefixed = staticmethod(_kit._prefixed)
    encoded = staticmethod(_kit._encoded)
    present = staticmethod(_kit._present)
    raw_key = staticmethod(_kit._raw_key)
    ttl_ms = staticmethod(_kit._ttl_ms)
    Histogram = _kit._Histogram
    Timed = _kit._Timed


def test_prefixed_and_encoded(kit: Any) -> None:
    assert kit.prefixed("ns:", NAMES) == ["ns:" + n for n in NAMES]
    assert kit.encoded(b"ns:", NAMES) == [b"ns:" + n.encode() for n in NAMES]
    assert kit.prefixed("", []) == []
    assert kit.encoded(b"", ["x"]) == [b"x"]


@pytest.mark.parametrize("bad", [1, b"bytes", None])
def test_non_str_keys_are_refused(kit: Any, bad: Any) -> None:
    with pytest.raises(TypeError, match="a key must be str"):
        kit.prefixed("p", ["ok", bad])
    with pytest.raises(TypeError, match="a key must be str"):
        kit.encoded(b"p", ["ok", bad])


def test_keys_without_utf8_come_as_their_bytes(kit: Any) -> None:
    """A lone surrogate has no strict UTF-8: such a key comes as its bytes (UTF-8 with
    "surrogatepass", the tiers' one key encoding) and every other key as before; a
    non-str key is still refused, the first bad key in order deciding."""
    assert kit.prefixed("p:", ["ok", "bad\ud800", "\u00e9"]) == [
        "p:ok",
        b"p:bad\xed\xa0\x80",
        "p:\u00e9",
    ]
    assert kit.prefixed("\ud800", ["ok"]) == [b"\xed\xa0\x80ok"]
    assert kit.encoded(b"p:", ["ok", "bad\udcff"]) == [b"p:ok", b"p:bad\xed\xb3\xbf"]
    with pytest.raises(TypeError, match="a key must be str"):
        kit.prefixed("p:", ["bad\ud800", 1])
    with pytest.raises(TypeError, match="a key must be str"):
        kit.encoded(b"p:", ["bad\ud800", 1])
    with pytest.raises(TypeError, match="a key must be str"):
        kit.encoded(b"p:", [1, "bad\ud800"])
    assert kit.prefixed("\u00e9:", NAMES) == ["\u00e9:" + n for n in NAMES]
    assert kit.prefixed("\ud800", []) == []


def test_prefixed_makes_exact_str(kit: Any) -> None:
    class Sub(str):
        pass

    keys = kit.prefixed("p:", [Sub("a"), "b"])
    assert keys == ["p:a", "p:b"]
    assert all(type(k) is str for k in keys)


def test_present(kit: Any) -> None:
    values = [b"1", None, b"", None, b"5", b"6"]
    assert kit.present(NAMES, values) == {
        n: v for n, v in zip(NAMES, values, strict=True) if v is not None
    }
    with pytest.raises(ValueError, match="differ in length"):
        kit.present(["a"], [])


def test_raw_key(kit: Any) -> None:
    for name in NAMES:
        assert kit.raw_key(b"ns:", name) == b"ns:" + name.encode()
    assert kit.raw_key(b"ns:", "a\udc80") == b"ns:a\xed\xb2\x80"  # surrogatepass
    assert kit.raw_key(b"", "x") == b"x"
    for bad in (1, b"k", None):
        with pytest.raises(TypeError, match="a key must be str"):
            kit.raw_key(b"ns:", bad)
    assert kit.raw_key(b"ns:", "k" * 7, 10) == b"ns:" + b"k" * 7  # at the limit
    with pytest.raises(EntryTooLarge):
        kit.raw_key(b"ns:", "k" * 8, 10)
    with pytest.raises(EntryTooLarge):
        kit.raw_key(b"ns:", "\u00e9" * 4, 10)  # the limit counts UTF-8 bytes


class _Str(str):
    pass


def test_raw_key_takes_str_subclasses(kit: Any) -> None:
    assert kit.raw_key(b"p:", _Str("k\u00e9")) == b"p:k\xc3\xa9"


TTLS: list[Any] = [
    None,
    1,
    2,
    300,
    1.0,
    0.0005,
    0.0015,
    0.0025,
    0.0004999,
    1e-9,
    1.0000005,
    123.4565,
    MAX_TTL,
    MAX_TTL + 1,
    int(MAX_TTL),
    int(MAX_TTL) + 1,
    10**30,
    math.inf,
    2**63,
    Decimal("60.5"),
    Fraction(121, 2),
    Fraction(10**400, 3),
    True,
]


@pytest.mark.parametrize("ttl", TTLS, ids=repr)
def test_ttl_ms_matches_the_pure_function(kit: Any, ttl: Any) -> None:
    assert _outcome(kit.ttl_ms, ttl) == _outcome(_kit._ttl_ms, ttl)


@given(st.floats(min_value=1e-12, max_value=1e12) | st.integers(-(2**70), 2**70))
def test_ttl_ms_matches_the_pure_function_everywhere(ttl: float) -> None:
    assert _outcome(_kit.ttl_ms, ttl) == _outcome(_kit._ttl_ms, ttl)


@pytest.mark.parametrize("bad", [0, -1, 0.0, -0.5, math.nan, -math.inf, -(10**30), "5", b"5"])
def test_ttl_ms_refuses(kit: Any, bad: Any) -> None:
    assert _outcome(kit.ttl_ms, bad) == _outcome(_kit._ttl_ms, bad)
    assert _outcome(kit.ttl_ms, bad)[0] in (ValueError, TypeError)


def _outcome(f: Any, ttl: Any) -> tuple[Any, Any]:
    try:
        return (None, f(ttl))
    except (TypeError, ValueError) as exc:
        return (type(exc), str(exc))


# -- latency histograms (novacache.ops.metrics) --------------------------------------------


def test_histogram_buckets_are_upper_bounds(kit: Any) -> None:
    h = kit.Histogram([0.001, 0.01, 0.1])
    for seconds in (0.0, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.5, 7.0):
        h.record(seconds)
    counts, total = h.snapshot()
    assert counts == [2, 2, 2, 2]  # le 0.001, le 0.01, le 0.1, +Inf
    assert total == pytest.approx(7.6621)


@pytest.mark.parametrize("bad", [[], [0.0], [-1.0], [0.2, 0.1], [0.1, 0.1], [math.nan]])
def test_histogram_refuses_bad_bounds(kit: Any, bad: list[float]) -> None:
    with pytest.raises(ValueError, match="increasing"):
        kit.Histogram(bad)


def test_timed_keeps_results_and_exceptions_and_times_both(kit: Any) -> None:
    h = kit.Histogram([1.0])

    def fn(a: int, *, b: int = 0) -> int:
        if a < 0:
            raise KeyError(a)
        return a + b

    timed = kit.Timed(fn, h)
    assert timed.wrapped is fn
    assert timed.histogram is h
    assert timed(1, b=2) == 3
    with pytest.raises(KeyError):
        timed(-1)
    counts, total = h.snapshot()
    assert counts == [2, 0]
    assert 0 <= total < 1.0
    with pytest.raises(TypeError):
        kit.Timed(fn, None)


def test_histogram_is_exact_under_threads(kit: Any) -> None:
    import threading

    h = kit.Histogram([1e-9, 1.0])
    timed = kit.Timed(lambda: None, h)
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        for _ in range(20_000):
            timed()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts, _ = h.snapshot()
    assert sum(counts) == 80_000
