"""The tier contract as tests: every tier (Redis, SQLite, PostgreSQL) runs these.

A test module binds them to one tier by subclassing and providing two fixtures:

    class TestSQLiteContract(TierContract):
        @pytest.fixture
        def tier(self, tmp_path): ...           # a fresh, empty tier; closed afterwards

        @pytest.fixture
        def advance(self):                       # moves the tier's clock forward
            return clock.advance                 # (a server-side clock: time.sleep)

The async twin, ``AsyncTierContract``, takes ``atier``: an async factory returning a
fresh tier (each test runs in its own event loop with ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from novacache.errors import TierError
from novacache.tiers import AsyncTier, Tier

FRAME = b"\x00\x01frame\xff" * 10
# Keys that once broke a tier; distinct as str, so they must stay distinct in every tier.
ODD_KEYS = [
    os.fsdecode(b"report-\xff.csv"),  # "report-\udcff.csv": a lone surrogate
    "report-\udcff\udcfe.csv",
    "report-\xff.csv",  # the same name decoded as Latin-1: must not collide
    "report-\u00ff.csv\ud800",
    "\ud83d\ude00",  # a surrogate pair as two code points ...
    "\U0001f600",  # ... is not the character it would pair to
    "nul\x00in\x00the\x00middle",
    "\x00",
    "ctl\x01\x1f\x7f\x1b[0m\r\n\t",
    "\x1ftag:x",
    "\x1elease:x",
    "\uffff",
    "\uffff0",  # the PostgreSQL spelling of NUL: must not collide with "\x00"
    "\ue000",
    "big:" + "\u00e9k" * 7000,  # 21 kB of UTF-8
    "*?[]\\{hash}",
    "",
]


class TierContract:
    """Synchronous contract; subclasses provide ``tier`` and ``advance`` fixtures."""

    #: Whether the tier has ``set_if_many`` (else the manager calls ``set_if`` per key).
    SET_IF_MANY = True
    #: Whether the tier has ``tombstone_groups`` (else the manager calls
    #: ``tombstone_many`` per group).
    TOMBSTONE_GROUPS = True

    def test_is_a_tier(self, tier: Tier) -> None:
        assert isinstance(tier, Tier)
        assert isinstance(tier.name, str)
        assert tier.name

    def test_get_set_roundtrip_bytes_exactly(self, tier: Tier) -> None:
        assert tier.get("k") is None
        tier.set("k", FRAME)
        assert tier.get("k") == FRAME
        tier.set("empty", b"")
        assert tier.get("empty") == b""
        big = bytes(range(256)) * 4096  # 1 MiB, every byte value
        tier.set("big", big)
        assert tier.get("big") == big

    def test_overwrite_replaces_frame(self, tier: Tier) -> None:
        tier.set("k", b"one")
        tier.set("k", b"two")
        assert tier.get("k") == b"two"

    def test_unicode_keys(self, tier: Tier) -> None:
        keys = ["ключ", "键/子键", "emoji:\U0001f600", "space key", "a:b:c"]
        for i, k in enumerate(keys):
            tier.set(k, bytes([i]))
        for i, k in enumerate(keys):
            assert tier.get(k) == bytes([i])

    def test_every_str_key_works(self, tier: Tier) -> None:
        """Issue 18: keys with lone surrogates (what ``os.fsdecode`` gives for undecodable
        names), NUL, control characters, the escape U+FFFF and 20 kB keys are stored, read,
        listed by ``scan`` exactly as written and deleted; none collides with another."""
        items = {k: f"v{i}".encode() for i, k in enumerate(ODD_KEYS)}
        for key, frame in items.items():
            tier.set(key, frame)
        assert {k: tier.get(k) for k in items} == items
        assert tier.get_many([*items, "absent"]) == items
        assert sorted(tier.scan()) == sorted(items)
        assert sorted(tier.scan("report-*")) == sorted(k for k in items if k[:7] == "report-")
        assert list(tier.scan(ODD_KEYS[0])) == [ODD_KEYS[0]]
        assert tier.ttl(ODD_KEYS[0]) == math.inf
        assert tier.delete(ODD_KEYS[0]) is True
        assert tier.get(ODD_KEYS[0]) is None
        assert tier.delete_many(ODD_KEYS) == len(ODD_KEYS) - 1
        tier.set_many(items, ttl=60)
        assert tier.get_many(ODD_KEYS) == items

    def test_delete(self, tier: Tier) -> None:
        tier.set("k", FRAME)
        assert tier.delete("k") is True
        assert tier.get("k") is None
        assert tier.delete("k") is False

    def test_many(self, tier: Tier) -> None:
        items = {f"m:{i}": f"v{i}".encode() for i in range(250)}
        tier.set_many(items)
        got = tier.get_many([*items, "absent:1", "absent:2"])
        assert got == items
        assert tier.get_many([]) == {}
        assert tier.delete_many(["m:0", "m:1", "absent"]) == 2
        assert tier.get_many(["m:0", "m:1", "m:2"]) == {"m:2": b"v2"}
        assert tier.delete_many([]) == 0

    def test_ttl_expiry(self, tier: Tier, advance: Callable[[float], None]) -> None:
        tier.set("short", FRAME, ttl=0.3)
        tier.set("long", FRAME, ttl=3600)
        tier.set("forever", FRAME)
        remaining = tier.ttl("short")
        assert remaining is not None
        assert 0 < remaining <= 0.3
        long_left = tier.ttl("long")
        assert long_left is not None
        assert 3500 < long_left <= 3600
        assert tier.ttl("forever") == math.inf
        assert tier.ttl("absent") is None
        advance(0.6)
        assert tier.get("short") is None
        assert tier.get_many(["short", "long"]) == {"long": FRAME}
        assert tier.ttl("short") is None
        assert "short" not in set(tier.scan("*"))
        assert tier.get("forever") == FRAME

    def test_set_many_ttl_and_overwrite_resets_ttl(
        self, tier: Tier, advance: Callable[[float], None]
    ) -> None:
        tier.set_many({"a": b"1", "b": b"2"}, ttl=0.3)
        tier.set("a", b"again")  # no TTL any more
        advance(0.6)
        assert tier.get("a") == b"again"
        assert tier.get("b") is None

    def test_expired_keys_are_not_deleted_or_counted(
        self, tier: Tier, advance: Callable[[float], None]
    ) -> None:
        tier.set_many({"gone:1": FRAME, "gone:2": FRAME}, ttl=0.3)
        tier.set("kept", FRAME)
        advance(0.6)
        assert tier.delete("gone:1") is False
        assert tier.delete_many(["gone:2", "kept", "absent"]) == 1
        assert tier.get("kept") is None
        assert list(tier.scan("gone:*")) == []

    def test_set_if_stores_only_over_what_the_writer_saw(
        self, tier: Tier, advance: Callable[[float], None]
    ) -> None:
        """The conditional write of the manager's write-backs (docs/consistency.md)."""
        set_if: Any = getattr(tier, "set_if")  # noqa: B009 (not in the Tier protocol)
        assert set_if("c", b"one", 60, expect=None) is True  # absent, as seen
        assert tier.get("c") == b"one"
        assert set_if("c", b"two", 60, expect=None) is False  # not absent any more
        assert set_if("c", b"two", 60, expect=b"other") is False  # not what was seen
        assert tier.get("c") == b"one"
        assert set_if("c", b"two", None, expect=b"one") is True
        assert tier.get("c") == b"two"
        assert tier.ttl("c") == math.inf
        assert set_if("gone", b"x", 60, expect=b"seen") is False  # absent: not as seen
        assert tier.get("gone") is None
        tier.set("old", FRAME, ttl=0.3)
        advance(0.6)
        assert set_if("old", b"new", 0.3, expect=None) is True  # expired counts as absent
        assert tier.get("old") == b"new"
        advance(0.6)
        assert tier.get("old") is None  # with the TTL given

    def test_set_if_many_is_set_if_of_each_key(
        self, tier: Tier, advance: Callable[[float], None]
    ) -> None:
        """The promotions of a ``get_many`` (docs/consistency.md): each key stored only
        over what the writer saw there, with its own TTL."""
        many: Any = getattr(tier, "set_if_many", None)
        if not self.SET_IF_MANY:
            assert many is None  # the manager falls back to set_if per key
            return
        tier.set("a", b"one")
        tier.set("c", b"x")
        tier.set("old", FRAME, ttl=0.3)
        advance(0.6)
        stored = many(
            {
                "a": (b"A2", 60, b"one"),  # as seen: stored
                "b": (b"B1", None, None),  # absent, as seen: stored, no expiry
                "c": (b"C2", 60, b"other"),  # not what was seen
                "d": (b"D1", 60, b"seen"),  # absent: not as seen
                "e": (b"E1", 60, b"x"),  # absent: not as seen
                "old": (b"O2", 0.3, None),  # expired counts as absent
            }
        )
        assert stored == {"a", "b", "old"}
        assert tier.get_many(["a", "b", "c", "d", "e", "old"]) == {
            "a": b"A2",
            "b": b"B1",
            "c": b"x",
            "old": b"O2",
        }
        assert tier.ttl("b") == math.inf
        assert 0 < (tier.ttl("a") or 0) <= 60
        assert many({}) == set()
        advance(0.6)
        assert tier.get("old") is None  # with the TTL given

    def test_tombstones_replace_entries_and_count_the_live_ones(
        self, tier: Tier, advance: Callable[[float], None]
    ) -> None:
        mark: Any = getattr(tier, "tombstone_many")  # noqa: B009
        tomb = b"NT" + bytes(12)
        tier.set_many({"t:1": FRAME, "t:2": FRAME})
        tier.set("t:3", FRAME, ttl=0.3)
        advance(0.6)
        assert mark(["t:1", "t:2", "t:3", "t:absent"], tomb, 0.3) == 2
        assert tier.get_many(["t:1", "t:2", "t:3", "t:absent"]) == dict.fromkeys(
            ["t:1", "t:2", "t:3", "t:absent"], tomb
        )
        assert mark(["t:1"], tomb, 0.3) == 0  # a tombstone is no live entry
        assert mark([], tomb, 0.3) == 0
        advance(0.6)
        assert tier.get_many(["t:1", "t:2", "t:3", "t:absent"]) == {}

    def test_tombstone_groups_count_each_group_once(
        self, tier: Tier, advance: Callable[[float], None]
    ) -> None:
        """``tombstone_groups`` (coalesced invalidations) is ``tombstone_many`` of each
        group in one call: a key two groups name counts in the first."""
        grouped: Any = getattr(tier, "tombstone_groups", None)
        if not self.TOMBSTONE_GROUPS:
            assert grouped is None  # the manager falls back to tombstone_many per group
            return
        tomb = b"NT" + bytes(12)
        tier.set_many({"g:1": FRAME, "g:2": FRAME, "g:3": FRAME})
        tier.set("g:old", FRAME, ttl=0.3)
        advance(0.6)
        groups = [["g:1", "g:absent"], ["g:1", "g:2", "g:2"], [], ["g:old", "g:3"]]
        assert grouped(groups, tomb, 0.3) == [1, 1, 0, 1]
        named = ["g:1", "g:2", "g:3", "g:old", "g:absent"]
        assert tier.get_many(named) == dict.fromkeys(named, tomb)
        assert grouped([["g:1"], ["g:2"]], tomb, 0.3) == [0, 0]  # tombstones: not live
        assert grouped([], tomb, 0.3) == []
        advance(0.6)
        assert tier.get_many(named) == {}

    def test_bad_ttl_is_refused(self, tier: Tier) -> None:
        for bad in (0, -1, math.nan):
            with pytest.raises(ValueError):
                tier.set("k", FRAME, ttl=bad)
        assert tier.get("k") is None

    def test_scan_glob(self, tier: Tier) -> None:
        for k in ("user:1", "user:2", "user:10", "team:1", "user*star", "u[x]"):
            tier.set(k, b"x")
        assert sorted(tier.scan("user:?")) == ["user:1", "user:2"]
        assert sorted(tier.scan("user:*")) == ["user:1", "user:10", "user:2"]
        assert sorted(tier.scan("user\\*star")) == ["user*star"]
        assert sorted(tier.scan("u\\[x\\]")) == ["u[x]"]
        assert sorted(tier.scan("team:[0-9]")) == ["team:1"]
        assert len(list(tier.scan())) == 6

    def test_scan_many_keys_each_once(self, tier: Tier) -> None:
        tier.set_many({f"s:{i}": b"." for i in range(2500)})
        keys = list(tier.scan("s:*"))
        assert len(keys) == len(set(keys)) == 2500

    def test_clear(self, tier: Tier) -> None:
        tier.set_many({f"c:{i}": b"." for i in range(50)})
        tier.clear()
        assert list(tier.scan()) == []
        assert tier.get("c:1") is None
        tier.set("after", b"ok")
        assert tier.get("after") == b"ok"

    def test_ping(self, tier: Tier) -> None:
        rtt = tier.ping()
        assert isinstance(rtt, float)
        assert 0 <= rtt < 5

    def test_rejects_non_bytes_frames(self, tier: Tier) -> None:
        with pytest.raises(TypeError):
            tier.set("k", "not bytes")  # type: ignore[arg-type]
        assert tier.get("k") is None

    def test_close_twice_is_harmless(self, tier: Tier) -> None:
        tier.close()
        tier.close()

    def test_errors_are_tier_errors(self) -> None:
        assert issubclass(TierError, Exception)


def _run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


AsyncFactory = Callable[[], Awaitable[AsyncTier]]


class AsyncTierContract:
    """The asyncio contract; subclasses provide ``atier`` (an async factory) and
    ``advance`` (a plain function that moves the tier's clock)."""

    #: Whether the tier has ``set_if_many`` (else the manager calls ``set_if`` per key).
    SET_IF_MANY = True
    #: Whether the tier has ``tombstone_groups`` (else the manager calls
    #: ``tombstone_many`` per group).
    TOMBSTONE_GROUPS = True

    def test_async_roundtrip(self, atier: AsyncFactory) -> None:
        async def go() -> None:
            t = await atier()
            try:
                assert isinstance(t, AsyncTier)
                assert await t.get("k") is None
                await t.set("k", FRAME)
                assert await t.get("k") == FRAME
                await t.set_many({"a": b"1", "b": b"2"})
                assert await t.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"2"}
                assert await t.delete("a") is True
                assert await t.delete("a") is False
                assert await t.delete_many(["b", "k", "zz"]) == 2
                assert await t.ttl("zz") is None
                await t.set("f", b"x")
                assert await t.ttl("f") == math.inf
                assert [k async for k in t.scan("f*")] == ["f"]
                assert isinstance(await t.ping(), float)
                await t.clear()
                assert [k async for k in t.scan()] == []
            finally:
                await t.close()

        _run(go())

    def test_async_every_str_key_works(self, atier: AsyncFactory) -> None:
        async def go() -> None:
            t = await atier()
            try:
                items = {k: f"v{i}".encode() for i, k in enumerate(ODD_KEYS)}
                for key, frame in items.items():
                    await t.set(key, frame)
                assert {k: await t.get(k) for k in items} == items
                assert await t.get_many([*items, "absent"]) == items
                assert sorted([k async for k in t.scan()]) == sorted(items)
                assert [k async for k in t.scan(ODD_KEYS[0])] == [ODD_KEYS[0]]
                assert await t.ttl(ODD_KEYS[0]) == math.inf
                assert await t.delete(ODD_KEYS[0]) is True
                assert await t.delete_many(ODD_KEYS) == len(ODD_KEYS) - 1
                await t.set_many(items, ttl=60)
                assert await t.get_many(ODD_KEYS) == items
            finally:
                await t.close()

        _run(go())

    def test_async_set_if_and_tombstones(self, atier: AsyncFactory) -> None:
        async def go() -> None:
            t: Any = await atier()
            try:
                assert await t.set_if("c", b"one", 60, expect=None) is True
                assert await t.set_if("c", b"two", 60, expect=None) is False
                assert await t.set_if("c", b"two", 60, expect=b"one") is True
                assert await t.get("c") == b"two"
                tomb = b"NT" + bytes(12)
                assert await t.tombstone_many(["c", "d"], tomb, 60) == 1
                assert await t.get_many(["c", "d"]) == {"c": tomb, "d": tomb}
                assert await t.set_if("c", b"three", 60, expect=tomb) is True
            finally:
                await t.close()

        _run(go())

    def test_async_tombstone_groups(self, atier: AsyncFactory) -> None:
        async def go() -> None:
            t: Any = await atier()
            try:
                grouped = getattr(t, "tombstone_groups", None)
                if not self.TOMBSTONE_GROUPS:
                    assert grouped is None
                    return
                tomb = b"NT" + bytes(12)
                await t.set_many({"a": b"1", "b": b"2"})
                assert await grouped([["a", "x"], ["a", "b"], []], tomb, 60) == [1, 1, 0]
                assert await t.get_many(["a", "b", "x"]) == dict.fromkeys(["a", "b", "x"], tomb)
                assert await grouped([["a"]], tomb, 60) == [0]
            finally:
                await t.close()

        _run(go())

    def test_async_set_if_many(self, atier: AsyncFactory) -> None:
        async def go() -> None:
            t: Any = await atier()
            try:
                many = getattr(t, "set_if_many", None)
                if not self.SET_IF_MANY:
                    assert many is None  # the manager falls back to set_if per key
                    return
                await t.set("a", b"one")
                tomb = b"NT" + bytes(12)
                assert await t.tombstone_many(["t"], tomb, 60) == 0
                stored = await many(
                    {
                        "a": (b"A2", 60, b"one"),
                        "b": (b"B1", None, None),
                        "t": (b"T1", 60, None),  # a tombstone is not absent
                        "u": (b"U1", 60, b"one"),
                    }
                )
                assert stored == {"a", "b"}
                assert await t.get_many(["a", "b", "t", "u"]) == {
                    "a": b"A2",
                    "b": b"B1",
                    "t": tomb,
                }
            finally:
                await t.close()

        _run(go())

    def test_async_ttl_expiry(self, atier: AsyncFactory, advance: Callable[[float], None]) -> None:
        async def go() -> None:
            t = await atier()
            try:
                await t.set("short", FRAME, ttl=0.3)
                advance(0.6)
                assert await t.get("short") is None
            finally:
                await t.close()

        _run(go())

    def test_async_concurrent_gets(self, atier: AsyncFactory) -> None:
        async def go() -> None:
            t = await atier()
            try:
                await t.set_many({f"c:{i}": str(i).encode() for i in range(100)})
                got = await asyncio.gather(*(t.get(f"c:{i}") for i in range(100)))
                assert got == [str(i).encode() for i in range(100)]
            finally:
                await t.close()

        _run(go())
