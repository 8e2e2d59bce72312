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
import operator
import sys
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _helpers import FakeTimer, load_impl
from _isolate import run_isolated
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


def assert_all_typed(log: list[Any], *allowed: type[BaseException]) -> None:
    """Every ``("raised", type)`` in ``log`` is typed (see :func:`assert_typed`)."""
    for item in log:
        if isinstance(item, tuple) and len(item) == 2 and item[0] == "raised":
            assert_typed(item[1], *allowed)


class Clock:
    """A settable timer that pickles (``reduce`` in the timer test copies it)."""

    def __init__(self, now: Any = 1000.0) -> None:
        self.now = now

    def __call__(self) -> Any:
        return self.now


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


def test_eviction_survives_a_key_whose_eq_raises_inside_the_dict(impl: ModuleType) -> None:
    """The compiled core evicts by identity; the twin's dict compares colliding keys on
    the way to the victim. A key whose ``__eq__`` raises there used to make the twin's
    insert raise with the victim half removed: ``len`` stayed above ``maxsize``."""

    class Key:
        raising = False

        def __init__(self, n: int) -> None:
            self.n = n

        def __hash__(self) -> int:
            return 7

        def __eq__(self, other: object) -> bool:
            if Key.raising:
                raise RuntimeError("eq failed")
            return isinstance(other, Key) and other.n == self.n

    a, b = Key(1), Key(2)
    c = impl.LocalCache(2)
    c[a] = 1
    c[b] = 2
    assert c.get(a) == 1  # found by identity; b is now the least recently used
    Key.raising = True
    c["new"] = 3  # evicts b: no key comparison is needed to remove it
    assert c.keys() == [a, "new"]
    assert len(c) == 2
    assert c.stats.evictions == 1
    Key.raising = False
    assert b not in c
    check_consistent(c)
    c[b] = 4  # under an equal key again
    assert c.keys() == ["new", b]
    drain(c)


def test_memoize_maxsize_beyond_the_entry_limit_is_unbounded_in_both(impl: ModuleType) -> None:
    """The twin clamps a huge maxsize to the largest cache, as functools accepts any;
    the compiled core used to raise ConfigurationError."""
    f = impl.memoize(maxsize=2**40)(lambda x: x * 2)
    assert f(3) == 6
    assert f(3) == 6
    assert f.cache_info().hits == 1
    assert f.cache_parameters()["maxsize"] == 2**40


# -- differential property tests: the same odd input, the same outcome ------------------


class Boom(Exception):
    """Raised by hostile user code: it must come out of the cache unchanged."""


class IndexOnly:
    """An int-like without ``__float__``: ``operator.index`` and ``float()`` take it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __index__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"IndexOnly({self.n})"


class FloatOnly:
    """A real with ``__float__`` only (no ``__index__``, no comparisons)."""

    def __init__(self, x: float) -> None:
        self.x = x

    def __float__(self) -> float:
        return self.x

    def __repr__(self) -> str:
        return f"FloatOnly({self.x!r})"


class RaisingNumber:
    """Every conversion raises :class:`Boom`."""

    def __index__(self) -> int:
        raise Boom("index")

    def __float__(self) -> float:
        raise Boom("float")

    def __repr__(self) -> str:
        return "RaisingNumber()"


class WrongFloat:
    """``__float__`` returns a str: ``TypeError`` from ``float()`` and from C alike."""

    def __float__(self) -> Any:
        return "1.5"

    def __repr__(self) -> str:
        return "WrongFloat()"


_EDGES = [0, 2**31, 2**53, 2**62, 2**63, 2**64, 10**30, 2**1024, 10**400]
EDGE_INTS = st.sampled_from(_EDGES).flatmap(
    lambda n: st.sampled_from([n - 1, n, n + 1, -n - 1, -n, -n + 1])
)
ODD_NUMBERS = st.one_of(
    EDGE_INTS,
    st.integers(),
    st.floats(),  # NaN, both infinities, -0.0, subnormals, the largest float
    st.booleans(),
    st.fractions(),
    st.decimals(),  # NaN, sNaN, infinities
    st.builds(IndexOnly, EDGE_INTS),
    st.builds(FloatOnly, st.floats()),
    st.sampled_from(
        [None, "5", "nan", "", b"5", bytearray(b"1"), 1j, [1], (), object(), RaisingNumber()]
    ),
    st.just(WrongFloat()),
)
MAXBYTES = st.one_of(
    st.none(),
    st.sampled_from([1, 2**31, 2**62, 2**63 - 1]),
    st.integers(1, SSIZE_MAX),
)
DIFF_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def state(c: Any) -> tuple[Any, ...]:
    """What the twins must agree on after each step (keys compared by identity)."""
    s = c.stats
    return (
        [id(k) for k in c.keys()],  # noqa: SIM118 (the method under test)
        c.currbytes,
        len(c),
        (s.hits, s.misses, s.evictions, s.expirations),
    )


@DIFF_SETTINGS
@given(
    maxsize=st.one_of(st.none(), st.integers(1, 4)),
    maxbytes=MAXBYTES,
    weights=st.lists(ODD_NUMBERS, min_size=1, max_size=8),
    keys=st.lists(st.integers(0, 4), min_size=8, max_size=8),
)
def test_twins_agree_on_every_weight(
    maxsize: int | None, maxbytes: int | None, weights: list[Any], keys: list[int]
) -> None:
    """The weigher returns the stored value: each odd number is a weight. Every set,
    overwrite and set_many has the same outcome in both twins, then the same state;
    the byte total stays exact and in range, and draining brings it back to 0."""
    logs = []
    pairs = [(("many", i), w) for i, w in enumerate(weights)]  # the same key objects
    for impl in both():
        c = impl.LocalCache(maxsize, maxbytes=maxbytes, weigher=lambda k, v: v)
        log: list[Any] = []
        for key, weight in zip(keys, weights, strict=False):
            log.append(outcome(lambda: c.set(key, weight)))  # noqa: B023 (runs now)
            log.append(state(c))
            assert c.currbytes == sum(operator.index(v) for v in c.values())
        log.append(outcome(lambda: c.set_many(pairs)))  # noqa: B023
        log.append(state(c))
        assert_all_typed(log, TypeError, ValueError, Boom)
        check_consistent(c)
        drain(c)
        logs.append(log)
    assert logs[0] == logs[1]


@DIFF_SETTINGS
@given(
    ttl=st.one_of(ODD_NUMBERS, st.sampled_from([math.inf, -math.inf, 1e-320, 5e-324])),
    later=st.floats(0, 1e300),
)
def test_twins_agree_on_every_ttl(ttl: Any, later: float) -> None:
    """An odd TTL through every entry point that takes one: the same error type (a
    ConfigurationError from the constructor and memoize, a plain ValueError from set),
    or, accepted, the same default and the same expiry."""
    logs = []
    for impl in both():
        timer = FakeTimer()
        log: list[Any] = [
            outcome(lambda: impl.LocalCache(ttl=ttl, timer=timer).ttl),  # noqa: B023
            outcome(lambda: impl.memoize(ttl=ttl) and None),  # noqa: B023
            outcome(lambda: impl.memoize(3, ttl=ttl, timer=timer)(abs)(-2)),  # noqa: B023
        ]
        c = impl.LocalCache(timer=timer)
        log.append(outcome(lambda: c.set("k", 1, ttl=ttl)))  # noqa: B023
        log.append(outcome(lambda: c.set_many({"m": 2}, ttl=ttl)))  # noqa: B023
        timer.tick(later)
        log.append(("items", c.items()))
        assert_all_typed(log, TypeError, ValueError, Boom)
        if log[0][0] == "raised" and issubclass(log[0][1], ValueError):
            assert log[0][1] is ConfigurationError
            assert log[1][1] is ConfigurationError
        if log[3][0] == "raised" and issubclass(log[3][1], ValueError):
            assert log[3][1] is ValueError
        check_consistent(c)
        logs.append(log)
    assert logs[0] == logs[1]


TIMER_OPS = st.one_of(
    st.tuples(st.just("tick"), st.one_of(st.floats(-100, 100), ODD_NUMBERS)),
    st.tuples(st.just("set"), st.integers(0, 3), st.sampled_from([None, 1.0, 5, 30.0, math.inf])),
    st.tuples(
        st.sampled_from(["get", "getitem", "in", "peek", "pop", "del", "setdefault"]),
        st.integers(0, 3),
    ),
    st.tuples(st.sampled_from(["popitem", "expire", "items", "iter", "len", "reduce"])),
    st.tuples(st.just("many"), st.lists(st.integers(0, 3), max_size=3)),
)


def timer_op(c: Any, op: tuple[Any, ...], clock: Clock) -> Any:
    import pickle

    name = op[0]
    if name == "tick":
        clock.now = op[1]
        return None
    if name == "set":
        return c.set(op[1], f"v{op[1]}", ttl=op[2])
    if name == "get":
        return c.get(op[1])
    if name == "getitem":
        return c[op[1]]
    if name == "in":
        return op[1] in c
    if name == "peek":
        return c.peek(op[1])
    if name == "pop":
        return c.pop(op[1], None)
    if name == "del":
        del c[op[1]]
        return None
    if name == "setdefault":
        return c.setdefault(op[1], "d")
    if name == "popitem":
        return c.popitem()
    if name == "expire":
        c.expire()  # how many depends on what the sweeps reclaimed before
        return None
    if name == "items":
        return c.items()
    if name == "iter":
        return list(c)
    if name == "len":
        return None  # len(c) counts unreclaimed expired entries: differs by design
    if name == "reduce":
        return pickle.loads(pickle.dumps(c)).keys()
    c.set_many({k: f"m{k}" for k in op[1]}, ttl=10)
    c.delete_many(op[1][:1])
    return c.get_many(op[1])


@DIFF_SETTINGS
@given(ops=st.lists(TIMER_OPS, min_size=1, max_size=25))
def test_twins_agree_on_every_timer_reading(ops: list[tuple[Any, ...]]) -> None:
    """The timer returns whatever the last ``tick`` set: good times, times going
    backwards, NaN, inf, strings, None, objects whose conversion raises. Both twins read
    it in the same operations, so each operation has the same outcome in both (the
    cache is unbounded: which expired entries a sweep reclaims is left to each twin,
    but never which live entries are returned)."""
    logs = []
    for impl in both():
        clock = Clock()
        c = impl.LocalCache(timer=clock)
        log = []
        for op in ops:
            log.append(outcome(lambda: timer_op(c, op, clock)))  # noqa: B023
            assert_all_typed(log[-1:], TypeError, ValueError, KeyError, Boom)
            reading = clock.now
            if not isinstance(reading, float) or reading != reading:
                clock.now = 1000.0  # look with a good reading
            live = c.items()
            clock.now = reading
            s = c.stats
            log.append((live, s.hits, s.misses))
        clock.now = 1000.0
        check_consistent(c)
        logs.append(log)
    assert logs[0] == logs[1]


# Odd keys: surrogates, NUL and control characters, 20 kB, and every hashable kind.
ODD_TEXT = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=8),
    st.sampled_from(["", "\x00", "\x00" * 3, "\ud800", "\udfff\ud800", "\x7f\x1b[0m"]),
    st.builds(lambda ch, n: ch * n, st.characters(exclude_categories=()), st.just(20_000)),
)
ODD_KEYS = st.one_of(
    ODD_TEXT,
    st.binary(max_size=8),
    EDGE_INTS,
    st.floats(),  # NaN keys are equal only to themselves (by identity)
    st.booleans(),
    st.none(),
    st.fractions(),
    st.decimals(allow_nan=False),
    st.complex_numbers(),
    st.tuples(ODD_TEXT, EDGE_INTS),
    st.frozensets(st.integers(0, 3), max_size=3),
    st.sampled_from([[1], {"a": 1}, {1}, bytearray(b"x")]),  # unhashable: TypeError
)


def odd_value(kind: int) -> Any:
    """Values: self-referencing containers and a large object."""
    if kind == 0:
        v: list[Any] = []
        v.append(v)
        return v
    if kind == 1:
        d: dict[str, Any] = {}
        d["self"] = d
        return d
    if kind == 2:
        return bytes(1 << 20)
    return kind


@DIFF_SETTINGS
@given(
    keys=st.lists(ODD_KEYS, min_size=1, max_size=10),
    kinds=st.lists(st.integers(0, 4), min_size=10, max_size=10),
    maxbytes=st.sampled_from([None, 1 << 21, 10_000]),
)
def test_twins_agree_on_odd_keys_and_values(
    keys: list[Any], kinds: list[int], maxbytes: int | None
) -> None:
    """The same odd keys and values (with the default weigher when maxbytes is set:
    a 1 MiB value is EntryTooLarge under 10,000) give the same outcomes in both twins;
    memoize takes the same keys as arguments."""
    logs = []
    for impl in both():
        values = [odd_value(k) for k in kinds]
        c = impl.LocalCache(4, maxbytes=maxbytes)
        log: list[Any] = []
        calls: list[Any] = []
        f = impl.memoize(3)(lambda *a, **kw: calls.append(a) or len(calls))  # noqa: B023
        for i, key in enumerate(keys):
            v = values[i]
            log.append(outcome(lambda: c.set(key, v)))  # noqa: B023
            log.append(outcome(lambda: c.get(key) is v))  # noqa: B023
            log.append(outcome(lambda: key in c))  # noqa: B023
            log.append(outcome(lambda: f(key)))  # noqa: B023
            log.append(outcome(lambda: f(key, k=key)))  # noqa: B023
            log.append(state(c))
        for key in keys[::2]:
            log.append(outcome(lambda: c.pop(key, "gone") is not None))  # noqa: B023
        log.append(tuple(f.cache_info()))
        log.append(state(c))
        assert_all_typed(log, TypeError, ValueError)
        check_consistent(c)
        drain(c)
        logs.append(log)
    assert logs[0] == logs[1]


class MKey:
    """A memoize argument whose ``__hash__`` raises when told to (all collide)."""

    hash_raises = False

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        if MKey.hash_raises:
            raise Boom("hash")
        return 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MKey) and other.n == self.n


@DIFF_SETTINGS
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["call", "call-kw", "hash", "calm", "tick", "reading"]),
            st.integers(0, 3),
            st.sampled_from([1000.0, 1e9, math.nan, "later", None, -math.inf]),
        ),
        max_size=20,
    ),
    maxsize=st.sampled_from([None, 0, 1, 2, 2**40]),
    typed=st.booleans(),
)
def test_twins_agree_on_hostile_memoize_calls(
    steps: list[tuple[str, int, Any]], maxsize: int | None, typed: bool
) -> None:
    """memoize with arguments whose hash raises, a timer returning garbage, a function
    that raises on some inputs: the same outcomes and the same cache_info in both
    twins; a failed call caches nothing.

    (An ``__eq__`` that raises is not compared across the twins: whether a lookup
    meets it depends on where colliding keys sit in each hash table, as for ``dict``.
    The hostile machine below holds each twin to the contract for it.)"""
    logs = []
    args = [MKey(i) for i in range(4)]
    for impl in both():
        clock = Clock()
        MKey.hash_raises = False

        def fn(x: Any, k: int = 0) -> Any:
            if x.n == 3:
                raise Boom("function")
            return (x.n, k)

        f = impl.memoize(maxsize, ttl=5, typed=typed, timer=clock)(fn)
        log: list[Any] = []
        for what, n, reading in steps:
            if what == "call":
                log.append(outcome(lambda: f(args[n])))  # noqa: B023
            elif what == "call-kw":
                log.append(outcome(lambda: f(args[n], k=n)))  # noqa: B023
            elif what == "hash":
                MKey.hash_raises = True
            elif what == "calm":
                MKey.hash_raises = False
            elif what == "tick":
                clock.now = 1000.0 + 3.0 * n
            else:
                clock.now = reading
            log.append(tuple(f.cache_info()))
        MKey.hash_raises = False
        assert_all_typed(log, TypeError, ValueError, Boom)
        logs.append(log)
    assert logs[0] == logs[1]


# -- the hostile state machine ----------------------------------------------------------
#
# User code the cache runs misbehaves on demand: keys whose __hash__/__eq__ raise or use
# the cache, weighers returning garbage, timers going backwards or returning NaN or a
# str, values whose __del__ uses the cache. Switches (class H) turn each on and off; the
# invariant check runs with everything calm. An operation may raise only a typed error
# or the Boom the user code raised; afterwards the cache must be consistent.


class H:
    """The switches hostile user code reads (module state: one machine at a time)."""

    cache: Any = None
    calm = False  # the invariant check is running: everything behaves
    hash_raises = False  # odd-numbered HKeys raise from __hash__
    eq_raises = False  # odd-numbered HKeys raise from __eq__
    reenter: str | None = None  # what key/weigher/timer/__del__ code does to the cache
    weigher = "ok"
    timer = "ok"
    now = 1000.0
    budget = 0  # re-entrant calls left in this step (bounds chains of them)
    stray: list[str] = []  # untyped errors raised inside re-entrant calls


TYPED: tuple[type[BaseException], ...] = (NovaCacheError, TypeError, ValueError, KeyError, Boom)


def reenter() -> None:
    """Use the cache from inside user code it runs, as the switches say."""
    c = H.cache
    if H.calm or H.reenter is None or H.budget <= 0 or c is None:
        return
    H.budget -= 1
    try:
        if H.reenter == "set":
            c.set(("re", H.budget % 3), H.budget)
        elif H.reenter == "pop":
            keys = c.keys()
            if keys:
                c.pop(keys[0], None)
        elif H.reenter == "clear":
            c.clear()
        elif H.reenter == "expire":
            c.expire()
        else:
            c.get_many(c.keys())
            _ = len(c), c.stats, c.currbytes
    except TYPED:
        pass
    except Exception as exc:  # reported by the machine's invariant
        H.stray.append(repr(exc))


class HKey:
    """A key; odd ones raise from ``__hash__``/``__eq__`` when switched on, and every
    one may use the cache from inside them. ``h`` makes keys collide on purpose."""

    __slots__ = ("h", "n")

    def __init__(self, n: int, h: int) -> None:
        self.n = n
        self.h = h

    def __hash__(self) -> int:
        if not H.calm:
            if H.hash_raises and self.n % 2:
                raise Boom("hash")
            reenter()
        return self.h

    def __eq__(self, other: object) -> bool:
        if not H.calm:
            if H.eq_raises and self.n % 2:
                raise Boom("eq")
            reenter()
        return isinstance(other, HKey) and other.n == self.n

    def __repr__(self) -> str:
        return f"HKey({self.n}, {self.h})"


class DelValue:
    """A value whose ``__del__`` uses the cache (when switched on)."""

    def __del__(self) -> None:
        reenter()


def hweigher(key: Any, value: Any) -> Any:
    """A weigher that misbehaves as ``H.weigher`` says."""
    mode = "ok" if H.calm else H.weigher
    if mode == "reenter":
        reenter()
        return 1
    if mode == "raise":
        raise Boom("weigher")
    return {
        "ok": 1,
        "zero": 0,
        "negative": -1,
        "huge": 2**64,
        "max": SSIZE_MAX,
        "float": 1.5,
        "str": "1",
        "bool": True,
        "index": IndexOnly(2),
        "none": None,
    }[mode]


def htimer() -> Any:
    """A timer that misbehaves as ``H.timer`` says."""
    mode = "ok" if H.calm else H.timer
    if mode == "back":
        H.now -= 3.0
    elif mode == "reenter":
        reenter()
    elif mode == "raise":
        raise Boom("timer")
    return {"nan": math.nan, "str": "soon", "inf": math.inf, "none": None}.get(mode, H.now)


HKEYS = st.builds(HKey, st.integers(0, 7), st.integers(0, 2)) | st.sampled_from(
    ["\ud800", "\x00", 0, -(2**63), (1, "\x1b"), math.nan]
)
HVALUES = st.sampled_from(["int", "del", "self", "big"])
HTTLS = st.sampled_from([None, 0.5, 2, 10, math.inf])


def hvalue(kind: str) -> Any:
    if kind == "del":
        return DelValue()
    if kind == "self":
        v: list[Any] = []
        v.append(v)
        return v
    if kind == "big":
        return bytes(100_000)
    return 7


def hostile_machine(impl: ModuleType) -> type[Any]:
    """A state machine that drives one cache of ``impl`` with hostile user code."""
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

    class HostileMachine(RuleBasedStateMachine):
        cache: Any

        @initialize(
            maxsize=st.sampled_from([None, 1, 3, 6]),
            maxbytes=st.sampled_from([None, 3, SSIZE_MAX]),
            weigh=st.booleans(),
            ttl=st.sampled_from([None, 1, 5]),
            timed=st.booleans(),
        )
        def build(
            self, maxsize: int | None, maxbytes: int | None, weigh: bool, ttl: Any, timed: bool
        ) -> None:
            H.calm, H.hash_raises, H.eq_raises, H.reenter = False, False, False, None
            H.weigher, H.timer, H.now, H.stray = "ok", "ok", 1000.0, []
            self.cache = impl.LocalCache(
                maxsize,
                maxbytes=maxbytes if weigh else None,
                weigher=hweigher if weigh else None,
                ttl=ttl,
                timer=htimer if timed else None,
            )
            H.cache = self.cache
            self.memo = impl.memoize(2, ttl=ttl, timer=htimer if timed else None)(
                lambda *args, **kwargs: (len(args), len(H.cache))
            )

        def do(self, fn: Callable[[], Any]) -> None:
            H.budget = 6
            try:
                fn()
            except TYPED:
                pass

        # -- switches ------------------------------------------------------------------

        @rule(on=st.booleans())
        def switch_hash(self, on: bool) -> None:
            H.hash_raises = on

        @rule(on=st.booleans())
        def switch_eq(self, on: bool) -> None:
            H.eq_raises = on

        @rule(what=st.sampled_from([None, None, "set", "pop", "clear", "expire", "read"]))
        def switch_reenter(self, what: str | None) -> None:
            H.reenter = what

        @rule(
            mode=st.sampled_from(
                [
                    "ok",
                    "ok",
                    "zero",
                    "negative",
                    "huge",
                    "max",
                    "float",
                    "str",
                    "bool",
                    "index",
                    "none",
                    "raise",
                    "reenter",
                ]
            )
        )
        def switch_weigher(self, mode: str) -> None:
            H.weigher = mode

        @rule(
            mode=st.sampled_from(
                ["ok", "ok", "back", "nan", "str", "inf", "none", "raise", "reenter"]
            )
        )
        def switch_timer(self, mode: str) -> None:
            H.timer = mode

        @rule(dt=st.sampled_from([0.25, 1.0, 4.0, 100.0]))
        def tick(self, dt: float) -> None:
            H.now += dt

        # -- operations ----------------------------------------------------------------

        @rule(key=HKEYS, kind=HVALUES, ttl=HTTLS)
        def set(self, key: Any, kind: str, ttl: Any) -> None:
            self.do(lambda: self.cache.set(key, hvalue(kind), ttl=ttl))

        @rule(key=HKEYS, kind=HVALUES)
        def setitem(self, key: Any, kind: str) -> None:
            self.do(lambda: self.cache.__setitem__(key, hvalue(kind)))

        @rule(
            key=HKEYS,
            op=st.sampled_from(["get", "getitem", "in", "peek", "pop", "del", "setdefault"]),
        )
        def lookup(self, key: Any, op: str) -> None:
            c = self.cache
            fn = {
                "get": lambda: c.get(key),
                "getitem": lambda: c[key],
                "in": lambda: key in c,
                "peek": lambda: c.peek(key),
                "pop": lambda: c.pop(key),
                "del": lambda: c.__delitem__(key),
                "setdefault": lambda: c.setdefault(key, 1),
            }[op]
            self.do(fn)

        @rule(
            keys=st.lists(HKEYS, max_size=4),
            op=st.sampled_from(["get_many", "set_many", "delete_many", "update"]),
        )
        def batch(self, keys: list[Any], op: str) -> None:
            c = self.cache
            fn = {
                "get_many": lambda: c.get_many(keys),
                "set_many": lambda: c.set_many([(k, 1) for k in keys], ttl=3),
                "delete_many": lambda: c.delete_many(keys),
                "update": lambda: c.update([(k, 2) for k in keys]),
            }[op]
            self.do(fn)

        @rule(args=st.lists(HKEYS, max_size=3), kw=st.booleans())
        def memoized(self, args: list[Any], kw: bool) -> None:
            self.do(lambda: self.memo(*args, **({"k": args[0]} if kw and args else {})))

        @rule(
            op=st.sampled_from(
                [
                    "popitem",
                    "expire",
                    "items",
                    "keys",
                    "values",
                    "iter",
                    "len",
                    "stats",
                    "repr",
                    "reduce",
                    "clear",
                ]
            )
        )
        def whole(self, op: str) -> None:
            import pickle

            c = self.cache
            fn = {
                "popitem": c.popitem,
                "expire": c.expire,
                "items": c.items,
                "keys": c.keys,
                "values": c.values,
                "iter": lambda: list(c),
                "len": lambda: len(c),
                "stats": lambda: c.stats,
                "repr": lambda: repr(c),
                "reduce": lambda: pickle.loads(pickle.dumps(c)),
                "clear": c.clear,
            }[op]
            self.do(fn)

        # -- the contract --------------------------------------------------------------

        @invariant()
        def consistent(self) -> None:
            H.calm = True
            try:
                assert not H.stray, H.stray
                check_consistent(self.cache)
                for k, v in self.cache.items():
                    assert self.cache.peek(k, Boom) is v
                info = self.memo.cache_info()
                assert 0 <= info.currsize <= 2
                assert min(info.hits, info.misses) >= 0
            finally:
                H.calm = False

        def teardown(self) -> None:
            H.calm = True
            try:
                if getattr(self, "cache", None) is not None:
                    check_consistent(self.cache)
                    drain(self.cache)
            finally:
                H.cache = None
                H.calm = False

    return HostileMachine


def run_hostile(name: str, examples: int) -> None:
    """Run the hostile machine on implementation ``name`` ("compiled" or "pure")."""
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        hostile_machine(load_impl(name)),
        settings=settings(
            max_examples=examples,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_hostile_user_code_pure() -> None:
    run_hostile("pure", 150)


def test_hostile_user_code_compiled() -> None:
    """In a child process: a crash of the compiled core fails this test only."""
    load_impl("compiled")  # skip (or fail under CI) where it is not built
    run_isolated(
        """
        import test_hostile_local as t
        t.run_hostile("compiled", 150)
        """,
        timeout=600,
    ).check()
