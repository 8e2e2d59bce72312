# Checked by tests/test_typing.py with `mypy --strict`; never imported by pytest.
# A "reveal:" comment: mypy must reveal exactly that type on that line.
# An "error:" comment: mypy must report errors with exactly those codes on that line.
# Every other line must be clean.
# ruff: noqa: F821
# fmt: off
from __future__ import annotations

import math
from typing import Any

from novacache import CacheInfo, CacheStats, LocalCache, Memoized, memoize


@memoize
def plain(x: int) -> str:
    return str(x)


@memoize()
def called(x: int, y: float = 1.0) -> bytes:
    return b""


@memoize(maxsize=10, ttl=1.5, typed=True, timer=lambda: 0.0)
def configured(x: int, *, key: str = "") -> list[int]:
    return [x]


@memoize(None)
def unbounded(*args: int) -> int:
    return sum(args)


class Thing:
    @memoize
    def method(self, x: int) -> float:
        return x * 1.5


reveal_type(plain(1))  # reveal: str
reveal_type(called(1, 2.0))  # reveal: bytes
reveal_type(configured(1, key="a"))  # reveal: list[int]
reveal_type(unbounded(1, 2, 3))  # reveal: int
reveal_type(Thing().method(2))  # reveal: float
reveal_type(plain)  # reveal: novacache._local_py.Memoized[[x: int], str]
reveal_type(plain.cache_info().maxsize)  # reveal: int | None
reveal_type(plain.cache_parameters())  # reveal: dict[str, Any]
reveal_type(plain.cache_clear())  # reveal: None
reveal_type(plain.__wrapped__)  # reveal: def (x: int) -> str

info: CacheInfo = plain.cache_info()
m: Memoized[[int], str] = plain

plain("x")  # error: arg-type
called(1, y="no")  # error: arg-type
configured(1, 2)  # error: call-arg, arg-type
unbounded("a")  # error: arg-type
bad: int = plain(1)  # error: assignment

c = LocalCache(10, maxbytes=1000, ttl=5.0, timer=lambda: 0.0)
c2 = LocalCache(ttl=math.inf, weigher=lambda k, v: 1)
reveal_type(c.stats.maxbytes)  # reveal: int | None
reveal_type(c.keys())  # reveal: list[Any]
reveal_type(c.items())  # reveal: list[tuple[Any, Any]]
reveal_type(c.get_many(["a"]))  # reveal: dict[Any, Any]
reveal_type(c.expire())  # reveal: int
reveal_type(c.maxsize)  # reveal: int | None
reveal_type(len(c))  # reveal: int
stats: CacheStats = c.stats
value: Any = c.get("k", 1)
c.set("k", 1, ttl=2)
c.set_many({"a": 1}, ttl=3.0)
c.set_many([("a", 1)])
LocalCache(maxsize="10")  # error: arg-type
LocalCache(10, 20)  # error: call-arg
c.set("k", 1, ttl="2")  # error: arg-type
