"""Thread safety beyond cachetools: no ``lock=`` needed (novacache.cachetools only).

cachetools' classes are not thread-safe: under these bursts an eviction races a
deletion and ``__setitem__`` raises ``KeyError``, or ``currsize`` drifts from the
items. That failure is timing-dependent, so it is not asserted here; ours must never
fail.
"""

from __future__ import annotations

import gc
import math
import random
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ct_helpers import FakeTimer

import novacache.cachetools as nct

THREADS = 8
ROUNDS = 12
OPS = 150
KEYS = 40


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, to expose races."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


class SharedTimer(FakeTimer):
    """A fake timer that any thread may advance."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def tick(self, seconds: float = 1) -> None:
        with self._lock:
            self.now += seconds


def make(name: str, sized: bool, timer: SharedTimer) -> Any:
    kwargs: dict[str, Any] = {"getsizeof": lambda value: value[1]} if sized else {}
    maxsize = 24 if sized else 12
    if name == "TTLCache":
        return nct.TTLCache(maxsize, 5, timer=timer, **kwargs)
    if name == "TLRUCache":
        return nct.TLRUCache(maxsize, lambda key, _v, now: now + key % 7, timer=timer, **kwargs)
    if name == "RRCache":
        return nct.RRCache(maxsize, **kwargs)
    return getattr(nct, name)(maxsize, **kwargs)


def burst(worker: Callable[[random.Random], None]) -> list[BaseException]:
    """Run ``worker`` in THREADS threads, released together ROUNDS times."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(ROUNDS):
                barrier.wait(timeout=30)
                worker(rng)
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return errors


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("sized", [False, True], ids=["unsized", "sized"])
@pytest.mark.parametrize(
    "name", ["Cache", "FIFOCache", "LFUCache", "LRUCache", "RRCache", "TTLCache", "TLRUCache"]
)
def test_barrier_burst_without_lock(name: str, sized: bool) -> None:
    timer = SharedTimer()
    cache = make(name, sized, timer)

    def worker(rng: random.Random) -> None:
        for _ in range(OPS):
            key = rng.randrange(KEYS)
            value = (key, rng.randint(1, 3))
            op = rng.random()
            # These never raise on a consistent cache.
            if op < 0.35:
                cache[key] = value
            elif op < 0.5:
                cache.get(key)
            elif op < 0.6:
                cache.pop(key, None)
            elif op < 0.7:
                cache.setdefault(key, value)
            elif op < 0.75:
                _ = key in cache, len(cache), cache.currsize
            elif op < 0.78:
                timer.tick()
            # These raise KeyError when the key is absent (or expired): only then.
            elif op < 0.88:
                try:
                    cache[key]
                except KeyError:
                    pass
            elif op < 0.96:
                try:
                    del cache[key]
                except KeyError:
                    pass
            else:
                try:
                    cache.popitem()
                except KeyError:
                    pass

    errors = burst(worker)
    assert errors == []
    items = dict(cache.items())
    assert len(cache) == len(items) == len([key for key in cache])
    expected = sum(value[1] for value in items.values()) if sized else len(items)
    assert cache.currsize == expected
    assert cache.currsize <= cache.maxsize
    for _ in range(len(items)):
        cache.popitem()
    assert (len(cache), cache.currsize) == (0, 0)
    with pytest.raises(KeyError):
        cache.popitem()


@pytest.mark.usefixtures("fast_switching")
def test_barrier_burst_cached_without_lock() -> None:
    cache: nct.LRUCache[Any, Any] = nct.LRUCache(8)

    @nct.cached(cache)
    def compute(x: int) -> tuple[int, int]:
        return (x, x * x)

    def worker(rng: random.Random) -> None:
        for _ in range(OPS):
            x = rng.randrange(KEYS)
            assert compute(x) == (x, x * x)

    assert burst(worker) == []
    assert cache.currsize == len(cache) <= 8


# -- re-entrancy: callbacks into the cache from the same thread ---------------------


class Reentrant:
    """A value whose destruction writes to and reads from the cache holding it."""

    def __init__(self, cache: Any, key: int) -> None:
        self.cache = cache
        self.key = key

    def __del__(self) -> None:
        self.cache[1000 + self.key % 3] = "from __del__"
        self.cache.get(self.key)
        len(self.cache)


@pytest.mark.parametrize(
    "name", ["Cache", "FIFOCache", "LFUCache", "LRUCache", "RRCache", "TTLCache", "TLRUCache"]
)
def test_released_values_see_a_consistent_cache(name: str) -> None:
    timer = SharedTimer()
    cache = make(name, False, timer)
    gc.disable()  # destruction happens where the last reference goes
    try:
        for key in range(40):
            cache[key] = Reentrant(cache, key)  # evicts
            if key % 5 == 0:
                cache[key] = Reentrant(cache, key + 1)  # replaces
            if key % 7 == 0:
                cache.pop(key - 1, None)
            if key % 11 == 0:
                timer.tick(4)
        cache.clear()
    finally:
        gc.enable()
    items = dict(cache.items())
    assert cache.currsize == len(cache) == len(items)
    for _ in range(len(items)):
        cache.popitem()
    assert cache.currsize == 0


def test_eviction_hook_may_call_back_in() -> None:
    seen: list[tuple[int, int]] = []

    class Audited(nct.LRUCache[int, int]):
        def popitem(self) -> tuple[int, int]:
            key, value = super().popitem()
            seen.append((key, len(self)))
            self.get(key)  # a read of the evicted key: a miss
            return key, value

    cache = Audited(2)
    for key in range(4):
        cache[key] = key
    assert seen == [(0, 1), (1, 1)]
    assert dict(cache.items()) == {2: 2, 3: 3}


@pytest.mark.parametrize("name", ["Cache", "LRUCache", "LFUCache", "TTLCache", "TLRUCache"])
def test_missing_runs_outside_the_lock(name: str) -> None:
    """A __missing__ that waits for another thread using the cache does not deadlock."""
    base = getattr(nct, name)

    class Loading(base):  # type: ignore[misc, valid-type]
        def __missing__(self, key: int) -> int:
            def read() -> None:
                self.get(key)
                self[key + 100] = key

            helper = threading.Thread(target=read)
            helper.start()
            helper.join(timeout=10)
            assert not helper.is_alive(), "deadlock: __missing__ ran under the lock"
            return key

    args: tuple[Any, ...] = (8,)
    if name == "TTLCache":
        args = (8, math.inf)
    elif name == "TLRUCache":
        args = (8, lambda _k, _v, _now: math.inf)
    cache = Loading(*args)
    assert cache[1] == 1
    assert cache[101] == 1


# -- a cache moving from the core to the general path while threads use it ------------


class _TurningTimer:
    """Floats for its first ``switch`` readings, then Fractions (which only the general
    path takes): the cache moves on the first Fraction, whichever thread reads it."""

    def __init__(self, switch: int) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.switch = switch

    def __call__(self) -> Any:
        from fractions import Fraction

        with self._lock:
            self.calls += 1
            calls = self.calls
        return 1.0 if calls <= self.switch else Fraction(1)


def _write_while_moving(name: str, trigger: str) -> None:
    timer = _TurningTimer(switch=THREADS * OPS // 3 if trigger == "timer" else 10**9)

    class Moving(getattr(nct, name)):  # type: ignore[misc]
        pass

    size = THREADS * OPS + 1
    cache = Moving(size, 100, timer=timer) if name == "TTLCache" else Moving(size)
    start = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def writer(base: int) -> None:
        start.wait()
        try:
            for i in range(OPS):
                cache[base + i] = i
                assert cache[base + i] == i
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t * OPS,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    if trigger == "hook":
        Moving.popitem = lambda self: getattr(nct, name).popitem(self)
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(cache) == list(range(THREADS * OPS))
    assert len(cache) == THREADS * OPS
    if nct._implementation == "compiled":
        from ct_helpers import core_serves

        assert not core_serves(cache)


@pytest.mark.parametrize(
    ("name", "trigger"),
    [("TTLCache", "timer"), ("TTLCache", "hook"), ("LRUCache", "hook"), ("FIFOCache", "hook")],
)
def test_no_write_is_lost_while_the_cache_moves(
    fast_switching: None, name: str, trigger: str
) -> None:
    """Threads write and read while the cache moves from the core to the general path
    (on a timer's first Fraction, or a hook set on the class meanwhile)."""
    for _ in range(ROUNDS):
        _write_while_moving(name, trigger)
