"""Re-entrancy scenarios, run in a subprocess by tests/test_reentrancy.py.

Usage: python reentrancy.py <module> <scenario>...

Code the cache runs (a value's ``__del__``, a key's ``__hash__``/``__eq__``, the
weigher, the timer) uses the same cache while an operation is in progress. The process
must not crash or hang, nothing may raise (``__del__`` exceptions are collected through
``sys.unraisablehook``), and the invariants must hold afterwards. Prints
``OK <scenario>`` after each scenario.
"""

from __future__ import annotations

import gc
import importlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _helpers import FakeTimer, check_invariants

impl = importlib.import_module(sys.argv[1])
UNRAISABLE: list[str] = []
sys.unraisablehook = lambda u: UNRAISABLE.append(f"{u.exc_type.__name__}: {u.exc_value}")

ON = [True]  # re-entrant behaviour switched on
BUDGET = [0]  # bounds chains of re-entrant calls


def spend() -> bool:
    BUDGET[0] += 1
    return ON[0] and BUDGET[0] < 150


# -- values whose __del__ uses the cache ------------------------------------------------

ACTIONS: dict[str, Callable[[Any, int], None]] = {
    "set": lambda c, n: c.set(("from-del", n % 7), n),
    "set-reentrant": lambda c, n: c.set(("chain", n % 5), Reentrant(c, "set-reentrant", n)),
    "delete": lambda c, n: [c.pop(k, None) for k in c.keys()[:2]],
    "del-missing": lambda c, n: c.pop(("never", n), None),
    "clear": lambda c, n: c.clear(),
    "read": lambda c, n: (c.get_many(c.keys()), c.items(), len(c), c.stats, c.peek(0)),
    "popitem": lambda c, n: c.popitem() if len(c) else None,
    "expire": lambda c, n: c.expire(),
    "set-many": lambda c, n: c.set_many({("many", i): i for i in range(3)}),
}


class Reentrant:
    def __init__(self, cache: Any, action: str, n: int = 0) -> None:
        self.cache = cache
        self.action = action
        self.n = n

    def __del__(self) -> None:
        if spend():
            ACTIONS[self.action](self.cache, self.n)


def delete(c: Any, key: Any) -> None:
    try:
        del c[key]
    except KeyError:  # removed meanwhile by a __del__ of an earlier value
        pass


def build(action: str, timer: FakeTimer) -> Any:
    c = impl.LocalCache(6, maxbytes=20, weigher=lambda k, v: 2, ttl=10, timer=timer)
    for i in range(6):
        c.set(i, Reentrant(c, action, i), ttl=5 if i % 2 else None)
    return c


TRIGGERS: dict[str, Callable[[Any, FakeTimer], None]] = {
    "evict": lambda c, t: [c.set(("new", i), i) for i in range(8)],
    "evict-by-weight": lambda c, t: c.set("heavy", "x"),
    "replace": lambda c, t: [c.set(i, "replaced") for i in range(6)],
    "pop": lambda c, t: [c.pop(i, None) for i in range(6)],
    "del": lambda c, t: [delete(c, k) for k in list(c)],
    "popitem": lambda c, t: [c.popitem() for _ in range(min(3, len(c)))],
    "clear": lambda c, t: c.clear(),
    "delete-many": lambda c, t: c.delete_many(range(6)),
    "set-many": lambda c, t: c.set_many({("sm", i): i for i in range(8)}),
    "expire": lambda c, t: (t.tick(6), c.expire()),
    "lookup-expired": lambda c, t: (t.tick(6), [c.get(i) for i in range(6)]),
    "get-many-expired": lambda c, t: (t.tick(6), c.get_many(range(6))),
    "sweep-on-insert": lambda c, t: (t.tick(11), [c.set(("sw", i), i) for i in range(4)]),
    "drop-cache": lambda c, t: None,
}


def settle(c: Any, trigger: str, action: str) -> None:
    """After a scenario: the values' hooks run (collected) and off, the cache keeps its
    invariants and answers every key it holds with its value, then empties."""
    gc.collect()
    ON[0] = False
    check_invariants(c, exact_weights=True)
    for k, v in c.items():
        assert c.get(k) is v, (trigger, action, k)
    c.clear()


def run_del(trigger: str) -> None:
    for action in ACTIONS:
        ON[0] = True
        BUDGET[0] = 0
        timer = FakeTimer()
        c = build(action, timer)
        TRIGGERS[trigger](c, timer)
        if trigger == "drop-cache":
            del c
            gc.collect()
            continue
        settle(c, trigger, action)


def run_policy(trigger: str) -> None:
    # A tinylfu cache bounded by maxsize alone (no weigher, no TTL): a new key's insert
    # takes the fused path (_pol_replace), whose loser (the candidate or the victim)
    # releases its key and value last. ``hit`` gives the entries counts first, so
    # candidates are admitted and victims evicted (the other loser).
    for action in ACTIONS:
        ON[0] = True
        BUDGET[0] = 0
        c = impl.LocalCache(6, policy="tinylfu")
        for i in range(6):
            c.set(i, Reentrant(c, action, i))
        for r in range(3 if trigger == "hit" else 0):
            for i in range(6):
                c.get(i)
                c.get(("new", r))
        for i in range(12):
            c.set(("new", i % 4), Reentrant(c, action, 100 + i))
            if trigger == "hit":
                c.get(("new", i % 4))
        settle(c, trigger, action)


# -- keys whose __hash__ / __eq__ use the cache -----------------------------------------


class EvilKey:
    """Collides with every other EvilKey; ``__eq__``/``__hash__`` mutate the cache."""

    cache: Any = None
    mode = "eq-set"

    def __init__(self, n: int) -> None:
        self.n = n

    def _act(self) -> None:
        c = EvilKey.cache
        if c is None or not spend():
            return
        n = BUDGET[0]
        if self.mode.endswith("set"):
            c.set(("evil", n % 5), n)
        elif self.mode.endswith("del"):
            for k in c.keys()[:1]:
                c.pop(k, None)
        elif self.mode.endswith("clear"):
            c.clear()
        elif self.mode.endswith("same"):
            c.pop(self, None)  # the very key being looked up

    def __hash__(self) -> int:
        if self.mode.startswith("hash"):
            self._act()
        return 42

    def __eq__(self, other: object) -> bool:
        if self.mode.startswith("eq"):
            self._act()
        return isinstance(other, EvilKey) and other.n == self.n


def run_key(mode: str) -> None:
    EvilKey.mode = mode
    ON[0] = True
    BUDGET[0] = 0
    timer = FakeTimer()
    c = impl.LocalCache(5, maxbytes=12, weigher=lambda k, v: 2, ttl=3, timer=timer)
    EvilKey.cache = c
    keys = [EvilKey(i) for i in range(8)]
    for round_ in range(3):
        BUDGET[0] = 0
        for i, k in enumerate(keys):
            c[k] = i
            c.set(k, i, ttl=1 + i % 3)
            c.get(k)
            c.peek(k)
            _ = k in c
            c.get_many([k, keys[(i + 1) % 8]])
            c.setdefault(keys[(i + 3) % 8], -1)
            c.pop(keys[(i + 2) % 8], None)
            c.set_many([(k, i), (keys[(i + 4) % 8], i)])
            c.delete_many([keys[(i + 5) % 8]])
            c.update({keys[(i + 6) % 8]: i})
            try:
                del c[keys[(i + 7) % 8]]
            except KeyError:
                pass
            try:
                c[keys[(i + 1) % 8]]
            except KeyError:
                pass
        timer.tick(round_ + 1)
    ON[0] = False
    EvilKey.cache = None
    check_invariants(c)
    for k, v in c.items():
        assert c.get(k) is v


# -- weigher and timer that use the cache ----------------------------------------------


def run_weigher(action: str) -> None:
    ON[0] = True
    BUDGET[0] = 0
    holder: list[Any] = []
    inside = [False]

    def weigher(key: Any, value: Any) -> int:
        if holder and not inside[0] and spend():
            inside[0] = True  # a set below calls the weigher again
            try:
                c = holder[0]
                if action == "read":
                    c.get(0)
                    c.peek(1)
                    _ = len(c), c.keys(), c.stats
                elif action == "set":
                    c.set(("w", BUDGET[0] % 4), 0)
                elif action == "del":
                    for k in c.keys()[:1]:
                        c.pop(k, None)
                elif action == "clear":
                    c.clear()
            finally:
                inside[0] = False
        return 3

    c = impl.LocalCache(5, maxbytes=12, weigher=weigher)
    holder.append(c)
    for i in range(20):
        c[i % 7] = i
        c.set_many({i: i, i + 1: i})
        c.update({i + 2: i})
        c.setdefault(i + 3, i)
    ON[0] = False
    check_invariants(c)


def run_timer(action: str) -> None:
    ON[0] = True
    BUDGET[0] = 0
    holder: list[Any] = []
    now = [100.0]
    inside = [False]

    def timer() -> float:
        if holder and not inside[0] and spend():
            inside[0] = True  # the cache's own calls below read the timer too
            try:
                c = holder[0]
                if action == "read":
                    c.get(0)
                    _ = c.keys(), len(c), c.peek(1)
                elif action == "set":
                    c.set(("t", BUDGET[0] % 4), 0, ttl=0.5)
                elif action == "del":
                    for k in c.keys()[:1]:
                        c.pop(k, None)
                elif action == "clear":
                    c.clear()
                elif action == "expire":
                    c.expire()
            finally:
                inside[0] = False
        now[0] += 0.25
        return now[0]

    c = impl.LocalCache(6, maxbytes=30, weigher=lambda k, v: 2, ttl=1, timer=timer)
    holder.append(c)
    for i in range(30):
        c[i % 9] = i
        c.set(i % 5, i, ttl=math.inf)
        c.get(i % 9)
        c.get_many([i % 9, (i + 1) % 9])
        _ = (i % 9) in c
        c.pop((i + 3) % 9, None)
        c.keys()
        c.expire()
        if len(c) and i % 4 == 0:
            c.popitem()
    ON[0] = False
    holder.clear()
    check_invariants(c)


def run_memoize(_: str) -> None:
    @impl.memoize(4)
    def f(x: int) -> int:
        if x % 3 == 0:
            f.cache_clear()
        if x > 0 and x % 5 == 0:
            return f(x - 1) + 1
        return x

    for i in range(50):
        assert f(i % 11) == i % 11  # f(5) = f(4) + 1, cache cleared on the way
    info = f.cache_info()
    assert info.currsize <= 4


RUNNERS: dict[str, Callable[[str], None]] = {
    "del": run_del,
    "key": run_key,
    "weigher": run_weigher,
    "timer": run_timer,
    "memoize": run_memoize,
    "policy": run_policy,
}


def main() -> None:
    """Run each scenario given on the command line; print ``OK <scenario>`` after each."""
    for scenario in sys.argv[2:]:
        print(f"running {scenario}", flush=True)
        kind, _, arg = scenario.partition(":")
        RUNNERS[kind](arg)
        gc.collect()
        if UNRAISABLE:
            raise SystemExit(f"{scenario}: exceptions in __del__: {UNRAISABLE[:5]}")
        print(f"OK {scenario}", flush=True)


if __name__ == "__main__":
    main()
