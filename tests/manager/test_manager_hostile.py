"""The hostile-input suite of both managers (issue 18), over real tiers: L1 + Redis +
SQLite (with an invalidation bus), L1 + Redis Cluster + PostgreSQL, and their asyncio
twins.

Odd keys, tags, values and TTLs; frames written straight into the tiers below (random
bytes, mutated frames, forged envelopes): every call works, or raises an error novacache
raises on purpose (``tests/_hostile.py``). A read never raises for a ``str`` key: a bad
frame is the default plus a counted fault. A write to healthy tiers never fails on a
tier: an odd key or tag is stored like any other.
"""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _hostile import (
    KEY_CHARS,
    KEYS,
    NON_STR_KEYS,
    ODD_VALUES,
    PLAIN_VALUES,
    TTLS,
    Driver,
)
from novacache import LocalCache
from novacache.codec import Codec
from novacache.errors import CodecError, NovaCacheError
from novacache.manager import AsyncCacheManager, CacheManager, InvalidationBus
from novacache.manager.envelope import open_envelope
from novacache.tiers import (
    AsyncPostgresTier,
    AsyncRedisTier,
    AsyncSQLiteTier,
    PostgresTier,
    RedisTier,
    SQLiteTier,
)
from tiers.redis_servers import Cluster, Standalone

HOSTILE = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CONFIGS = [
    "sync-redis-sqlite",
    "async-redis-sqlite",
    "sync-cluster-postgres",
    "async-cluster-postgres",
]


class Setup:
    """A manager under test, its tiers, and how to call them."""

    def __init__(self, manager: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        self.m = Driver(manager, loop)
        self.manager = manager
        self.loop = loop
        self.tiers = {slot: Driver(tier, loop) for slot, tier in manager._below}

    def load(self, value: Any) -> Any:
        """A loader returning ``value`` (a coroutine function for the async manager)."""
        if self.loop is None:
            return lambda: value

        async def loader() -> Any:
            return value

        return loader


def _build(config: str, request: pytest.FixtureRequest, base: Path) -> Setup:
    ns = f"mh-{uuid.uuid4().hex[:10]}:"
    is_async = config.startswith("async")
    loop = asyncio.new_event_loop() if is_async else None
    local = LocalCache(1000)
    if "cluster" in config:
        cluster: Cluster = request.getfixturevalue("redis_cluster")
        dsn: str = request.getfixturevalue("postgres_dsn")
        table = f"mh_{uuid.uuid4().hex[:10]}"
        if is_async:
            remote: Any = AsyncRedisTier(cluster.url, prefix=ns)
            store: Any = AsyncPostgresTier(dsn, table=table)
        else:
            remote, store = RedisTier(cluster.url, prefix=ns), PostgresTier(dsn, table=table)
        bus = None
    else:
        server: Standalone = request.getfixturevalue("redis_standalone")
        path = base / f"{ns[3:-1]}.db"
        if is_async:
            remote, store = AsyncRedisTier(server.url, prefix=ns), AsyncSQLiteTier(path)
        else:
            remote, store = RedisTier(server.url, prefix=ns), SQLiteTier(path)
        bus = InvalidationBus(RedisTier(server.url, prefix=ns))
    cls: Any = AsyncCacheManager if is_async else CacheManager
    manager = cls(local=local, remote=remote, store=store, on_write_error="report", bus=bus)
    return Setup(manager, loop)


@pytest.fixture(scope="module", params=CONFIGS)
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    s = _build(request.param, request, tmp_path_factory.mktemp("mhostile"))
    try:
        yield s
    finally:
        s.m("clear")
        s.m("close")
        if s.loop is not None:
            s.loop.close()


def _long_lived(ttl: Any) -> bool:
    return ttl is None or (type(ttl) in (int, float) and ttl >= 60)


def _corrupt(s: Setup) -> int:
    stats = s.manager.stats
    return stats.get("remote", "corrupt") + stats.get("store", "corrupt")


@HOSTILE
@given(
    key=KEYS, value=ODD_VALUES, ttl=TTLS, tags=st.lists(st.text(KEY_CHARS, max_size=6), max_size=2)
)
def test_any_key_value_ttl_and_tags(
    setup: Setup, key: str, value: Any, ttl: Any, tags: list[str]
) -> None:
    ok, report = setup.m.call("set", key, value, ttl, tags)
    if not ok:
        # Refused before anything was written: the value (CodecError), the TTL (ValueError,
        # TypeError). Never the key, never a tier.
        assert isinstance(report, (CodecError, ValueError, TypeError))
        return
    assert report.ok, report.failed  # healthy tiers take any str key and tag
    if not _long_lived(ttl):
        return
    got = setup.m("get", key, "absent")  # L1's live object (while the bus is healthy)
    if _plain(value):
        assert got == value
    setup.manager.local.clear()
    got = setup.m("get", key, "absent")
    if _plain(value):
        assert got == value  # decoded from L2
    setup.manager.local.clear()
    assert key in setup.m("get_many", [key, key + "\x00x"])
    if tags:
        assert setup.m("invalidate_tags", tags) >= 1
        assert setup.m("get", key, "absent") == "absent"
    else:
        assert setup.m("delete", key) is True
    assert setup.m("get_many", [key]) == {}


def _plain(value: Any) -> bool:
    """Whether the codec gives ``value`` back equal (msgpack's own types, no NaN, no
    tuple or set, no lone surrogate)."""
    if value is None or isinstance(value, (bool, bytes)):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if type(value) is list:
        return all(_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(k) and _plain(v) for k, v in value.items())
    return False


@HOSTILE
@given(key=KEYS, value=PLAIN_VALUES)
def test_reads_of_any_key_never_raise(setup: Setup, key: str, value: Any) -> None:
    ok, got = setup.m.call("get", key, "absent")
    assert ok, got
    ok, got = setup.m.call("get_many", [key, key * 2])
    assert ok, got
    ok, got = setup.m.call("get_or_load", key, setup.load(value), 300)
    assert ok, got
    assert got == value
    assert setup.m("get", key) == value  # stored, in spite of the key
    setup.m("delete", key)


@HOSTILE
@given(
    key=KEYS,
    slot=st.sampled_from(["remote", "store"]),
    forged=st.one_of(
        st.binary(max_size=64).map(lambda b: ("raw", b)),
        st.lists(
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.text(max_size=2),
                st.floats(allow_nan=True, allow_infinity=True),
            ),
            max_size=8,
        ).map(lambda env: ("envelope", env)),
        st.tuples(st.integers(0, 200), st.integers(0, 255)).map(lambda m: ("mutated", m)),
    ),
)
def test_forged_frames_below_are_counted_misses(
    setup: Setup, key: str, slot: str, forged: tuple[str, Any]
) -> None:
    kind, data = forged
    codec: Codec = setup.manager.codec
    if kind == "raw":
        frame = data
    elif kind == "envelope":
        frame = codec.encode(key, data)
    else:
        good = bytearray(codec.encode(key, [1, None, None, "the value"]))
        at, byte = data
        good[at % len(good)] ^= byte or 1
        frame = bytes(good)
    try:
        expected = open_envelope(codec.decode(key, frame))
        valid = True
    except (CodecError, ValueError):
        expected, valid = None, False
    setup.manager.local.clear()
    for other in setup.tiers.values():
        other("delete", key)
    setup.tiers[slot]("set", key, frame)
    before = _corrupt(setup)
    ok, got = setup.m.call("get", key, "default")
    assert ok, got
    if not valid:
        assert got == "default"
        assert _corrupt(setup) == before + 1
        ok, got = setup.m.call("get_or_load", key, setup.load("loaded"), 300)
        assert ok, got
        assert got == "loaded"
    elif expected is not None:
        assert got == expected.value
    setup.m("delete", key)


@HOSTILE
@given(key=NON_STR_KEYS, value=PLAIN_VALUES)
def test_non_str_keys_are_refused_or_ignored(setup: Setup, key: Any, value: Any) -> None:
    for name, args in (
        ("get", (key,)),
        ("get_many", ([key],)),
        ("set", (key, value)),
        ("delete", (key,)),
        ("get_or_load", (key, setup.load(value))),
    ):
        ok, got = setup.m.call(name, *args)
        if not ok:
            assert isinstance(got, (TypeError, NovaCacheError)), (name, got)


@HOSTILE
@given(
    items=st.dictionaries(KEYS, PLAIN_VALUES, min_size=1, max_size=5),
    tags=st.lists(st.text(KEY_CHARS, min_size=1, max_size=6), min_size=1, max_size=3),
)
def test_bulk_writes_and_tag_invalidation_with_odd_names(
    setup: Setup, items: dict[str, Any], tags: list[str]
) -> None:
    report = setup.m("set_many", items, 300, tags)
    assert report.ok, report.failed
    setup.manager.local.clear()
    assert setup.m("get_many", list(items)) == items
    assert setup.m("invalidate_tags", tags) == len(items)
    assert setup.m("get_many", list(items)) == {}
    assert setup.m("delete_many", list(items)) == 0


def test_the_issue_keys_through_both_managers(tmp_path: Path, redis_standalone: Standalone) -> None:
    """Issue 18's report, as it was written: a key from ``os.fsdecode`` through get,
    get_many, get_or_load (the loader runs), set (report) and delete, sync and async,
    on SQLite and on Redis."""
    key = os.fsdecode(b"report-\xff.csv")
    assert key == "report-\udcff.csv"
    for tiers in (
        {"store": SQLiteTier(tmp_path / "a.db")},
        {"remote": RedisTier(redis_standalone.url, prefix=f"i-{uuid.uuid4().hex}:")},
    ):
        with CacheManager(local=LocalCache(10), on_write_error="report", **tiers) as m:
            assert m.get(key) is None
            assert m.get_many([key]) == {}
            assert m.get_or_load(key, lambda: "loaded") == "loaded"
            assert m.set(key, "set").ok
            m.local.clear()  # type: ignore[union-attr]
            assert m.get(key) == "set"
            assert m.delete(key) is True

    async def main() -> None:
        for tiers in (
            {"store": AsyncSQLiteTier(tmp_path / "b.db")},
            {"remote": AsyncRedisTier(redis_standalone.url, prefix=f"i-{uuid.uuid4().hex}:")},
        ):
            async with AsyncCacheManager(
                local=LocalCache(10), on_write_error="report", **tiers
            ) as m:
                assert await m.get(key) is None
                assert await m.get_many([key]) == {}

                async def load() -> str:
                    return "loaded"

                assert await m.get_or_load(key, load) == "loaded"
                assert (await m.set(key, "set")).ok
                m.local.clear()  # type: ignore[union-attr]
                assert await m.get(key) == "set"
                assert await m.delete(key) is True

    asyncio.run(asyncio.wait_for(main(), 30))


def test_decorator_keys_from_a_repr_with_a_lone_surrogate(embedded: CacheManager) -> None:
    class Odd:
        def __repr__(self) -> str:
            return "odd-\udcff" * 40  # long: the default key becomes a digest of it

    @embedded.cached(ttl=60)
    def f(x: Odd) -> int:
        return 7

    assert f(Odd()) == 7
    assert f(Odd()) == 7
