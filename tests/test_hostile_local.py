"""Hostile input to the L1 entry points: ``LocalCache`` and ``memoize``, on both twins.

The contract (``docs/local-cache.md``, "Hostile input"): every call either works or
raises a typed ``novacache.errors`` error, the ``TypeError``/``ValueError`` the contract
names, or the exception the user's own code (a key's ``__hash__``/``__eq__``, a
weigher, a timer) raised; both twins raise the same type for the same input; nothing
crashes; after any error the cache is consistent (:func:`check_consistent`).

Three layers:

- regression tests of the defects found here (byte-count overflow, huge TTLs, timers
  returning non-numbers), each on both twins;
- differential property tests (hypothesis): the same odd weight, TTL, timer reading or
  key given to both twins gives the same outcome;
- a hostile state machine (keys whose ``__hash__``/``__eq__`` raise or use the cache,
  weighers and timers that misbehave, odd keys and values). The compiled core runs it
  in a child process (``tests/_isolate.py``), so a crash fails one test.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest

from _helpers import FakeTimer, load_impl
from novacache.errors import ConfigurationError, EntryTooLarge, NovaCacheError

SSIZE_MAX = sys.maxsize  # the largest weight, maxbytes and byte total (2**63 - 1)


def both() -> tuple[ModuleType, ModuleType]:
    """The compiled core and the twin, for the differential tests."""
    return load_impl("compiled"), load_impl("pure")


def check_consistent(c: Any) -> None:
    """The invariants any operation leaves, even one that raised.

    Reads through the public API only and tolerates a hostile weigher (weights are
    not recomputed): bounds hold, ``len``/``currsize``/``stats`` agree, the snapshots
    agree with each other and with lookups, the byte total is within its range, and
    after ``expire()`` the snapshots list exactly ``len(c)`` entries.
    """
    limit = c.maxbytes if c.maxbytes is not None else SSIZE_MAX
    if c.maxsize is not None:
        assert len(c) <= c.maxsize
    assert 0 <= c.currbytes <= limit
    if c.weigher is None:
        assert c.currbytes == 0
    stats = c.stats
    assert stats.currsize == c.currsize == len(c)
    assert stats.currbytes == c.currbytes
    assert min(stats.hits, stats.misses, stats.evictions, stats.expirations) >= 0
    items = c.items()
    assert len(items) <= len(c)
    keys = [k for k, _ in items]
    assert len({id(k) for k in keys}) == len(keys)
    c.expire()
    items = c.items()
    assert len(items) == len(c) == len(c.keys()) == len(c.values()) == len(list(c))


def drain(c: Any) -> None:
    """Empty ``c`` entry by entry: the byte total must come back to exactly 0."""
    n = len(c)
    for _ in range(n):
        c.popitem()
    assert len(c) == 0
    assert c.currbytes == 0
    assert c.items() == []


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", result) or ("raised", the exception's type): what the differential tests
    compare across the twins."""
    try:
        return ("ok", fn())
    except Exception as exc:  # the type is the result
        return ("raised", type(exc))


def assert_typed(exc_type: type[BaseException], *allowed: type[BaseException]) -> None:
    """An error from the cache must be a novacache error or one of ``allowed``."""
    assert issubclass(exc_type, (NovaCacheError, *allowed)), exc_type


# -- regression: the byte count never overflows -----------------------------------------


def test_weights_near_the_top_of_the_range_keep_the_byte_count_exact(impl: ModuleType) -> None:
    """Two weights of 2**62 add up to more than 2**63 - 1: the compiled core used to
    wrap ``currbytes`` negative and keep 3 entries under a bound that allows 1."""
    c = impl.LocalCache(maxbytes=SSIZE_MAX, weigher=lambda k, v: 2**62)
    for i in range(4):
        c[i] = i
        assert len(c) == 1
        assert c.currbytes == 2**62
        assert c.keys() == [i]
    assert c.stats.evictions == 3
    check_consistent(c)
    drain(c)


@pytest.mark.parametrize(
    "weight",
    [SSIZE_MAX + 1, 2**64, 2**64 + 1, 10**30, 10**5000],
    ids=["2^63", "2^64", "2^64+1", "e30", "e5000"],
)
@pytest.mark.parametrize("maxbytes", [SSIZE_MAX, None])
def test_weight_beyond_the_range_is_entry_too_large(
    impl: ModuleType, weight: int, maxbytes: int | None
) -> None:
    """A weight of 2**63 or more used to raise ``OverflowError`` from the compiled core
    (the twin: ``EntryTooLarge``, or nothing at all without maxbytes)."""
    c = impl.LocalCache(maxbytes=maxbytes, weigher=lambda k, v: v)
    c["small"] = 5
    with pytest.raises(EntryTooLarge) as info:
        c["big"] = weight
    assert info.value.weight == weight
    assert info.value.maxbytes == SSIZE_MAX
    with pytest.raises(EntryTooLarge):
        c.set_many({"x": 1, "big": weight})
    assert c.items() == [("small", 5)]
    assert c.currbytes == 5
    check_consistent(c)


@pytest.mark.parametrize("maxbytes", [SSIZE_MAX, 2**62, 2**40 + 1])
def test_a_weight_equal_to_maxbytes_fits_alone(impl: ModuleType, maxbytes: int) -> None:
    c = impl.LocalCache(maxbytes=maxbytes, weigher=lambda k, v: v)
    c["a"] = 0
    c["whole"] = maxbytes
    assert c.keys() == ["a", "whole"]
    assert c.currbytes == maxbytes
    c["one"] = 1  # evicts down to room for 1 byte: "a" weighs 0 but is older
    assert c.keys() == ["one"]
    assert c.currbytes == 1
    drain(c)


def test_total_weight_without_maxbytes_stays_in_range(impl: ModuleType) -> None:
    """A weigher without maxbytes only tracks currbytes, but the total must still fit
    the counter: past 2**63 - 1 the least recently used entries go, as maxbytes would
    make them (the compiled core used to wrap to -2 here)."""
    c = impl.LocalCache(weigher=lambda k, v: v)
    c["a"] = SSIZE_MAX
    c["b"] = SSIZE_MAX
    assert c.keys() == ["b"]
    assert c.currbytes == SSIZE_MAX
    assert c.stats.evictions == 1
    c["c"] = 0
    c["d"] = 1
    assert c.keys() == ["c", "d"]
    check_consistent(c)
    drain(c)


def test_overwrite_near_the_top_of_the_range(impl: ModuleType) -> None:
    """An overwrite swaps the old weight for the new one without an intermediate sum
    beyond the range, and evicts (never the entry itself) until it fits."""
    c = impl.LocalCache(maxbytes=SSIZE_MAX, weigher=lambda k, v: v)
    c["a"] = 2**62
    c["b"] = 2**62 - 1
    c["a"] = SSIZE_MAX - 3  # needs room: "b" goes
    assert c.keys() == ["a"]
    assert c.currbytes == SSIZE_MAX - 3
    c["a"] = SSIZE_MAX
    assert c.currbytes == SSIZE_MAX
    c["a"] = 0
    assert c.currbytes == 0
    assert len(c) == 1
    drain(c)


def test_many_entries_close_to_the_limit(impl: ModuleType) -> None:
    """Entries of about a seventh of the range each: the cache keeps exactly the most
    recent ones whose weights sum to at most 2**63 - 1."""
    step = SSIZE_MAX // 7
    c = impl.LocalCache(maxbytes=SSIZE_MAX, weigher=lambda k, v: v)
    written: list[int] = []
    for i in range(30):
        c[i] = step + (i % 3) - 1
        written.append(step + (i % 3) - 1)
        kept, total = 0, 0
        for w in reversed(written):
            if total + w > SSIZE_MAX:
                break
            total, kept = total + w, kept + 1
        assert c.values() == written[-kept:]
        assert c.currbytes == total
    drain(c)


# -- regression: TTLs and timers --------------------------------------------------------


@pytest.mark.parametrize(
    "ttl",
    [10**400, -(10**400), Fraction(10**400), 2**1024],
    ids=["e400", "-e400", "frac", "2^1024"],
)
def test_ttl_too_large_for_a_float_is_a_value_error(impl: ModuleType, ttl: object) -> None:
    """``ttl=10**400`` used to raise ``OverflowError`` from both twins."""
    with pytest.raises(ConfigurationError):
        impl.LocalCache(ttl=ttl)
    with pytest.raises(ConfigurationError):
        impl.memoize(ttl=ttl)
    c = impl.LocalCache(timer=FakeTimer())
    with pytest.raises(ValueError) as info:
        c.set("k", 1, ttl=ttl)
    assert not isinstance(info.value, ConfigurationError)  # a bad argument, not config
    with pytest.raises(ValueError):
        c.set_many({"k": 1}, ttl=ttl)
    assert len(c) == 0


def test_ttl_just_below_the_float_range_means_no_practical_expiry(impl: ModuleType) -> None:
    timer = FakeTimer(1e300)
    c = impl.LocalCache(ttl=sys.float_info.max, timer=timer)  # now + ttl overflows: inf
    c["a"] = 1
    timer.tick(1e307)
    assert c["a"] == 1
    c.set("b", 2, ttl=2**1023)
    assert c["b"] == 2
    check_consistent(c)


@pytest.mark.parametrize("reading", ["12.5", "x", b"1", None, [1.0], 1j, object()])
def test_timer_reading_that_is_not_a_number_is_a_type_error(
    impl: ModuleType, reading: object
) -> None:
    """A timer returning a ``str`` made the compiled core raise ``ValueError`` (it
    parsed the string: "12.5" even worked) and the twin ``TypeError``."""
    readings = [1000.0]
    c = impl.LocalCache(4, ttl=10, timer=lambda: readings[-1])
    c["live"] = 1
    readings.append(reading)  # type: ignore[arg-type]
    for op in (
        lambda: c.set("k", 1),
        lambda: c.set("k", 1, ttl=5),
        lambda: c.get("live"),
        lambda: c["live"],
        lambda: c.expire(),
        lambda: c.items(),
        lambda: c.popitem(),
        lambda: "live" in c,
        lambda: c.pop("live"),
    ):
        with pytest.raises(TypeError):
            op()
    readings.append(1000.0)
    assert c.items() == [("live", 1)]
    check_consistent(c)


@pytest.mark.parametrize(
    "reading", [math.nan, 10**400, Decimal("NaN")], ids=["nan", "e400", "decimal-nan"]
)
def test_timer_reading_that_is_not_a_time_is_a_value_error(
    impl: ModuleType, reading: object
) -> None:
    """NaN silently made every deadline unreachable in both twins; 10**400 raised
    ``OverflowError``."""
    readings: list[object] = [1000.0]
    c = impl.LocalCache(4, ttl=10, timer=lambda: readings[-1])
    c["live"] = 1
    readings.append(reading)
    for op in (
        lambda: c.set("k", 1),
        lambda: c.get("live"),
        lambda: c.expire(),
        lambda: c.keys(),
    ):
        with pytest.raises(ValueError):
            op()
    readings.append(1000.0)
    assert c.items() == [("live", 1)]
    check_consistent(c)


def test_timer_at_infinity_has_passed_every_deadline(impl: ModuleType) -> None:
    """A timer reading ``inf`` is the end of time: every entry with a TTL has expired,
    one set then too (its deadline is past the largest float). The compiled core used
    to keep such an entry forever (its "no expiry" mark is inf) and the twin did not."""
    timer = FakeTimer()
    c = impl.LocalCache(ttl=10, timer=timer)
    c["a"] = 1
    c.set("forever", 2, ttl=math.inf)
    timer.tick(math.inf)
    assert "a" not in c
    c["b"] = 3
    assert c.get("b") is None
    c.set("huge", 4, ttl=sys.float_info.max)
    assert "huge" not in c
    assert c.items() == [("forever", 2)]
    timer.now = -math.inf  # before every deadline but those set at -inf
    c["c"] = 5
    assert c.items() == [("forever", 2)]
    check_consistent(c)


@pytest.mark.parametrize("reading", [5, True, 2**40, Fraction(7, 2), Decimal("12.25")])
def test_timer_may_return_any_real(impl: ModuleType, reading: object) -> None:
    c = impl.LocalCache(ttl=10, timer=lambda: reading)
    c["a"] = 1
    assert c["a"] == 1
    assert c.expire() == 0


def test_timer_failing_mid_operation_leaves_the_bounds(impl: ModuleType) -> None:
    """The timer is read once per operation, before anything changes: a timer that
    fails on its second reading cannot leave an insert half done (the twin used to
    read it again for each eviction candidate)."""
    calls = [0]

    def timer() -> float:
        calls[0] += 1
        if calls[0] > fail_after[0]:
            raise RuntimeError("timer failed")
        return 1000.0

    fail_after = [10**9]
    c = impl.LocalCache(2, ttl=10, timer=timer)
    c["a"] = 1
    c["b"] = 2
    for n in range(6):
        calls[0] = 0
        fail_after[0] = n
        try:
            c[("new", n)] = n
        except RuntimeError:
            pass
        assert len(c) <= 2
        fail_after[0] = 10**9
        check_consistent(c)


def test_memoize_maxsize_beyond_the_entry_limit_is_unbounded_in_both(impl: ModuleType) -> None:
    """The twin clamps a huge maxsize to the largest cache, as functools accepts any;
    the compiled core used to raise ConfigurationError."""
    f = impl.memoize(maxsize=2**40)(lambda x: x * 2)
    assert f(3) == 6
    assert f(3) == 6
    assert f.cache_info().hits == 1
    assert f.cache_parameters()["maxsize"] == 2**40
