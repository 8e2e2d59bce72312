"""Thread stress: a burst of threads on one small bounded cache, then the invariants.

One configuration uses keys whose ``__hash__``/``__eq__`` are Python code, so that
threads switch in the middle of the compiled core's lookups.

The switch interval is cut to 1 microsecond so that threads interleave inside
operations as much as the interpreter allows. Each test stops after a fixed amount of
work or 1.5 s, whichever comes first; nothing here asserts on timing.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from _helpers import ABSENT, FakeTimer, check_invariants

N_THREADS = 6
OPS_PER_THREAD = 15000
TIME_BUDGET = 1.0
KEYS = 24


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def weigh(key: Any, value: Any) -> int:
    return int(value[1]) % 7 + 1


def value_for(key: Any, n: int) -> tuple[Any, int]:
    return (key, n)


class PyKey:
    """A key with Python-level ``__hash__`` and ``__eq__`` and many hash collisions."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return self.n % 5

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PyKey) and other.n == self.n

    def __repr__(self) -> str:
        return f"PyKey({self.n})"


def check_value(key: Any, value: Any) -> None:
    """Every value stored under ``key`` is ``(key, n)``: a mix-up shows immediately."""
    assert isinstance(value, tuple)
    assert value[0] == key


def worker(
    c: Any,
    seed: int,
    barrier: threading.Barrier,
    timer: FakeTimer | None,
    deadline: float,
    py_keys: bool,
) -> None:
    rnd = random.Random(seed)
    key_of: Any = PyKey if py_keys else int
    barrier.wait()
    for i in range(OPS_PER_THREAD):
        if i % 256 == 0 and time.monotonic() > deadline:
            break
        op = rnd.randrange(14)
        k = key_of(rnd.randrange(KEYS))
        try:
            if op <= 2:
                c[k] = value_for(k, i)
            elif op == 3:
                c.set(k, value_for(k, i), ttl=rnd.choice([None, 0.5, 2.0]))
            elif op <= 5:
                v = c.get(k, ABSENT)
                if v is not ABSENT:
                    check_value(k, v)
            elif op == 6:
                check_value(k, c[k])
            elif op == 7:
                del c[k]
            elif op == 8:
                check_value(k, c.pop(k))
            elif op == 9:
                key, v = c.popitem()
                check_value(key, v)
            elif op == 10:
                for key, v in c.get_many([k, key_of(rnd.randrange(KEYS)), k]).items():
                    check_value(key, v)
            elif op == 11:
                ks = [key_of(rnd.randrange(KEYS)) for _ in range(3)]
                c.set_many([(key, value_for(key, i)) for key in ks])
            elif op == 12:
                if timer is not None and rnd.random() < 0.3:
                    timer.tick(0.25)
                if rnd.random() < 0.05:
                    c.clear()
                else:
                    c.expire()
            else:
                for key, v in c.items():
                    check_value(key, v)
                c.peek(k)
                _ = k in c
                c.delete_many([k])
        except KeyError:
            if op not in (6, 7, 8, 9):
                raise


CONFIGS = {
    "count": {"maxsize": 8},
    "count+bytes": {"maxsize": 10, "maxbytes": 30, "weigher": weigh},
    "count+ttl": {"maxsize": 8, "ttl": 1.0},
    "count+bytes+ttl": {"maxsize": 10, "maxbytes": 30, "weigher": weigh, "ttl": 1.0},
    "bytes-default-weigher": {"maxbytes": 8 * sys.getsizeof((1, 2))},
    "python-keys": {"maxsize": 10, "maxbytes": 30, "weigher": weigh, "ttl": 1.0},
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_thread_stress(impl: ModuleType, config: str) -> None:
    kwargs: dict[str, Any] = dict(CONFIGS[config])
    timer = FakeTimer() if "ttl" in kwargs else None
    if timer is not None:
        kwargs["timer"] = timer
    c = impl.LocalCache(**kwargs)
    barrier = threading.Barrier(N_THREADS)
    errors: list[BaseException] = []
    deadline = time.monotonic() + TIME_BUDGET

    def run(seed: int) -> None:
        try:
            worker(c, seed, barrier, timer, deadline, config == "python-keys")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # the timer is frozen now: the invariants are exact
    check_invariants(c)
    for k, v in c.items():
        check_value(k, v)
        assert c.get(k, ABSENT) is v
    stats = c.stats
    assert stats.currsize == len(c)
    assert stats.hits + stats.misses > 0
    if c.maxsize is not None:
        assert len(c) <= c.maxsize
    if timer is not None:
        # every entry was set with a finite TTL: all of them must expire
        timer.tick(1000)
        assert c.keys() == []
        c.expire()
        assert len(c) == 0


def test_memoize_under_thread_stress(impl: ModuleType) -> None:
    @impl.memoize(8)
    def square(x: int) -> int:
        return x * x

    barrier = threading.Barrier(N_THREADS)
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            barrier.wait()
            for _ in range(2000):
                x = rnd.randrange(20)
                assert square(x) == x * x
                if rnd.random() < 0.01:
                    square.cache_clear()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    info = square.cache_info()
    assert info.currsize <= 8
    assert info.hits >= 0
    assert info.misses >= 0
