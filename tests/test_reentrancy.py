"""Re-entrancy: code the cache runs uses the same cache while an operation is running.

A value's ``__del__`` (evicted, replaced, popped, cleared, expired), a key's
``__eq__``/``__hash__`` during lookups, a weigher and a timer: each sets, deletes,
clears or reads the same cache. The scenarios run in subprocesses (one per kind)
(tests/isolated/reentrancy.py), so a segfault shows up as a failure with its exit code
and a deadlock as a timeout; inside, nothing may raise and the invariants must hold.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from _helpers import ABSENT, FakeTimer, child_env

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "isolated" / "reentrancy.py"

SCENARIOS = [
    *(
        f"del:{t}"
        for t in (
            "evict",
            "evict-by-weight",
            "replace",
            "pop",
            "del",
            "popitem",
            "clear",
            "delete-many",
            "set-many",
            "expire",
            "lookup-expired",
            "get-many-expired",
            "sweep-on-insert",
            "drop-cache",
        )
    ),
    *(f"key:{w}-{a}" for w in ("eq", "hash") for a in ("set", "del", "clear", "same")),
    *(f"weigher:{a}" for a in ("read", "set", "del", "clear")),
    *(f"timer:{a}" for a in ("read", "set", "del", "clear", "expire")),
    "memoize:",
    *(f"policy:{t}" for t in ("evict", "hit")),
]


def run_isolated(module: str, *args: str, timeout: float = 60) -> Any:
    env = child_env()
    return subprocess.run(
        [sys.executable, str(SCRIPT), module, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("kind", sorted({s.partition(":")[0] for s in SCENARIOS}))
def test_reentrancy(impl: ModuleType, kind: str) -> None:
    scenarios = [s for s in SCENARIOS if s.partition(":")[0] == kind]
    try:
        proc = run_isolated(impl.__name__, *scenarios)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out (deadlock?) after: {exc.stdout!r}")
    signal = f" (killed by signal {-proc.returncode})" if proc.returncode < 0 else ""
    passed = [line[3:] for line in proc.stdout.splitlines() if line.startswith("OK ")]
    failed = [s for s in scenarios if s not in passed]
    assert proc.returncode == 0, (
        f"exit code {proc.returncode}{signal}; first failing scenario: {failed[:1]}\n"
        f"{proc.stderr[-3000:]}"
    )
    assert passed == scenarios


@pytest.mark.parametrize("where", ["hash", "eq"])
def test_ttl_kept_when_key_code_clears_the_cache_during_set(impl: ModuleType, where: str) -> None:
    # set(k, v, ttl=1): the key's __hash__ / __eq__ clears the cache while the set is in
    # progress; the entry that is stored must still expire.
    timer = FakeTimer()
    c = impl.LocalCache(timer=timer)
    armed = [False]

    class Key:
        def __hash__(self) -> int:
            if where == "hash" and armed[0]:
                armed[0] = False
                c.clear()
            return 1

        def __eq__(self, other: object) -> bool:
            if where == "eq" and armed[0]:
                armed[0] = False
                c.clear()
            return self is other

    k = Key()
    c[Key()] = "colliding"  # so that the lookup calls __eq__
    armed[0] = True
    c.set(k, "v", ttl=1)
    assert not armed[0]  # the clear did run
    timer.tick(0.5)
    assert c.peek(k) in ("v", None)
    timer.tick(1)
    assert c.get(k, ABSENT) is ABSENT
    assert k not in c
    assert c.keys() == []


TRIGGERS = ["evict", "replace", "pop", "del", "popitem", "clear", "expire", "lookup-expired"]


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_value_del_may_wait_for_another_thread_using_the_cache(
    impl: ModuleType, trigger: str
) -> None:
    # A finalizer that waits for another thread which uses the same cache: if the
    # finalizer ran while the cache held a lock, that thread could not finish.
    timer = FakeTimer()
    c = impl.LocalCache(2, ttl=10, timer=timer)
    finished: list[bool] = []

    class Value:
        def __del__(self) -> None:
            def use() -> None:
                c.get("other")
                c.set("from-thread", 1)
                finished.append(True)

            t = threading.Thread(target=use)
            t.start()
            t.join(timeout=10)
            finished.append(not t.is_alive())

    c["v"] = Value()
    if trigger == "evict":
        c["x"] = 1
        c["y"] = 2
    elif trigger == "replace":
        c["v"] = 0
    elif trigger == "pop":
        c.pop("v")
    elif trigger == "del":
        del c["v"]
    elif trigger == "popitem":
        c.popitem()
    elif trigger == "clear":
        c.clear()
    elif trigger == "expire":
        timer.tick(20)
        c.expire()
    else:
        timer.tick(20)
        c.get("v")
    assert finished == [True, True], "the finalizer's thread could not use the cache"
    assert c.get("from-thread") == 1
