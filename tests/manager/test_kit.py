"""The manager's hit paths: the compiled kit (ext/_managerkit.pyx) and its pure twin
(novacache.manager._kit) give the same results, the asyncio ``@cached`` wrapper is a
coroutine function whose calls asyncio takes as coroutines, and an L1 that is not a
plain LocalCache (a subclass, a mapping) is read through its own methods."""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from novacache import LocalCache
from novacache.manager import AsyncCacheManager, CacheManager, _kit
from novacache.manager.envelope import Envelope
from novacache.tiers import AsyncSQLiteTier, SQLiteTier


def _twins() -> list[Any]:
    pure = SimpleNamespace(
        name="pure", Ready=_kit._Ready, CachedCall=_kit._CachedCall, get=_kit._get
    )
    params: list[Any] = [pytest.param(pure, id="pure")]
    try:
        from novacache import _managerkit
    except ImportError:
        if os.environ.get("CI"):
            raise
    else:
        compiled = SimpleNamespace(
            name="compiled",
            Ready=_managerkit.Ready,
            CachedCall=_managerkit.CachedCall,
            get=_managerkit.get,
        )
        params.append(pytest.param(compiled, id="compiled"))
    return params


@pytest.fixture(params=_twins())
def kit(request: pytest.FixtureRequest) -> Any:
    return request.param


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


# -- Ready: a value that is already there, as an awaitable --------------------------


def test_ready_is_awaited_to_its_value(kit: Any) -> None:
    async def main() -> list[Any]:
        values: list[Any] = [await kit.Ready(5), await kit.Ready(None)]
        values.append(await asyncio.create_task(kit.Ready((1, 2))))
        values.append(await asyncio.gather(kit.Ready("a"), kit.Ready([3])))
        values.append(await asyncio.wait_for(kit.Ready(7), 1))
        return values

    assert _run(main()) == [5, None, (1, 2), ["a", [3]], 7]


def test_ready_is_a_coroutine_to_asyncio(kit: Any) -> None:
    ready = kit.Ready(1)
    assert asyncio.iscoroutine(ready)
    assert inspect.isawaitable(ready)
    assert repr(ready) == "<manager.cached hit>"


def test_ready_speaks_the_coroutine_protocol(kit: Any) -> None:
    with pytest.raises(StopIteration) as stop:
        kit.Ready(9).send(None)
    assert stop.value.value == 9
    with pytest.raises(TypeError, match="non-None"):
        kit.Ready(9).send(1)
    with pytest.raises(ValueError, match="thrown"):
        kit.Ready(9).throw(ValueError("thrown"))
    with pytest.raises(KeyError):
        kit.Ready(9).throw(KeyError)
    assert kit.Ready(9).close() is None


# -- CachedCall -------------------------------------------------------------------------


def test_cached_call_answers_hits_from_l1_and_misses_from_miss(kit: Any) -> None:
    local = LocalCache(10)
    local["f(1)"] = "hit"
    misses: list[tuple[str, tuple[Any, ...]]] = []

    def miss(key: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> str:
        misses.append((key, args))
        return "loaded"

    def key(*args: Any, **kwargs: Any) -> str:
        return f"f({(args or tuple(kwargs.values()))[0]})"

    call = kit.CachedCall(lambda x: x, local, miss, key, True)
    assert call(1) == "hit"
    assert call(2) == "loaded"
    assert call(x=1) == "hit"  # keyword calls build the key every time
    assert misses == [("f(2)", (2,))]


def test_async_cached_call_returns_ready_for_hits(kit: Any) -> None:
    local = LocalCache(10)
    local["k"] = "hit"

    async def loaded() -> str:
        return "loaded"

    def miss(key: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> Any:
        return loaded()

    call = kit.CachedCall(lambda x: x, local, miss, lambda *a, **k: a[0], True, True)

    async def main() -> tuple[Any, Any]:
        hit, missed = call("k"), call("other")
        assert type(hit) is kit.Ready
        assert inspect.iscoroutine(missed)
        return await hit, await missed

    assert _run(main()) == ("hit", "loaded")


class _Counting(LocalCache):
    """An L1 whose reads are seen: a subclass may override them."""

    reads = 0

    def __getitem__(self, key: Any) -> Any:
        type(self).reads += 1
        return super().__getitem__(key)

    def set(self, key: Any, value: Any, ttl: float | None = None) -> None:
        super().set(key, ("seen", value), ttl)


def test_get_reads_a_subclass_through_its_methods(kit: Any) -> None:
    manager = CacheManager(local=_Counting(10))
    manager.local.set("k", 1)  # type: ignore[union-attr]
    before = _Counting.reads
    assert kit.get(manager, "k") == ("seen", 1)
    assert kit.get(manager, "absent", "d") == "d"
    assert _Counting.reads == before + 2


@pytest.mark.parametrize("with_l1", [True, False], ids=["l1", "no-l1"])
def test_get_matches_across_twins(kit: Any, with_l1: bool, tmp_path: Path) -> None:
    store = SQLiteTier(tmp_path / "s.db")
    manager = CacheManager(local=LocalCache(10) if with_l1 else None, store=store)
    manager.set("k", {"v": 1})
    assert kit.get(manager, "k") == {"v": 1}
    assert kit.get(manager, "absent", 0) == 0
    with pytest.raises(TypeError):
        kit.get(manager, ["unhashable"])
    manager.close()


def test_a_subclass_l1_is_filled_through_its_set(tmp_path: Path) -> None:
    """A value read below goes to L1 through the L1's own ``set`` when it is not a
    LocalCache itself (the compiled fill's common case takes LocalCache only)."""
    store = SQLiteTier(tmp_path / "s.db")
    CacheManager(store=store).set("k", 1)
    manager = CacheManager(local=_Counting(10), store=SQLiteTier(tmp_path / "s.db"))
    assert manager.get("k") == 1
    assert manager.local["k"] == ("seen", 1)  # type: ignore[index]
    manager.close()


# -- the asyncio @cached wrapper --------------------------------------------------------


def test_async_cached_is_a_coroutine_function(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncCacheManager(
            local=LocalCache(100), store=AsyncSQLiteTier(tmp_path / "s.db")
        ) as m:

            @m.cached(ttl=60)
            async def fetch(x: int, scale: int = 2) -> int:
                """Doc."""
                return x * scale

            assert inspect.iscoroutinefunction(fetch)
            assert asyncio.iscoroutinefunction(fetch)
            assert str(inspect.signature(fetch)) == "(x: 'int', scale: 'int' = 2) -> 'int'"
            assert fetch.__name__ == "fetch"
            assert fetch.__doc__ == "Doc."
            miss = fetch(3)
            assert asyncio.iscoroutine(miss)
            assert await miss == 6
            hit = fetch(3)
            assert asyncio.iscoroutine(hit)
            assert await hit == 6
            assert await asyncio.create_task(fetch(3)) == 6
            assert await asyncio.gather(fetch(3), fetch(4), fetch(x=3, scale=3)) == [6, 8, 9]

    _run(main())


def test_async_cached_errors_reach_every_awaiter() -> None:
    async def main() -> None:
        # L1 only: a miss goes straight to the single-flight, so both tasks are waiting
        # for the one load once the first step of each has run (tasks run in order).
        async with AsyncCacheManager(local=LocalCache(100)) as m:
            calls = 0
            gate = asyncio.Event()

            @m.cached(ttl=60)
            async def boom(x: int) -> int:
                nonlocal calls
                calls += 1
                await gate.wait()
                raise RuntimeError(f"boom {x}")

            tasks = [asyncio.create_task(boom(1)) for _ in range(2)]
            await asyncio.sleep(0)  # each task's first step: one leads, one waits
            gate.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert [str(r) for r in results] == ["boom 1", "boom 1"]
            assert calls == 1
            with pytest.raises(RuntimeError, match="boom 1"):
                await boom(1)  # a failure is not cached
            assert calls == 2

    _run(main())


def test_async_cached_method(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncCacheManager(
            local=LocalCache(100), store=AsyncSQLiteTier(tmp_path / "s.db")
        ) as m:

            class Repo:
                calls = 0

                def __repr__(self) -> str:
                    return "Repo()"

                @m.cached(ttl=60)
                async def get(self, x: int) -> int:
                    Repo.calls += 1
                    return x + 1

            repo = Repo()
            assert [await repo.get(1), await repo.get(1), await repo.get(2)] == [2, 2, 3]
            assert Repo.calls == 2

    _run(main())


# -- the synchronous read below L1 -----------------------------------------------------


def test_the_compiled_read_is_bound_where_built() -> None:
    if _kit.COMPILED:
        from novacache import _managerkit

        assert CacheManager._read is _managerkit.read
        assert CacheManager._get_below is _managerkit.get_below
    else:  # a pure build: the generated methods
        assert inspect.isfunction(CacheManager._read)
        assert inspect.isfunction(CacheManager._get_below)


def test_a_subclass_read_is_used_by_get(tmp_path: Path) -> None:
    """get_below calls the manager's own _read when a subclass overrides it."""
    seen: list[str] = []

    class Tracing(CacheManager):
        def _read(self, key: str, down: Any) -> Any:
            seen.append(key)
            return super()._read(key, down)

    store = SQLiteTier(tmp_path / "s.db")
    with Tracing(store=store) as m:
        m.set("k", 1)
        assert m.get("k") == 1
        assert m.get("absent", "d") == "d"
    assert seen == ["k", "absent"]


def test_get_takes_the_value_of_what_a_subclass_read_returns(tmp_path: Path) -> None:
    """The value of an entry read below is its ``value``, as in the Python twin (an
    Envelope's is read straight from the tuple; a subclass's through its property)."""

    class Reversed(Envelope):
        """An entry that holds its value reversed and gives it back the right way."""

        @property
        def value(self) -> Any:  # type: ignore[override]
            return tuple.__getitem__(self, 0)[::-1]

    class Own(CacheManager):
        def _read(self, key: str, down: Any) -> Any:
            return Reversed("eulav", None) if key == "mine" else super()._read(key, down)

    for local in (LocalCache(10), None):
        with Own(local=local, store=SQLiteTier(tmp_path / f"{local is None}.db")) as m:
            m.set("k", [1, 2])
            assert m.get("mine") == "value"
            assert m.get("k") == [1, 2]
            assert m.get("absent", "d") == "d"


def test_get_reads_below_with_the_class_as_it_is_now(tmp_path: Path) -> None:
    """An L1 miss reads below with the class's _get_below and _read as they are at the
    call: the compiled get remembers the last class it found reading with its own, and
    a change to the class after that is seen."""
    seen: list[Any] = []
    original = CacheManager._read

    class Sub(CacheManager):
        pass

    def tracing(self: Any, key: str, down: Any, found: Any = None) -> Any:
        seen.append(key)
        return original(self, key, down, found)

    def below(self: Any, key: str, default: Any = None) -> Any:
        seen.append(("below", key))
        return "from below"

    local = LocalCache(10)
    with Sub(local=local, store=SQLiteTier(tmp_path / "s.db")) as m:
        m.set("k", 1)
        for step in ("own", "read", "below", "own again"):
            if step == "read":
                Sub._read = tracing  # type: ignore[method-assign]
            elif step == "below":
                Sub._get_below = below  # type: ignore[method-assign]
            elif step == "own again":
                del Sub._get_below, Sub._read
            local.clear()
            assert m.get("k") == ("from below" if step == "below" else 1), step
    assert seen == ["k", ("below", "k")]


def test_async_get_reads_below_with_the_class_as_it_is_now(tmp_path: Path) -> None:
    """The asyncio get's L1 miss awaits the class's _get_below as it is at the call (the
    compiled aget remembers the last class's function), for two classes in turn and
    after a change to one of them; a subclass's own _get_below is used."""
    seen: list[Any] = []

    class Sub(AsyncCacheManager):
        pass

    class Own(AsyncCacheManager):
        async def _get_below(self, key: str, default: Any = None) -> Any:
            seen.append(("own", key))
            return "own"

    async def below(self: Any, key: str, default: Any = None) -> Any:
        seen.append(("below", key))
        return "from below"

    async def main() -> list[Any]:
        got: list[Any] = []
        local, other = LocalCache(10), LocalCache(10)
        async with (
            Sub(local=local, store=AsyncSQLiteTier(tmp_path / "s.db")) as m,
            Own(local=other, store=AsyncSQLiteTier(tmp_path / "o.db")) as o,
        ):
            await m.set("k", 1)
            await o.set("k", 2)
            # One class, then a change to it (the remembered function is stale), then
            # the other class, then the first one's change undone.
            for step in ("m", "change m", "o", "m", "undo m", "o"):
                if step == "change m":
                    Sub._get_below = below  # type: ignore[method-assign]
                elif step == "undo m":
                    del Sub._get_below
                local.clear()
                other.clear()
                got.append(await (o if step == "o" else m).get("k"))
        return got

    assert _run(main()) == [1, "from below", "own", "from below", 1, "own"]
    assert seen == [("below", "k"), ("own", "k"), ("below", "k"), ("own", "k")]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("ttl", "cap", "lives"),
    [
        (10.0, None, 6.0),  # the entry's remaining life (10 s written, 4 s ago)
        (10.0, 2.5, 2.5),  # L1's own TTL, shorter
        (10.0, 20.0, 6.0),  # L1's own TTL, longer: the remaining life still
        (math.inf, 2.5, 2.5),  # no deadline below: L1's TTL
        (math.inf, None, math.inf),  # neither: kept until evicted
    ],
)
def test_the_l1_fill_keeps_a_value_for_the_lesser_ttl(
    tmp_path: Path, is_async: bool, ttl: float, cap: float | None, lives: float
) -> None:
    """A value read below goes to L1 for the lesser of its remaining life and L1's own
    TTL (the compiled fill does it in C doubles; the pure one through LocalCache.set)."""
    from ._support import Clock

    clock = Clock()
    local = LocalCache(10, ttl=cap, timer=clock)

    def age() -> None:  # 4 s after the write, an empty L1
        clock.tick(4)
        local.clear()

    def alive() -> list[bool]:
        out = []
        for step in (lives - 0.01, 0.02):
            if step != math.inf:
                clock.tick(step)
            out.append("k" in local)
        return out

    if is_async:

        async def main() -> list[bool]:
            store = AsyncSQLiteTier(tmp_path / "s.db", clock=clock)
            async with AsyncCacheManager(local=local, store=store, clock=clock) as m:
                await m.set("k", [1], ttl=ttl)
                age()
                assert await m.get("k") == [1]
                return alive()

        got = _run(main())
    else:
        with CacheManager(
            local=local, store=SQLiteTier(tmp_path / "s.db", clock=clock), clock=clock
        ) as m:
            m.set("k", [1], ttl=ttl)
            age()
            assert m.get("k") == [1]
            got = alive()
    assert got == [True, lives == math.inf]


def test_read_counts_and_promotes_as_the_python_one(tmp_path: Path, redis_standalone: Any) -> None:
    """The compiled read against its twin's contract: a hit below is counted, promoted to
    the tiers above, and put into L1; a miss counted per tier."""
    from novacache.tiers import RedisTier

    from ._support import prefix

    store = SQLiteTier(tmp_path / "s.db")
    CacheManager(store=SQLiteTier(tmp_path / "s.db")).set("k", {"v": 1})
    with CacheManager(
        local=LocalCache(10), remote=RedisTier(redis_standalone.url, prefix=prefix()), store=store
    ) as m:
        assert m.get("k") == {"v": 1}  # from the store: promoted to Redis and L1
        assert m.stats.get("remote", "misses") == 1
        assert m.stats.get("store", "hits") == 1
        assert m.remote is not None
        assert m.remote.get("k") is not None
        assert "k" in m.local  # type: ignore[operator]
        assert m.get("absent") is None
        assert m.stats.get("remote", "misses") == 2
        assert m.stats.get("store", "misses") == 1


# -- the compiled L1 fill inserts as LocalCache.set does ------------------------------


def _fill_scenario(scenario: str, make: Any, tmp_path: Path) -> tuple[LocalCache, LocalCache]:
    """The same operations on a manager's L1 (``a``: filled by the manager's reads,
    through the compiled fill when built) and on a twin (``b``: a lookup that misses,
    then ``set``, as the fill follows a missed lookup)."""
    a, b = make(), make()
    writer = CacheManager(store=SQLiteTier(tmp_path / "s.db"))
    manager = CacheManager(local=a, store=SQLiteTier(tmp_path / "s.db"))
    names = [f"k{i}" for i in range(400)]
    for i, k in enumerate(names):
        writer.set(k, i, ttl=300)

    def read(ks: list[str]) -> None:
        for k in ks:
            assert manager.get(k) == int(k[1:])
            if b.get(k) is None:
                b.set(k, int(k[1:]), 300)

    if scenario == "grow":  # from empty: the index and the entry array grow on the way
        read(names[:300])
    elif scenario == "evict":  # full: every further fill evicts
        read(names[:120])
    elif scenario == "reuse":  # removed entries: free entries and tombstones reused
        read(names[:60])
        for k in names[10:40:2] + names[41:60:3]:
            assert a.pop(k, None) == b.pop(k, None)
        read(names[60:100] + names[10:20])
    elif scenario == "hits":  # hits between fills change the LRU order
        read(names[:40])
        read(names[:40:3] + names[40:80] + names[5:60:7])
    elif scenario == "expired":  # entries past their deadline: the sweep removes them
        for k in names[300:330]:
            a.set(k, 0, ttl=0.02)
            b.set(k, 0, ttl=0.02)
        time.sleep(0.05)
        read(names[:150])
    else:  # "cleared": a table kept by clear(), refilled
        read(names[:200])
        a.clear()
        b.clear()
        read(names[100:300])
    manager.close()
    writer.close()
    return a, b


@pytest.mark.parametrize("scenario", ["grow", "evict", "reuse", "hits", "expired", "cleared"])
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: LocalCache(1000), id="lru"),
        pytest.param(lambda: LocalCache(50), id="lru-50"),
        pytest.param(lambda: LocalCache(100, ttl=200), id="lru-ttl"),
        pytest.param(lambda: LocalCache(maxbytes=4000), id="maxbytes"),
        pytest.param(lambda: LocalCache(50, policy="tinylfu"), id="tinylfu"),
    ],
)
def test_the_l1_fill_inserts_as_set_does(scenario: str, make: Any, tmp_path: Path) -> None:
    """A value read below lands in L1 as ``LocalCache.set`` after a missed lookup puts
    it (the compiled fill inserts a key its lookup just missed in one step when nothing
    stands in the way): the same entries in the same LRU order, the same counters, a
    deadline from the entry's remaining life (capped by L1's own TTL)."""
    a, b = _fill_scenario(scenario, make, tmp_path)
    assert list(a.items()) == list(b.items())
    assert a.stats == b.stats
    life = min(300.0, a.ttl if a.ttl is not None else math.inf)  # L1's own TTL caps it
    for key, value, left in a.__reduce__()[1][2]:
        assert left is not None, (key, value)
        assert life - 50 < left <= life, (key, value, left)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_value_too_large_for_l1_is_refused_by_the_fill(
    impl: Any, is_async: bool, tmp_path: Path
) -> None:
    """A value read below that L1's budget refuses (EntryTooLarge from its store) is
    returned, counted as ``l1_refused`` and not kept; any other error of the store (a
    weigher that fails) reaches the caller, as from ``LocalCache.set``. The compiled
    fill (a LocalCache of the core) and the general one (the pure twin's) alike."""
    big = list(range(1000))  # sys.getsizeof: ~8 kB, above maxbytes

    def weigh(key: str, value: Any) -> int:
        if key == "bad":
            raise RuntimeError("weigher failed")
        return 10_000 if value == big else 10

    local = impl.LocalCache(maxbytes=1000, weigher=weigh)
    writer = SQLiteTier(tmp_path / "s.db")
    with CacheManager(store=writer) as w:
        w.set("k", big, ttl=300)
        w.set("bad", 1, ttl=300)
        w.set("ok", 2, ttl=300)
    if is_async:

        async def main() -> tuple[Any, Any, int]:
            store = AsyncSQLiteTier(tmp_path / "s.db")
            async with AsyncCacheManager(local=local, store=store) as m:
                got = (await m.get("k"), await m.get("ok"))
                with pytest.raises(RuntimeError, match="weigher failed"):
                    await m.get("bad")
                return (*got, m.stats.l1_refused)

        value, ok, refused = _run(main())
    else:
        with CacheManager(local=local, store=SQLiteTier(tmp_path / "s.db")) as m:
            value, ok = m.get("k"), m.get("ok")
            with pytest.raises(RuntimeError, match="weigher failed"):
                m.get("bad")
            refused = m.stats.l1_refused
    assert (value, ok, refused) == (big, 2, 1)
    assert "k" not in local
    assert local.get("ok") == 2
