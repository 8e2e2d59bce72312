"""Leak checks, run in a subprocess by tests/test_leaks.py.

Usage: python leaks.py <module> [<case>...]   (no case: all of them)

Each case repeats one operation many times in rounds. After warm-up rounds:

- the memory traced by ``tracemalloc`` must not keep growing from round to round;
- the reference counts of a key and a value used by every round must not grow (a
  missing DECREF in the compiled core shows up here first);
- when the cache is dropped, no instance of the marker classes ``Key``/``Value`` may
  survive ``gc.collect()`` besides those the script still holds.

Exit status 0 and ``OK`` on stdout when nothing leaks; otherwise a message.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

impl = importlib.import_module(sys.argv[1])

ROUNDS = 7
WARMUP = 3
PER_ROUND = 1500
GROWTH_LIMIT = 16 * 1024  # bytes over the measured rounds (noise: well under 1 KiB)


class Key:
    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return hash(self.n)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and other.n == self.n


class Value:
    __slots__ = ("__weakref__", "n")

    def __init__(self, n: int = 0) -> None:
        self.n = n


class Boom(Exception):
    pass


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


PK = Key(-1)  # used by every round: its refcount must not grow
PV = Value(-1)
TIMER = Timer()


def weigh(key: Any, value: Any) -> int:
    return 3


def make_cases() -> dict[str, tuple[Any, Callable[[Any], None]]]:
    """case -> (cache or memoized object, one round)."""
    cases: dict[str, tuple[Any, Callable[[Any], None]]] = {}

    def case(name: str, obj: Any) -> Callable[[Callable[[Any], None]], None]:
        def register(fn: Callable[[Any], None]) -> None:
            cases[name] = (obj, fn)

        return register

    @case("set-get", impl.LocalCache(64))
    def _(c: Any) -> None:
        for i in range(PER_ROUND):
            c[Key(i % 100)] = Value(i)
            c.get(Key((i * 7) % 100))
            c[PK] = PV
            c.get(PK)
            c.peek(PK)
            _ = PK in c
            c.set(Key(i % 50), PV, ttl=1000)

    @case("evict-by-weight", impl.LocalCache(maxbytes=90, weigher=weigh))
    def _(c: Any) -> None:
        for i in range(PER_ROUND):
            c[Key(i)] = Value(i)
            c[PK] = PV

    @case("default-weigher", impl.LocalCache(maxbytes=4096))
    def _(c: Any) -> None:
        for i in range(PER_ROUND):
            c[Key(i)] = Value(i)
            c[PK] = PV

    @case("expire", impl.LocalCache(ttl=1, timer=TIMER))
    def _(c: Any) -> None:
        for i in range(PER_ROUND):
            c[Key(i % 200)] = Value(i)
            c.set(PK, PV, ttl=0.5)
            if i % 50 == 0:
                TIMER.now += 2
                c.expire()
        TIMER.now += 2
        c.get(PK)  # reclaimed by a lookup
        c.expire()

    @case("sweep-and-lookup-expiry", impl.LocalCache(100, ttl=1, timer=TIMER))
    def _(c: Any) -> None:
        for i in range(PER_ROUND):
            c[Key(i)] = Value(i)
            c[PK] = PV
            if i % 10 == 0:
                TIMER.now += 2
                c.get(PK)
                c.get_many([PK, Key(i)])
                c.pop(PK, None)
        c.clear()

    @case("pop-popitem-del", impl.LocalCache(32))
    def _(c: Any) -> None:
        for i in range(PER_ROUND):
            c[PK] = PV
            c.pop(PK)
            c[Key(i)] = Value(i)
            c[PK] = PV
            del c[PK]
            c.popitem()
            c[PK] = PV
            c.pop(Key(i), None)
        c.clear()

    @case("misses-raise", impl.LocalCache(8))
    def _(c: Any) -> None:
        for i in range(PER_ROUND):
            for op in (c.__getitem__, c.__delitem__, c.pop):
                try:
                    op(PK)
                except KeyError:
                    pass
            try:
                c.popitem()
            except KeyError:
                pass
            c.get(Key(i))

    @case("entry-too-large", impl.LocalCache(maxbytes=2, weigher=weigh))
    def _(c: Any) -> None:
        for _i in range(PER_ROUND):
            try:
                c[PK] = PV
            except ValueError:
                pass
            try:
                c.set_many([(PK, PV), (Key(1), PV)])
            except ValueError:
                pass
            try:
                c.set(PK, PV, ttl=-1)
            except ValueError:
                pass

    @case("batch", impl.LocalCache(50))
    def _(c: Any) -> None:
        for i in range(PER_ROUND // 5):
            c.set_many({Key(j): Value(j) for j in range(i % 20, i % 20 + 10)})
            c.set_many([(PK, PV)])
            c.get_many([PK, Key(3), Key(99)])
            c.delete_many([PK, Key(5), Key(98)])
            c.update({PK: PV})
            c.setdefault(PK, PV)
            c.keys()
            c.values()
            c.items()
            list(c)
            _ = c.stats
        c.clear()

    @case("clear", impl.LocalCache(100))
    def _(c: Any) -> None:
        for i in range(PER_ROUND // 10):
            for j in range(10):
                c[Key(i * 10 + j)] = Value(j)
            c[PK] = PV
            c.clear()

    def fn(x: Any) -> Value:
        if isinstance(x, Key) and x.n % 7 == 0:
            raise Boom(x)
        return Value(x.n if isinstance(x, Key) else 0)

    @case("memoize", impl.memoize(64)(fn))
    def _(m: Any) -> None:
        for i in range(PER_ROUND):
            try:
                m(Key(i % 100))  # hits, misses and exceptions (not cached)
            except Boom:
                pass
            m(PK)
        m.cache_clear()

    def fn_kw(x: Any, *, kw: Any = None, flag: bool = False) -> Any:
        return kw

    @case("memoize-typed-kwargs", impl.memoize(32, typed=True)(fn_kw))
    def _(m: Any) -> None:
        for i in range(PER_ROUND):
            m(Key(i % 60), kw=PV)
            m(PK, kw=PV, flag=True)
            m(i % 40, kw=PV)

    @case("memoize-ttl", impl.memoize(32, ttl=1, timer=TIMER)(fn))
    def _(m: Any) -> None:
        for i in range(PER_ROUND):
            m(PK)
            if i % 20 == 0:
                TIMER.now += 2

    @case("memoize-unbounded-and-zero", impl.memoize(None)(fn))
    def _(m: Any) -> None:
        zero = impl.memoize(0)(fn)
        for i in range(PER_ROUND):
            m(PK)
            zero(PK)
            m(i % 30 + 1)
        m.cache_clear()

    return cases


def count_markers() -> int:
    return sum(1 for o in gc.get_objects() if type(o) in (Key, Value))


def check(case: str) -> list[str]:
    """Run one case; return what leaked (empty: nothing)."""
    obj, one_round = make_cases()[case]
    baseline = count_markers()
    sizes: list[int] = []
    refs: list[tuple[int, int]] = []
    tracemalloc.start()
    for r in range(ROUNDS):
        one_round(obj)
        gc.collect()
        if r >= WARMUP - 1:
            sizes.append(tracemalloc.get_traced_memory()[0])
            refs.append((sys.getrefcount(PK), sys.getrefcount(PV)))
    tracemalloc.stop()
    problems = []
    growth = sizes[-1] - sizes[0]
    if growth > GROWTH_LIMIT:
        problems.append(f"traced memory grew by {growth} bytes over rounds: {sizes}")
    if refs[-1][0] > refs[0][0] or refs[-1][1] > refs[0][1]:
        problems.append(f"refcounts of the key/value used every round grew: {refs}")
    del obj, one_round
    gc.collect()
    alive = count_markers() - baseline
    if alive:
        problems.append(f"{alive} Key/Value instances survive the dropped cache")
    if os.environ.get("LEAKS_VERBOSE"):
        print(f"{case}: traced {sizes}, refcounts {refs}", file=sys.stderr)
    return problems


def main() -> None:
    """Print ``OK <case>`` or ``LEAK <case>: ...`` per case; exit 1 if anything leaked."""
    cases = sys.argv[2:] or list(make_cases())
    leaked = False
    for case in cases:
        problems = check(case)
        if problems:
            leaked = True
            print(f"LEAK {case}: " + "; ".join(problems), flush=True)
        else:
            print(f"OK {case}", flush=True)
    sys.exit(1 if leaked else 0)


if __name__ == "__main__":
    main()
