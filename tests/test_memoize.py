"""memoize: behaves like functools.lru_cache (same hits and misses for the same calls),
plus ttl with a fake timer."""

from __future__ import annotations

import functools
import math
import pickle
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from _helpers import FakeTimer
from novacache import CacheInfo
from novacache.errors import ConfigurationError


def twins(
    impl: ModuleType, func: Callable[..., Any], maxsize: int | None = 128, typed: bool = False
) -> tuple[Any, Any]:
    """The same function wrapped by memoize and by functools.lru_cache."""
    return (
        impl.memoize(maxsize, typed=typed)(func),
        functools.lru_cache(maxsize, typed=typed)(func),
    )


def assert_same(ours: Any, ref: Any) -> None:
    info = ours.cache_info()
    assert isinstance(info, CacheInfo)
    assert tuple(info) == tuple(ref.cache_info())


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1,), {}),
    ((1,), {}),
    ((2,), {}),
    ((1.0,), {}),  # functools: int and float with one arg are different keys (fast path)
    ((1, 2), {}),
    ((1.0, 2), {}),  # equal tuples: same key when untyped
    ((1,), {"b": 2}),
    ((1,), {"b": 2}),
    ((), {"a": 1, "b": 2}),
    ((), {"b": 2, "a": 1}),  # keyword order matters
    (("x",), {}),
    (("x",), {}),
    ((True,), {}),  # bool is not in the fast types
    ((1,), {}),
    (((1, 2),), {}),
    (((1, 2),), {}),
    ((None,), {}),
    ((None,), {}),
    ((3,), {}),
    ((4,), {}),
    ((5,), {}),
    ((2,), {}),
    ((1, 2), {}),
]


def _f(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return (args, sorted(kwargs.items()))


@pytest.mark.parametrize("typed", [False, True])
@pytest.mark.parametrize("maxsize", [None, 0, 1, 2, 3, 128, -1])
def test_same_hits_and_misses_as_lru_cache(
    impl: ModuleType, maxsize: int | None, typed: bool
) -> None:
    ours, ref = twins(impl, _f, maxsize, typed)
    for args, kwargs in CALLS:
        assert ours(*args, **kwargs) == ref(*args, **kwargs)
        assert_same(ours, ref)
    assert ours.cache_parameters() == {**ref.cache_parameters(), "ttl": None}


def test_bare_and_called_decorator(impl: ModuleType) -> None:
    @impl.memoize
    def a(x: int) -> int:
        return x

    @impl.memoize()
    def b(x: int) -> int:
        return x

    @impl.memoize(maxsize=3)
    def c(x: int) -> int:
        return x

    @impl.memoize(None, typed=True)
    def d(x: int) -> int:
        return x

    for f in (a, b, c, d):
        assert isinstance(f, impl.Memoized)
        assert f(1) == 1
        assert f(1) == 1
        assert f.cache_info().hits == 1
    assert a.cache_parameters() == {"maxsize": 128, "typed": False, "ttl": None}
    assert c.cache_info().maxsize == 3
    assert d.cache_parameters() == {"maxsize": None, "typed": True, "ttl": None}


def test_bad_arguments(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.memoize("nope")
    with pytest.raises(ConfigurationError):
        impl.memoize(ttl=0)
    with pytest.raises(ConfigurationError):
        impl.memoize(10, ttl=-1)


def test_update_wrapper_attributes(impl: ModuleType) -> None:
    def original(x: int, y: str = "a") -> str:
        """Docstring."""
        return y * x

    original.custom = "attr"  # type: ignore[attr-defined]
    m = impl.memoize(original)
    r = functools.lru_cache(original)
    for name in ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__"):
        assert getattr(m, name) == getattr(r, name) == getattr(original, name)
    assert m.__wrapped__ is original
    assert m.custom == "attr"
    assert m(2) == "aa"


def test_exceptions_not_cached(impl: ModuleType) -> None:
    calls = []

    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise ValueError("first call fails")
        return x * 2

    ours = impl.memoize(flaky)
    with pytest.raises(ValueError, match="first call fails"):
        ours(1)
    assert ours(1) == 2
    assert ours(1) == 2
    assert calls == [1, 1]
    assert tuple(ours.cache_info()) == (1, 2, 128, 1)


def test_recursion(impl: ModuleType) -> None:
    @impl.memoize(None)
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    @functools.lru_cache(None)
    def ref(n: int) -> int:
        return n if n < 2 else ref(n - 1) + ref(n - 2)

    assert fib(80) == ref(80) == 23416728348467685
    assert tuple(fib.cache_info()) == tuple(ref.cache_info())
    assert fib(300) == ref(300)
    assert tuple(fib.cache_info()) == tuple(ref.cache_info())


def test_methods_via_get(impl: ModuleType) -> None:
    class Thing:
        def __init__(self, n: int) -> None:
            self.n = n
            self.calls = 0

        @impl.memoize
        def times(self, k: int) -> int:
            self.calls += 1
            return self.n * k

        def __hash__(self) -> int:
            return self.n

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Thing) and other.n == self.n

    a, b = Thing(2), Thing(3)
    assert a.times(5) == 10
    assert a.times(5) == 10
    assert b.times(5) == 15
    assert a.calls == 1
    assert b.calls == 1
    assert Thing.times(a, 5) == 10  # through the class: unbound, same key
    assert isinstance(Thing.__dict__["times"], impl.Memoized)
    assert Thing.times.cache_info().hits == 2
    assert Thing.times.cache_info().misses == 2


def test_cache_clear_zeroes_counters(impl: ModuleType) -> None:
    ours, ref = twins(impl, _f, 2)
    for i in (1, 1, 2, 3):
        ours(i)
        ref(i)
    ours.cache_clear()
    ref.cache_clear()
    assert tuple(ours.cache_info()) == tuple(ref.cache_info()) == (0, 0, 2, 0)
    ours(1)
    assert tuple(ours.cache_info()) == (0, 1, 2, 1)


def test_cache_parameters_is_a_fresh_dict(impl: ModuleType) -> None:
    f = impl.memoize(maxsize=7, ttl=3.5, typed=True)(_f)
    params = f.cache_parameters()
    assert params == {"maxsize": 7, "typed": True, "ttl": 3.5}
    params["maxsize"] = 1
    assert f.cache_parameters()["maxsize"] == 7


def test_ttl_with_fake_timer(impl: ModuleType, timer: FakeTimer) -> None:
    calls = []

    @impl.memoize(ttl=10, timer=timer)
    def f(x: int) -> int:
        calls.append(x)
        return x

    f(1)
    timer.tick(9.5)
    f(1)
    assert calls == [1]
    timer.tick(0.5)
    f(1)
    assert calls == [1, 1]
    info = f.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, 1)
    timer.tick(math.inf)
    f(2)
    assert calls == [1, 1, 2]


def test_no_ttl_never_reads_the_clock(impl: ModuleType, timer: FakeTimer) -> None:
    f = impl.memoize(3, timer=timer)(_f)
    for i in range(10):
        f(i % 5)
    assert timer.calls == 0
    assert f.cache_info().currsize == 3


def test_unhashable_arguments_raise_typeerror(impl: ModuleType) -> None:
    ours, ref = twins(impl, _f)
    with pytest.raises(TypeError):
        ref([1])
    with pytest.raises(TypeError):
        ours([1])


def test_concurrent_calls(impl: ModuleType) -> None:
    f = impl.memoize(16)(lambda x: x * 2)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(2000):
                k = (i * seed) % 40
                assert f(k) == k * 2
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 3, 7, 11)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    info = f.cache_info()
    assert info.hits + info.misses == 8000
    assert info.currsize <= 16


def _square(x: int) -> int:
    return x * x


_PICKLE_TARGET: Any = None


def test_pickled_by_reference_like_functools(impl: ModuleType) -> None:
    global _PICKLE_TARGET
    f = impl.memoize(_square)
    f.__qualname__ = "_PICKLE_TARGET"
    f.__module__ = __name__
    _PICKLE_TARGET = f
    try:
        assert pickle.loads(pickle.dumps(f)) is f
    finally:
        _PICKLE_TARGET = None


def test_memoized_is_subscriptable_at_run_time(impl: ModuleType) -> None:
    assert impl.Memoized[[int], str].__origin__ is impl.Memoized
