"""Hostile input for the drop-in, side by side with cachetools 8.0.2 (hypothesis).

The contract: for the same input, ``novacache.cachetools`` does what cachetools does:
the same results, or exactly the exception type cachetools raises (it is a drop-in);
and it never crashes. Odd keys (surrogates, NUL and control characters, 20 kB strings,
bytes, huge ints, NaN, colliding hashes, a failing ``__hash__`` or ``__eq__``,
unhashable ones), odd values, absurd sizes from ``getsizeof``, odd ``maxsize``,
``ttl``, ``ttu`` and timers (readings that change kind: huge ints, infinities, NaN,
fractions, decimals, strings, a timer that raises), through every class, the
decorators and the key functions.

Each property runs in a child process (``tests/_isolate.py``), once per implementation
(``NOVACACHE_CACHETOOLS_IMPL``): a crash fails that test, not the session.
"""

from __future__ import annotations

import copy
import math
import os
import pickle
import sys
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _isolate import run_isolated

IMPLEMENTATIONS = ("auto", "pure")

# -- hostile objects (module level: pickles and the child process find them) ----------


class Colliding:
    """Keys that all hash alike: every lookup walks past the others."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return 42

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Colliding):
            return self.n == other.n
        return NotImplemented

    def __repr__(self) -> str:
        return f"Colliding({self.n})"


class BadHash:
    def __hash__(self) -> int:
        raise ArithmeticError("no hash")

    def __repr__(self) -> str:
        return "BadHash()"


class BadEq:
    """Hashes as Colliding, and fails when compared with one."""

    def __hash__(self) -> int:
        return 42

    def __eq__(self, other: object) -> bool:
        raise LookupError("no eq")

    def __repr__(self) -> str:
        return "BadEq()"


_RAISE = "<raise>"


class SequenceTimer:
    """A timer returning its readings in turn (``_RAISE``: it raises); counts calls."""

    def __init__(self, readings: list[Any]) -> None:
        self.readings = readings
        self.calls = 0

    def __call__(self) -> Any:
        reading = self.readings[self.calls % len(self.readings)]
        self.calls += 1
        if reading is _RAISE:
            raise RuntimeError("timer failed")
        return reading


def size_neg(v: Any) -> Any:
    return -1


def size_zero(v: Any) -> Any:
    return 0


def size_two(v: Any) -> Any:
    return 2


def size_huge(v: Any) -> Any:
    return 10**30


def size_nan(v: Any) -> Any:
    return math.nan


def size_inf(v: Any) -> Any:
    return math.inf


def size_half(v: Any) -> Any:
    return 0.5


def size_str(v: Any) -> Any:
    return "1"


def size_none(v: Any) -> Any:
    return None


def size_raise(v: Any) -> Any:
    raise LookupError("no size")


def size_third(v: Any) -> Any:
    return Fraction(1, 3)


def size_true(v: Any) -> Any:
    return True


GETSIZEOFS = [
    size_neg,
    size_zero,
    size_two,
    size_huge,
    size_nan,
    size_inf,
    size_half,
    size_str,
    size_none,
    size_raise,
    size_third,
    size_true,
    len,
]


def ttu_plus(key: Any, value: Any, now: Any) -> Any:
    return now + 2


def ttu_dead(key: Any, value: Any, now: Any) -> Any:
    return now


def ttu_past(key: Any, value: Any, now: Any) -> Any:
    return now - 1


def ttu_str(key: Any, value: Any, now: Any) -> Any:
    return "later"


def ttu_raise(key: Any, value: Any, now: Any) -> Any:
    raise LookupError("no ttu")


def ttu_nan(key: Any, value: Any, now: Any) -> Any:
    return math.nan


TTUS = [ttu_plus, ttu_dead, ttu_past, ttu_str, ttu_raise, ttu_nan]


def choose_first(seq: Any) -> Any:
    return seq[0]


def choose_out_of_range(seq: Any) -> Any:
    return seq[len(seq)]


CHOICES = [choose_first, min, choose_out_of_range]


def echo(*args: Any, **kwargs: Any) -> Any:
    return (args, sorted(kwargs.items()))


# -- strategies -----------------------------------------------------------------------

_ODD_CHARS = "\x00\x01\x1b\x7f\x85\u2028\ufeff\U0010ffff\ud800\udfff"

text_keys = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=8),  # surrogates too
    st.text(st.sampled_from(_ODD_CHARS), max_size=6),
    st.builds(lambda c, n: c * n, st.sampled_from("a\x00\ud800é"), st.integers(20000, 20480)),
)
hashable_keys = st.one_of(
    text_keys,
    st.binary(max_size=8),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.tuples(st.integers(-2, 2), st.text(max_size=2)),
    st.frozensets(st.integers(0, 3), max_size=3),
    st.builds(Colliding, st.integers(0, 3)),
    st.just(Decimal("1.5")),
    st.just(Fraction(3, 2)),
)
keys = st.one_of(
    hashable_keys,
    st.builds(BadHash),
    st.builds(BadEq),
    st.builds(list, st.lists(st.integers(), max_size=2)),
    st.builds(dict),
    st.builds(set),
)
values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=4),
    st.none(),
    st.binary(max_size=4),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=3),
    st.builds(lambda n: "v" * n, st.integers(20000, 20480)),
)
_good_maxsizes = st.integers(1, 6)
maxsizes = st.one_of(
    _good_maxsizes,
    _good_maxsizes,
    _good_maxsizes,
    st.integers(-3, 6),
    st.sampled_from([2**31 - 2, 2**31, 2**63, 10**30]),
    st.floats(min_value=-2, max_value=8),
    st.sampled_from([math.inf, -0.0, Fraction(5, 2), Decimal("2.5"), True, False, None, "3"]),
)
ttls = st.one_of(
    st.integers(1, 20),
    st.integers(1, 20),
    st.integers(-5, 20),
    st.floats(min_value=-5, max_value=50),
    st.sampled_from(
        [math.inf, -math.inf, math.nan, 2**52 + 1, 2**53, 2**60, Fraction(1, 2), Decimal(1)]
    ),
    st.sampled_from(["1", None, timedelta(seconds=1)]),
)
_good_readings = st.one_of(st.integers(-5, 100), st.floats(-5, 100))
readings = st.one_of(
    _good_readings,
    _good_readings,
    _good_readings,
    _good_readings,
    st.integers(2**53 - 3, 2**53 + 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [2**60, -(2**60), math.inf, math.nan, Fraction(3, 2), Decimal("1.5"), True, "noon"]
    ),
    st.sampled_from([None, _RAISE]),
)

_CLASSES = ("Cache", "LRUCache", "FIFOCache", "LFUCache", "RRCache", "TTLCache", "TLRUCache")


@st.composite
def recipes(draw: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """How to make a cache (the timer is made afresh for each package)."""
    name = draw(st.sampled_from(_CLASSES))
    # Mostly arguments that construct (three in four), so that operations run.
    args: tuple[Any, ...] = (draw(maxsizes if draw(st.integers(0, 3)) == 0 else _good_maxsizes),)
    kwargs: dict[str, Any] = {}
    if draw(st.integers(0, 3)) == 0:
        kwargs["getsizeof"] = draw(st.sampled_from(GETSIZEOFS))
    if name == "RRCache":
        kwargs["choice"] = draw(st.sampled_from(CHOICES))
    if name in ("TTLCache", "TLRUCache"):
        if name == "TTLCache":
            args += (draw(ttls if draw(st.integers(0, 3)) == 0 else st.integers(1, 20)),)
        else:
            args += (draw(st.sampled_from(TTUS)),)
        if draw(st.integers(0, 4)):
            kwargs["timer"] = ("timer", draw(st.lists(readings, min_size=1, max_size=5)))
    return name, args, kwargs


@st.composite
def operations(draw: Any) -> list[tuple[Any, ...]]:
    kinds = st.sampled_from(
        [
            "set",
            "set",
            "getitem",
            "get",
            "contains",
            "del",
            "pop",
            "pop_default",
            "setdefault",
            "popitem",
            "len",
            "items",
            "repr",
            "clear",
            "currsize",
            "maxsize",
            "expire",
            "expire_at",
            "update",
            "copy",
            "pickle",
            "call",
            "iterate_and_set",
            "tick",
        ]
    )
    ops = []
    for kind in draw(st.lists(kinds, max_size=24)):
        if kind in ("set", "setdefault"):
            ops.append((kind, draw(keys), draw(values)))
        elif kind in ("getitem", "get", "contains", "del", "pop", "pop_default"):
            ops.append((kind, draw(keys)))
        elif kind == "expire_at":
            ops.append((kind, draw(readings)))
        elif kind == "update":
            ops.append((kind, draw(st.lists(st.tuples(hashable_keys, values), max_size=3))))
        elif kind == "call":
            ops.append((kind, draw(st.lists(hashable_keys, max_size=2)), draw(st.booleans())))
        else:
            ops.append((kind,))
    return ops


# -- running both packages ---------------------------------------------------------------


def _norm(value: Any) -> Any:
    """A result, comparable across the packages (NaN equal to NaN; caches by repr)."""
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_norm(item) for item in value])
    if value is None or isinstance(value, (bool, int, str, bytes, float)):
        return value
    return repr(value)


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        return ("ok", _norm(fn()))
    except Exception as exc:
        return ("raises", type(exc).__name__)


def _make(ct: Any, recipe: Any) -> tuple[Any, Any]:
    name, args, kwargs = recipe
    timer = None
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("timer"), tuple):
        timer = kwargs["timer"] = SequenceTimer(list(kwargs["timer"][1]))
    return getattr(ct, name)(*args, **kwargs), timer


def _apply(ct: Any, cache: Any, op: tuple[Any, ...]) -> Any:
    kind = op[0]
    if kind == "set":
        cache[op[1]] = op[2]
    elif kind == "getitem":
        return cache[op[1]]
    elif kind == "get":
        return cache.get(op[1])
    elif kind == "contains":
        return op[1] in cache
    elif kind == "del":
        del cache[op[1]]
    elif kind == "pop":
        return cache.pop(op[1])
    elif kind == "pop_default":
        return cache.pop(op[1], "default")
    elif kind == "setdefault":
        return cache.setdefault(op[1], op[2])
    elif kind == "popitem":
        return cache.popitem()
    elif kind == "len":
        return len(cache)
    elif kind == "items":
        return list(cache.items())
    elif kind == "repr":
        return repr(cache)
    elif kind == "clear":
        cache.clear()
    elif kind == "currsize":
        return cache.currsize
    elif kind == "maxsize":
        return cache.maxsize
    elif kind == "expire":
        return cache.expire()
    elif kind == "expire_at":
        return cache.expire(op[1])
    elif kind == "update":
        cache.update(op[1])
    elif kind == "call":
        wrapped = ct.cached(cache, info=op[2])(echo)
        result = wrapped(*op[1])
        return (result, wrapped.cache_info()) if op[2] else result
    elif kind == "iterate_and_set":
        seen = []
        for key in cache:
            seen.append(key)
            cache["added during iteration"] = 1
        return seen
    elif kind == "tick":
        timer = getattr(cache, "timer", None)
        if hasattr(timer, "readings"):  # a SequenceTimer (not the real clock)
            return timer()
    return None


def _run(ct: Any, recipe: Any, ops: list[tuple[Any, ...]]) -> list[Any]:
    """What ``ct`` does with the recipe and the operations, step by step."""
    made = _outcome(lambda: type(_make(ct, recipe)[0]).__name__)
    if made[0] == "raises":
        return [made]
    cache, _ = _make(ct, recipe)
    seen: list[Any] = []
    for op in ops:
        if op[0] in ("copy", "pickle"):
            before = cache
            try:
                cache = copy.copy(cache) if op[0] == "copy" else pickle.loads(pickle.dumps(cache))
            except Exception as exc:
                seen.append(("raises", type(exc).__name__))
                cache = before
            else:
                seen.append(("ok", type(cache).__name__))
            continue
        if op[0] in ("expire", "expire_at") and not hasattr(cache, "expire"):
            continue
        seen.append(_outcome(lambda op=op, cache=cache: _apply(ct, cache, op)))
    seen.append(_outcome(lambda: list(cache.items())))
    seen.append(_outcome(lambda: (len(cache), cache.currsize, cache.maxsize)))
    # How often the timer was called (through the cache's view of it).
    seen.append(getattr(getattr(cache, "timer", None), "calls", None))
    return seen


def _packages() -> tuple[Any, Any]:
    import cachetools.func
    import cachetools.keys

    import cachetools
    import novacache.cachetools as ours
    import novacache.cachetools.func
    import novacache.cachetools.keys  # noqa: F401

    return cachetools, ours


# More examples for a long hunt: CT_HOSTILE_EXAMPLES=20000.
_SETTINGS = settings(
    max_examples=int(os.environ.get("CT_HOSTILE_EXAMPLES", "600")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@_SETTINGS
@given(recipe=recipes(), ops=operations())
def check_caches(recipe: Any, ops: list[tuple[Any, ...]]) -> None:
    theirs, ours = _packages()
    expected = _run(theirs, recipe, ops)
    got = _run(ours, recipe, ops)
    assert got == expected, (recipe, ops, expected, got)


@st.composite
def mutation_plans(draw: Any) -> list[tuple[Any, ...]]:
    """Long runs of writes, deletes, copies and pickles over few keys, with iterations
    that write or delete as they go: what a dict's iterator does then depends on where
    the dict's table puts each key (and when it rebuilds it), which the core lays out
    as CPython does."""
    small = st.integers(0, 9)
    step = st.one_of(
        st.tuples(st.just("set"), small),
        st.tuples(st.just("set"), small),
        st.tuples(st.just("del"), small),
        st.tuples(st.just("get"), small),
        st.tuples(st.sampled_from(["copy", "pickle", "clear"])),
        st.tuples(
            st.just("iterate"), st.lists(st.tuples(st.sampled_from("sd"), small), max_size=4)
        ),
    )
    return draw(st.lists(step, max_size=60))


def _iterate(cache: Any, plan: list[tuple[str, int]]) -> Any:
    seen = []
    it = iter(cache)
    for i in range(len(plan) + 12):
        try:
            key = next(it)
        except StopIteration:
            seen.append("stop")
            break
        except RuntimeError as exc:
            seen.append(str(exc))
            continue  # a dict's iterator keeps raising (size) or stops (keys)
        seen.append(key)
        if i < len(plan):
            kind, k = plan[i]
            if kind == "s":
                cache[100 + k] = k
            else:
                cache.pop(k, None)
    return seen


@_SETTINGS
@given(
    name=st.sampled_from(["LRUCache", "FIFOCache"]),
    maxsize=st.integers(1, 12),
    plan=mutation_plans(),
)
def check_iteration_under_mutation(name: str, maxsize: int, plan: list[tuple[Any, ...]]) -> None:
    theirs, ours = _packages()

    def run(ct: Any) -> list[Any]:
        cache = getattr(ct, name)(maxsize)
        seen: list[Any] = []
        for step in plan:
            if step[0] == "set":
                cache[step[1]] = step[1]
            elif step[0] == "del":
                seen.append(cache.pop(step[1], None))
            elif step[0] == "get":
                seen.append(cache.get(step[1]))
            elif step[0] == "copy":
                cache = copy.copy(cache)
            elif step[0] == "pickle":
                cache = pickle.loads(pickle.dumps(cache))
            elif step[0] == "clear":
                cache.clear()
            else:
                seen.append(_iterate(cache, step[1]))
        seen.append(list(cache.items()))
        return seen

    expected = run(theirs)
    got = run(ours)
    assert got == expected, (name, maxsize, plan, expected, got)


@_SETTINGS
@given(
    maxsize=st.one_of(maxsizes, st.none()),
    typed=st.sampled_from([False, True, 1, "yes", None]),
    ttl=ttls,
    policy=st.sampled_from(["fifo_cache", "lfu_cache", "lru_cache", "rr_cache", "ttl_cache"]),
    calls=st.lists(st.tuples(st.lists(hashable_keys, max_size=2), st.booleans()), max_size=6),
)
def check_func_decorators(maxsize: Any, typed: Any, ttl: Any, policy: str, calls: Any) -> None:
    theirs, ours = _packages()

    def run(ct: Any) -> list[Any]:
        kwargs: dict[str, Any] = {"maxsize": maxsize, "typed": typed}
        if policy == "ttl_cache":
            kwargs.update(ttl=ttl, timer=SequenceTimer([1, 2, 3]))
        if policy == "rr_cache":
            kwargs.update(choice=choose_first)  # (the default is random)
        made = _outcome(lambda: getattr(ct.func, policy)(**kwargs)(echo))
        if made[0] == "raises":
            return [made]
        wrapped = getattr(ct.func, policy)(**kwargs)(echo)
        seen = [_outcome(lambda a=a, k=k: wrapped(*a, **({"k": 1} if k else {}))) for a, k in calls]
        seen.append(_outcome(wrapped.cache_info))
        seen.append(_outcome(wrapped.cache_parameters))
        return seen

    expected = run(theirs)
    got = run(ours)
    assert got == expected, (expected, got)


@_SETTINGS
@given(
    args=st.lists(keys, max_size=3),
    names=st.lists(text_keys, max_size=3),
    function=st.sampled_from(["hashkey", "methodkey", "typedkey", "typedmethodkey"]),
)
def check_keys(args: list[Any], names: list[str], function: str) -> None:
    theirs, ours = _packages()
    kwargs = {name: index for index, name in enumerate(names)}

    def run(ct: Any) -> Any:
        def make() -> Any:
            key = getattr(ct.keys, function)(*args, **kwargs)
            marker = ct.keys._HashedTuple
            plain = tuple("<kwmark>" if item is marker else item for item in key)
            return (plain, hash(key) == hash(getattr(ct.keys, function)(*args, **kwargs)))

        return _outcome(make)

    assert run(ours) == run(theirs)


@_SETTINGS
@given(
    cache=st.sampled_from([None, 5, "x", {}]),
    key=st.sampled_from([None, 5, len]),
    lock=st.sampled_from([None, 5]),
    condition=st.sampled_from([None, 5]),
    info=st.sampled_from([False, True, 0, "yes"]),
)
def check_decorator_arguments(cache: Any, key: Any, lock: Any, condition: Any, info: Any) -> None:
    theirs, ours = _packages()

    def run(ct: Any) -> list[Any]:
        seen = []
        for decorator in (ct.cached, ct.cachedmethod):
            kwargs = {"lock": lock, "condition": condition, "info": info}
            if key is not None:
                kwargs["key"] = key
            made = _outcome(lambda d=decorator, kw=kwargs: d(cache, **kw)(echo))
            seen.append(made)
            if made[0] == "ok" and decorator is ct.cached:
                wrapped = decorator(cache, **kwargs)(echo)
                seen.append(_outcome(lambda w=wrapped: w(1)))
        return seen

    assert run(ours) == run(theirs)


# -- the tests: each property in a child process, per implementation --------------------

PROPERTIES = (
    "check_caches",
    "check_iteration_under_mutation",
    "check_func_decorators",
    "check_keys",
    "check_decorator_arguments",
)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("prop", PROPERTIES)
def test_hostile_input_behaves_as_cachetools(prop: str, impl: str) -> None:
    code = f"import test_ct_hostile as t\nt.{prop}()\n"
    result = run_isolated(code, env={"NOVACACHE_CACHETOOLS_IMPL": impl}, timeout=900)
    result.check()


def test_the_properties_run_here_too() -> None:
    """The module's own import of both packages, for a quick in-process smoke (the
    children do the real runs)."""
    theirs, ours = _packages()
    assert theirs.__version__ == ours.__version__ == "8.0.2"
    assert sys.modules["test_ct_hostile"] is not None
