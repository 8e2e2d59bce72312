# Checked by tests/cachetools/test_ct_typing.py with `mypy --strict`; never imported.
# A "reveal:" comment: mypy must reveal exactly that type on that line; every other
# line must be clean.
# ruff: noqa: F821
# fmt: off
from __future__ import annotations

from datetime import datetime, timedelta

import novacache.cachetools as cachetools
import novacache.cachetools.func
from novacache.cachetools import LRUCache, TLRUCache, TTLCache, cached, cachedmethod, keys

lru: LRUCache[int, str] = LRUCache(maxsize=2)
reveal_type(lru.get(1))  # reveal: str | None
reveal_type(lru.get(1, 0))  # reveal: str | int
reveal_type(lru.pop(1))  # reveal: str
ttl: TTLCache[str, int] = TTLCache(maxsize=2, ttl=60)  # the timer type defaults to float
dated = TTLCache[str, int, datetime](maxsize=2, ttl=timedelta(days=1), timer=datetime.now)
reveal_type(dated.timer())  # reveal: datetime.datetime
reveal_type(ttl.timer())  # reveal: float
reveal_type(ttl.get("a"))  # reveal: int | None
reveal_type(dated.pop("a", None))  # reveal: int | None
tlru: TLRUCache[str, int] = TLRUCache(2, lambda _k, v, now: now + v)
reveal_type(lru.maxsize)  # reveal: float
reveal_type(keys.hashkey(1, a=2))  # reveal: tuple[typing.Hashable, ...]


@cached(LRUCache(maxsize=16))
def square(x: int) -> int:
    return x * x


@cached(LRUCache(maxsize=16), info=True)
def name(x: int, *, upper: bool = False) -> str:
    return str(x)


reveal_type(square(3))  # reveal: int
reveal_type(name(3, upper=True))  # reveal: str
reveal_type(name.cache_info().hits)  # reveal: int
square.cache_clear()


@novacache.cachetools.func.lru_cache
def bare(x: int) -> bytes:
    return b""


@novacache.cachetools.func.ttl_cache(maxsize=4, ttl=1.0)
def timed(x: int) -> float:
    return 1.0


reveal_type(bare(1))  # reveal: bytes
reveal_type(timed(1))  # reveal: float
reveal_type(timed.cache_parameters())  # reveal: dict[str, Any]


class Thing:
    def __init__(self) -> None:
        self.cache: LRUCache[object, object] = LRUCache(4)

    @cachedmethod(lambda self: self.cache)
    def method(self, x: int) -> list[int]:
        return [x]

    @cachedmethod(lambda self: self.cache, info=True)
    def counted(self, x: int) -> str:
        return ""

    @cached(cachetools.LRUCache(4), key=keys.methodkey)
    def plain(self, x: int) -> float:
        return 1.0


thing = Thing()
reveal_type(thing.method(1))  # reveal: list[int]
reveal_type(Thing.method(thing, 1))  # reveal: list[int]
reveal_type(thing.counted.cache_info().misses)  # reveal: int
reveal_type(thing.plain(1))  # reveal: float
