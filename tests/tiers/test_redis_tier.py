"""RedisTier beyond the shared contract: configuration, namespaces, bad input, lease lock,
tag index, publish/subscribe, hash tags, Cluster MGET grouping and replica reads."""

from __future__ import annotations

import array
import asyncio
import math
import os
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from novacache.errors import ConfigurationError, EntryTooLarge, TierError, TierUnavailable
from novacache.tiers import RedisConfig, Tier
from novacache.tiers import _redis_base as redis_tier  # its limits are patched
from novacache.tiers.redis import AsyncRedisTier, RedisTier, hash_tag

from .redis_servers import Cluster, SentinelSet, Standalone, wait_until


def _prefix() -> str:
    return f"x-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def tier(redis_standalone: Standalone) -> Iterator[RedisTier]:
    t = RedisTier(redis_standalone.url, prefix=_prefix())
    yield t
    t.clear()
    t.close()


@pytest.fixture
def raw(redis_standalone: Standalone) -> Iterator[Any]:
    """A bare redis-py client on the same server (to see what the tier really stored)."""
    client = redis_standalone.server.client()
    yield client
    client.close()


# -- configuration --------------------------------------------------------------------


def test_config_from_urls() -> None:
    c = RedisConfig.from_url("redis://app:p%40ss@127.0.0.1:1234/2?timeout=0.1&retries=0")
    assert (c.topology, c.host, c.port, c.db, c.username, c.password) == (
        "standalone",
        "127.0.0.1",
        1234,
        2,
        "app",
        "p@ss",
    )
    assert (c.timeout, c.retries) == (0.1, 0)
    assert "p@ss" not in repr(c)
    tls = RedisConfig.from_url("rediss://h:7000?ssl_ca_certs=/ca.pem&ssl_check_hostname=no")
    assert tls.ssl
    assert tls.ssl_ca_certs == "/ca.pem"
    assert not tls.ssl_check_hostname
    unix = RedisConfig.from_url("unix:///run/redis.sock?db=3")
    assert (unix.unix_socket_path, unix.db) == ("/run/redis.sock", 3)
    s = RedisConfig.from_url("redis+sentinel://:pw@10.0.0.1:5000,10.0.0.2/mymaster/1")
    assert s.topology == "sentinel"
    assert s.sentinels == (("10.0.0.1", 5000), ("10.0.0.2", 26379))
    assert (s.service_name, s.db, s.password) == ("mymaster", 1, "pw")
    cl = RedisConfig.from_url("redis+cluster://a:7000,b:7001?read_from_replicas=1", timeout=2)
    assert cl.startup_nodes == (("a", 7000), ("b", 7001))
    assert cl.read_from_replicas
    assert cl.timeout == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1",
        "redis://127.0.0.1?bogus=1",
        "redis://127.0.0.1:notaport",
        "redis+sentinel://127.0.0.1:5000",  # no master name
        "redis://127.0.0.1?timeout=0",
        "redis+cluster://127.0.0.1:7000/3",
    ],
)
def test_bad_config_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisConfig.from_url(url)


def test_bad_config_message_hides_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisConfig.from_url("redis://u:hunter2@127.0.0.1:99999")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2@[::1/0",  # the case: urlsplit's ValueError, raw
        "redis://u:hunter2@[::1]x:6379/0",
        "redis://u:hunter2@h\uff03x:1/0",  # invalid under NFKC: urlsplit names the netloc
        "redis://u:hunter2@h:1/0?timeout=inf",
        "redis://u:hunter2@h:1/0?timeout=nan",
        "redis://u:hunter2@h:1/-1",
        "redis+sentinel://u:hunter2@[::1/m",
    ],
)
def test_malformed_url_is_a_configuration_error_without_the_secret(url: str) -> None:
    """Issue 18: nothing but ``ConfigurationError``, whose message, traceback and chained
    causes never repeat the password (nor the URL)."""
    for build in (RedisConfig.from_url, RedisTier, AsyncRedisTier):
        with pytest.raises(ConfigurationError) as info:
            build(url)
        said = "".join(traceback.format_exception(info.value)) + repr(info.value)
        assert "hunter2" not in said
        assert info.value.__cause__ is None


@pytest.mark.parametrize("config", [b"redis://127.0.0.1:6379/0", 6379, ["redis://h"]])
def test_config_of_the_wrong_type_is_a_type_error_naming_it(config: Any) -> None:
    for cls in (RedisTier, AsyncRedisTier):
        with pytest.raises(TypeError, match="config must be a RedisConfig, a URL str or None"):
            cls(config)
    with pytest.raises(TypeError, match="Redis URL must be str"):
        RedisConfig.from_url(config)


@pytest.mark.parametrize(
    "options",
    [
        {"port": "6379"},
        {"port": True},
        {"timeout": "1"},
        {"db": 0.5},
        {"password": 1},
        {"host": None},
        {"retries": None},
        {"sentinels": "h:1"},
        {"prefix": 1},
    ],
    ids=repr,
)
def test_option_of_the_wrong_type_is_a_type_error(options: dict[str, Any]) -> None:
    """Caught when the tier is built, not as a bare error from deep inside redis-py on
    the first call."""
    with pytest.raises(TypeError):
        RedisTier(**options)


@pytest.mark.parametrize(
    "options",
    [
        {"port": 0},
        {"port": 70000},
        {"db": -1},
        {"timeout": math.inf},
        {"connect_timeout": math.nan},
        {"backoff_cap": math.inf},
        {"health_check_interval": math.inf},
    ],
    ids=repr,
)
def test_option_out_of_range_is_a_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RedisTier(**options)


def test_prefix_with_braces_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        RedisTier(prefix="{app}:")


def test_options_override_url(redis_standalone: Standalone) -> None:
    t = RedisTier(redis_standalone.url, prefix=_prefix(), timeout=0.2, client_name="nc-test")
    try:
        assert t.config.timeout == 0.2
        t.set("k", b"v")
        client = redis_standalone.server.client()
        try:
            names = {c["name"] for c in client.client_list()}
        finally:
            client.close()
        assert "nc-test" in names
        assert isinstance(t, Tier)
    finally:
        t.clear()
        t.close()


def test_unix_socket(redis_standalone: Standalone, raw: Any) -> None:
    prefix = _prefix()
    with RedisTier(redis_standalone.unix_url, prefix=prefix) as t:
        t.set("k", b"over a socket")
        assert raw.get(prefix + "k") == b"over a socket"
        t.clear()


# -- namespace -------------------------------------------------------------------------


def test_keys_are_stored_under_the_prefix(tier: RedisTier, raw: Any) -> None:
    tier.set("k", b"v", ttl=60)
    assert raw.get(tier.prefix + "k") == b"v"
    assert 59_000 < raw.pttl(tier.prefix + "k") <= 60_000


def test_clear_and_scan_stay_inside_the_namespace(redis_standalone: Standalone, raw: Any) -> None:
    a = RedisTier(redis_standalone.url, prefix=_prefix())
    b = RedisTier(redis_standalone.url, prefix=a.prefix[:-1] + "b:")
    outside = a.prefix[:-1]  # shares the text but not the separator
    try:
        raw.set(outside, b"keep")
        a.set_many({"1": b"a", "2": b"a"})
        b.set("1", b"b")
        assert sorted(a.scan()) == ["1", "2"]
        a.clear()
        assert list(a.scan()) == []
        assert b.get("1") == b"b"
        assert raw.get(outside) == b"keep"
    finally:
        raw.delete(outside)
        b.clear()
        a.close()
        b.close()


def test_glob_characters_in_the_prefix_are_literal(redis_standalone: Standalone) -> None:
    tag = uuid.uuid4().hex[:8]
    star = RedisTier(redis_standalone.url, prefix=f"p*[{tag}]?:")
    plain = RedisTier(redis_standalone.url, prefix=f"pX{tag}Y:")
    try:
        star.set("k", b"1")
        plain.set("k", b"2")
        assert list(star.scan()) == ["k"]
        star.clear()
        assert plain.get("k") == b"2"
    finally:
        plain.clear()
        star.close()
        plain.close()


# -- bad input and foreign data ---------------------------------------------------------


def test_key_holding_another_type_is_a_clear_error(tier: RedisTier, raw: Any) -> None:
    raw.rpush(tier.prefix + "list", b"x")
    with pytest.raises(TierError, match="WRONGTYPE") as info:
        tier.get("list")
    assert not isinstance(info.value, TierUnavailable)
    assert tier.breaker.state == "closed"
    # get_many reads a foreign type as absent (MGET answers nil for it).
    assert tier.get_many(["list"]) == {}


def test_bad_keys_and_ttls(tier: RedisTier) -> None:
    with pytest.raises(TypeError):
        tier.get(b"bytes key")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tier.set("k", b"v", ttl="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tier.set_many({"a": b"1"}, ttl=-1)
    with pytest.raises(TypeError):
        tier.set_many({"a": b"1", "b": "2"})  # type: ignore[dict-item]
    assert tier.get_many(["a", "b"]) == {}


def test_oversized_frame_is_refused_before_sending(
    tier: RedisTier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tier, "_max_bulk", 1024)  # Redis' limit, 512 MiB, made small
    with pytest.raises(EntryTooLarge, match="more than maxbytes=1024"):
        tier.set("k", b"x" * 1025)
    with pytest.raises(EntryTooLarge):
        tier.set_many({"k": b"x" * 1025})
    with pytest.raises(EntryTooLarge):
        tier.set("k", memoryview(array.array("q", [0] * 129)))  # 1032 bytes, 129 items
    with pytest.raises(EntryTooLarge):
        tier.get("k" * 1025)
    assert tier.get("k") is None


def test_infinite_and_tiny_ttls(tier: RedisTier) -> None:
    tier.set("inf", b"v", ttl=math.inf)
    assert tier.ttl("inf") == math.inf
    tier.set("tiny", b"v", ttl=1e-6)  # rounds up to Redis' 1 ms, never to "no expiry"
    remaining = tier.ttl("tiny")  # gone already, or at most the 1 ms (0 just before expiry)
    assert remaining is None or 0.0 <= remaining <= 0.001


def test_ttl_may_be_any_real_number(tier: RedisTier) -> None:
    tier.set("dec", b"v", ttl=Decimal("60.5"))
    tier.set("frac", b"v", ttl=Fraction(121, 2))
    for key in ("dec", "frac"):
        left = tier.ttl(key)
        assert left is not None
        assert 59 < left <= 60.5


def test_frames_may_be_bytearray_or_memoryview(tier: RedisTier) -> None:
    tier.set("ba", bytearray(b"abc"))
    tier.set("mv", memoryview(b"xyz"))
    assert tier.get_many(["ba", "mv"]) == {"ba": b"abc", "mv": b"xyz"}


def test_calls_on_a_closed_tier_fail_cleanly(redis_standalone: Standalone) -> None:
    t = RedisTier(redis_standalone.url, prefix=_prefix())
    t.close()
    for _ in range(10):
        with pytest.raises(TierUnavailable, match="closed"):
            t.get("k")
    assert t.breaker.state == "closed"  # our own refusal is not a server failure


# -- lease lock --------------------------------------------------------------------------


def test_lease_lock(tier: RedisTier, raw: Any) -> None:
    tier.set("lock", b"the entry")
    token = tier.acquire_lease("lock", ttl=10)
    assert token is not None
    assert tier.acquire_lease("lock", ttl=10) is None
    assert tier.release_lease("lock", "not-the-token") is False
    assert 0 < _lease_pttl(raw, tier, "lock") <= 10_000
    # The lease lives beside the key space: the entry "lock" is untouched, and a scan
    # never returns the lease.
    assert tier.get("lock") == b"the entry"
    assert list(tier.scan("*")) == ["lock"]
    assert tier.release_lease("lock", token) is True
    assert _lease_pttl(raw, tier, "lock") == -2
    assert tier.release_lease("lock", token) is False
    assert tier.acquire_lease("lock", ttl=10) is not None


def test_expired_lease_is_not_released_by_its_old_holder(tier: RedisTier, raw: Any) -> None:
    old = tier.acquire_lease("lock", ttl=0.1)
    assert old is not None
    wait_until(lambda: _lease_pttl(raw, tier, "lock") == -2, 5, "the lease to expire")
    new = tier.acquire_lease("lock", ttl=10)
    assert new is not None
    assert tier.release_lease("lock", old) is False
    assert tier.acquire_lease("lock", ttl=10) is None
    with pytest.raises(ValueError):
        tier.acquire_lease("other", ttl=math.inf)


# -- tag index ---------------------------------------------------------------------------


def test_tag_index(tier: RedisTier) -> None:
    tier.set_many({"vm:1": b"a", "vm:2": b"b", "host:1": b"c"})
    tier.tag_add("host-1", ["vm:1", "vm:2"], ttl=60)
    tier.tag_add("host-1", ["vm:3"])  # recorded even if never written
    assert tier.tag_members("host-1") == {"vm:1", "vm:2", "vm:3"}
    assert sorted(tier.scan()) == ["host:1", "vm:1", "vm:2"]  # the index is not a key
    assert tier.tag_invalidate("host-1") == 2
    assert tier.get_many(["vm:1", "vm:2", "host:1"]) == {"host:1": b"c"}
    assert tier.tag_members("host-1") == set()
    tier.tag_add("t", ["host:1"])
    tier.clear()  # the index goes with the namespace
    assert tier.tag_members("t") == set()


def _tag_pttl(raw: Any, tier: RedisTier | AsyncRedisTier, tag: str) -> int:
    """PTTL of the tag's index set, read with a bare client (-1: no expiry, -2: absent)."""
    return int(raw.pttl(tier.prefix.encode() + b"\xfftag:" + tag.encode()))


def _lease_pttl(raw: Any, tier: RedisTier, key: str) -> int:
    """PTTL of the lease of ``key``, read with a bare client (-2: absent)."""
    return int(raw.pttl(tier.prefix.encode() + b"\xfflease:" + key.encode()))


def test_tag_set_expiry_follows_the_longest_member_ttl_and_never_shrinks(
    tier: RedisTier, raw: Any
) -> None:
    tier.tag_add("t", ["a"], ttl=30)
    first = _tag_pttl(raw, tier, "t")
    assert 30_000 <= first <= 31_000  # the TTL plus at most a second of slack
    tier.tag_add("t", ["b"], ttl=5)  # shorter: the set keeps its expiry
    assert first - 1_000 <= _tag_pttl(raw, tier, "t") <= first
    tier.tag_add("t", ["c"], ttl=120)  # longer: the set lives longer
    assert 120_000 <= _tag_pttl(raw, tier, "t") <= 121_000
    tier.tag_add("t", ["d"], ttl=1)
    assert _tag_pttl(raw, tier, "t") >= 119_000
    assert tier.tag_members("t") == {"a", "b", "c", "d"}


def test_tag_set_without_ttl_member_never_expires(tier: RedisTier, raw: Any) -> None:
    tier.tag_add("t", ["a"], ttl=30)
    tier.tag_add("t", ["b"])  # a member without TTL: the set must outlive any TTL
    assert _tag_pttl(raw, tier, "t") == -1
    tier.tag_add("t", ["c"], ttl=60)  # GT never applies to a set without expiry
    assert _tag_pttl(raw, tier, "t") == -1
    tier.tag_add("u", ["x"])
    assert _tag_pttl(raw, tier, "u") == -1
    assert tier.tag_members("t") == {"a", "b", "c"}


def test_tag_set_of_expired_entries_goes_away(tier: RedisTier, raw: Any) -> None:
    tier.tag_add("gone", ["a", "b"], ttl=0.001)  # expires 1 ms plus the slack later
    wait_until(lambda: _tag_pttl(raw, tier, "gone") == -2, timeout=3, what="tag set expiry")
    assert tier.tag_members("gone") == set()


def test_tag_add_of_many_keys_is_batched(tier: RedisTier, raw: Any) -> None:
    keys = [f"k:{i}" for i in range(2_500)]  # more than one script call
    tier.tag_add("big", keys, ttl=60)
    assert tier.tag_members("big") == set(keys)
    assert 60_000 <= _tag_pttl(raw, tier, "big") <= 61_000


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_async_tag_index_shares_the_sync_sets(
    topology: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(f"redis_{topology}")
    ns = _prefix()
    sync = RedisTier(server.url, prefix=ns)

    async def go() -> None:
        async with AsyncRedisTier(server.url, prefix=ns) as t:
            await t.set_many({f"vm:{i}": b"v" for i in range(20)})  # many slots
            await t.tag_add("host-1", [f"vm:{i}" for i in range(10)], ttl=60)
            sync.tag_add("host-1", ["vm:10"], ttl=5)
            assert await t.tag_members("host-1") == {f"vm:{i}" for i in range(11)}
            assert sync.tag_members("host-1") == {f"vm:{i}" for i in range(11)}
            assert await t.tag_invalidate("host-1") == 11
            assert await t.tag_members("host-1") == set()
            assert sorted(await t.get_many([f"vm:{i}" for i in range(20)])) == sorted(
                f"vm:{i}" for i in range(11, 20)
            )

    try:
        asyncio.run(asyncio.wait_for(go(), 30))
    finally:
        sync.clear()
        sync.close()


def test_async_tag_set_expiry_never_shrinks(redis_standalone: Standalone, raw: Any) -> None:
    async def go() -> None:
        async with AsyncRedisTier(redis_standalone.url, prefix=_prefix()) as t:
            await t.tag_add("t", ["a"], ttl=60)
            await t.tag_add("t", ["b"], ttl=2)
            assert 59_000 <= _tag_pttl(raw, t, "t") <= 61_000
            await t.tag_add("t", ["c"])
            assert _tag_pttl(raw, t, "t") == -1
            await t.clear()

    asyncio.run(asyncio.wait_for(go(), 30))


# -- publish / subscribe ------------------------------------------------------------------


def test_publish_subscribe(tier: RedisTier, redis_standalone: Standalone) -> None:
    got: list[bytes] = []
    event = threading.Event()

    def handler(message: bytes) -> None:
        got.append(message)
        event.set()

    sub = tier.subscribe("invalidate", handler)
    other = RedisTier(redis_standalone.url, prefix="another-namespace:")
    try:
        wait_until(lambda: tier.publish("invalidate", b"probe") >= 1, 5, "the subscription")
        assert event.wait(5)
        event.clear()
        other.publish("invalidate", b"not for us")
        tier.publish("invalidate", b"key:1")
        assert event.wait(5)
        wait_until(lambda: got[-1] == b"key:1", 5, "the second message")
        assert b"not for us" not in got
    finally:
        sub.close()
        other.close()
    assert sub.errors == 0


def test_async_lease_and_publish(redis_standalone: Standalone) -> None:
    async def go() -> None:
        async with AsyncRedisTier(redis_standalone.url, prefix=_prefix()) as t:
            token = await t.acquire_lease("lock", ttl=5)
            assert token is not None
            assert await t.acquire_lease("lock", ttl=5) is None
            assert await t.release_lease("lock", token) is True
            assert await t.publish("nobody", b"x") == 0
            await t.clear()

    asyncio.run(go())


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_async_subscribe(topology: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(f"redis_{topology}")

    async def go() -> None:
        async with AsyncRedisTier(server.url, prefix=_prefix()) as t:
            got: asyncio.Queue[bytes] = asyncio.Queue()

            async def handler(message: bytes) -> None:
                await got.put(message)

            sub = await t.subscribe("inv", handler)
            for _ in range(100):  # bounded: until the subscription is live
                if await t.publish("inv", b"probe") >= 1:
                    break
                await asyncio.sleep(0.02)
            assert await asyncio.wait_for(got.get(), timeout=5) == b"probe"
            await t.publish("inv", b"key:9")
            assert await asyncio.wait_for(got.get(), timeout=5) == b"key:9"
            await sub.close()
            assert sub.errors == 0

    asyncio.run(go())


# -- hash tags and Cluster ----------------------------------------------------------------


def test_hash_tag() -> None:
    keys = [hash_tag("user:42", f":{part}") for part in ("profile", "settings", "vms")]
    assert keys[0] == "{user:42}:profile"
    assert len({key_slot(("ns:" + k).encode()) for k in keys}) == 1
    with pytest.raises(ValueError):
        hash_tag("")
    with pytest.raises(ValueError):
        hash_tag("a}b")


def _commandstats(cluster: Cluster) -> dict[int, dict[str, int]]:
    out = {}
    for node in cluster.masters():
        stats = node.info("commandstats")
        out[node.port] = {
            name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("mget", "get")
        }
    return out


def test_cluster_get_many_is_one_mget_per_slot(redis_cluster: Cluster) -> None:
    t = RedisTier(redis_cluster.url, prefix=_prefix())
    try:
        items = {f"k{i}": str(i).encode() for i in range(60)}
        t.set_many(items)
        slots = {key_slot((t.prefix + k).encode()) for k in items}
        before = _commandstats(redis_cluster)
        assert t.get_many([*items, "absent"]) == items
        after = _commandstats(redis_cluster)
        mgets = sum(after[p]["mget"] - before[p]["mget"] for p in after)
        gets = sum(after[p]["get"] - before[p]["get"] for p in after)
        assert mgets == len(slots | {key_slot((t.prefix + "absent").encode())})
        assert gets == 0
        # Related keys under one hash tag: a single MGET.
        tagged = {hash_tag("vm:7", f":{i}"): b"x" for i in range(20)}
        t.set_many(tagged)
        before = _commandstats(redis_cluster)
        assert t.get_many(tagged) == tagged
        after = _commandstats(redis_cluster)
        assert sum(after[p]["mget"] - before[p]["mget"] for p in after) == 1
    finally:
        t.clear()
        t.close()


def test_cluster_scan_covers_every_master(redis_cluster: Cluster) -> None:
    t = RedisTier(redis_cluster.url, prefix=_prefix())
    try:
        t.set_many({f"k{i}": b"." for i in range(300)})
        owners = set()
        for node in redis_cluster.masters():
            client = node.client()
            try:
                if any(True for _ in client.scan_iter(match=t.prefix + "*", count=1000)):
                    owners.add(node.port)
            finally:
                client.close()
        assert len(owners) == 3
        assert sorted(t.scan()) == sorted(f"k{i}" for i in range(300))
        assert t.delete_many([f"k{i}" for i in range(300)]) == 300
    finally:
        t.close()


def test_cluster_reads_from_replicas(redis_cluster: Cluster) -> None:
    writer = RedisTier(redis_cluster.url, prefix=_prefix())
    reader = RedisTier(redis_cluster.url, prefix=writer.prefix, read_from_replicas=True)
    try:
        items = {f"k{i}": b"replicated" for i in range(30)}
        writer.set_many(items)
        wait_until(lambda: reader.get_many(items) == items, 5, "the replicas to catch up")
        masters = {m.port for m in redis_cluster.masters()}
        replicas = [n for n in redis_cluster.nodes if n.port not in masters]

        def replica_reads() -> int:
            total = 0
            for node in replicas:
                stats = node.info("commandstats")
                total += int(stats.get("cmdstat_get", {}).get("calls", 0))
            return total

        before = replica_reads()
        for key in items:
            assert reader.get(key) == b"replicated"
        assert replica_reads() > before  # round robin: some reads went to replicas
    finally:
        writer.clear()
        writer.close()
        reader.close()


def test_sentinel_reads_from_replica(redis_sentinel: SentinelSet) -> None:
    writer = RedisTier(redis_sentinel.url, prefix=_prefix())
    reader = RedisTier(redis_sentinel.url, prefix=writer.prefix, read_from_replicas=True)
    try:
        writer.set("k", b"replicated")
        wait_until(lambda: reader.get("k") == b"replicated", 5, "the replica to catch up")

        def gets_on_replica() -> int:
            stats = redis_sentinel.replica.info("commandstats")
            return int(stats.get("cmdstat_get", {}).get("calls", 0))

        before = gets_on_replica()
        assert reader.get("k") == b"replicated"
        assert gets_on_replica() == before + 1
    finally:
        writer.clear()
        writer.close()
        reader.close()


def test_cluster_lease_tags_and_publish(redis_cluster: Cluster) -> None:
    with RedisTier(redis_cluster.url, prefix=_prefix()) as t:
        token = t.acquire_lease("lock", ttl=5)
        assert token is not None
        assert t.acquire_lease("lock", ttl=5) is None
        assert t.release_lease("lock", token) is True
        t.set_many({"a": b"1", "b": b"2", "c": b"3"})
        t.tag_add("grp", ["a", "b"])
        assert t.tag_invalidate("grp") == 2
        assert t.get_many(["a", "b", "c"]) == {"c": b"3"}
        assert t.publish("chan", b"x") == 0
        t.clear()
        assert list(t.scan()) == []


def test_hiredis_parses_the_replies(tier: RedisTier) -> None:
    tier.set("k", b"v")
    pool = tier._client.connection_pool
    conn = pool.get_connection()
    try:
        assert "hiredis" in type(conn._parser).__name__.lower()
    finally:
        pool.release(conn)


def test_import_without_redis_py() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import novacache, novacache.tiers\n"
        "try:\n"
        "    novacache.tiers.RedisTier\n"
        "except ImportError as e:\n"
        "    print('refused:', e)\n"
    )
    src = str(Path(redis_tier.__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert "refused:" in out.stdout
    assert "novacache[redis]" in out.stdout


# -- tombstone_groups (the forced invalidations of the management API, coalesced) ----------

TOMB = b"NT" + bytes(12)


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_tombstone_groups_counts_each_group_and_publishes_after(
    topology: str, request: pytest.FixtureRequest
) -> None:
    """One call: each group's keys replaced by the tombstone and counted (a key two
    groups name counts in the first; a tombstone is no live entry), then the message
    published on the tier's channel."""
    server = request.getfixturevalue(f"redis_{topology}")
    with RedisTier(server.url, prefix=_prefix()) as t:
        got: list[bytes] = []
        event = threading.Event()

        def handler(message: bytes) -> None:
            got.append(message)
            event.set()

        sub = t.subscribe("inv", handler)
        try:
            wait_until(lambda: t.publish("inv", b"probe") >= 1, 5, "the subscription")
            assert event.wait(5)
            t.set_many({f"k{i}": b"v" for i in range(6)})
            counts = t.tombstone_groups(
                [["k0", "k1", "absent"], ["k1", "k2"], [], ["k3", "k3"]],
                TOMB,
                60,
                publish=("inv", b"after"),
            )
            assert counts == [2, 1, 0, 1]
            assert t.get_many([f"k{i}" for i in range(6)] + ["absent"]) == {
                **dict.fromkeys(["k0", "k1", "k2", "k3", "absent"], TOMB),
                "k4": b"v",
                "k5": b"v",
            }
            assert 0 < (t.ttl("k0") or 0) <= 60
            wait_until(lambda: got[-1] == b"after", 5, "the message")
            assert t.tombstone_groups([["k4"], ["k5", "k0"]], TOMB, 60) == [1, 1]
            assert t.tombstone_groups([[], []], TOMB, 60) == [0, 0]
            assert t.tombstone_groups([], TOMB, 60, publish=("inv", b"alone")) == []
            wait_until(lambda: got[-1] == b"alone", 5, "a message with no keys")
            with pytest.raises(TypeError):
                t.tombstone_groups([[1]], TOMB, 60)  # type: ignore[list-item]
            with pytest.raises(TypeError):
                t.tombstone_groups([["k"]], "str", 60)  # type: ignore[arg-type]
        finally:
            sub.close()
            t.clear()


def test_async_tombstone_groups(redis_standalone: Standalone) -> None:
    """The asyncio twin counts the same way."""

    async def go() -> None:
        async with AsyncRedisTier(redis_standalone.url, prefix=_prefix()) as t:
            await t.set_many({"a": b"1", "b": b"2", "c": b"3"})
            counts = await t.tombstone_groups(
                [["a"], ["a", "b"], ["x"]], TOMB, 60, publish=("c", b"m")
            )
            assert counts == [1, 1, 0]
            assert await t.get_many(["a", "b", "c"]) == {"a": TOMB, "b": TOMB, "c": b"3"}
            await t.clear()

    asyncio.run(go())


class _Rider:
    """A command riding in the tombstone round trip, keeping its answer."""

    def __init__(self, *command: Any) -> None:
        self.command = command
        self.replies: list[Any] = []

    def answer(self, reply: Any) -> None:
        self.replies.append(reply)


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_tombstones_of_several_keys_go_on_past_a_key_of_another_type(
    topology: str, request: pytest.FixtureRequest
) -> None:
    """Outside a Cluster several keys' tombstones are one script call, a SET per key in
    a Cluster: either way a key holding another type (a list written by someone else)
    fails the call with a TierError after every other key got its tombstone."""
    server = request.getfixturevalue(f"redis_{topology}")
    with RedisTier(server.url, prefix=_prefix()) as t:
        t.set_many({"a": b"1", "b": b"2"})
        t._reads().rpush(t._key("list"), b"x")
        with pytest.raises(TierError):
            t.tombstone_groups([["a", "list"], ["b"]], TOMB, 60)
        assert t.get_many(["a", "b"]) == {"a": TOMB, "b": TOMB}
        assert t._reads().type(t._key("list")) == b"list"
        t.clear()


def test_the_tombstone_script_is_given_again_to_a_server_that_lost_it(
    redis_standalone: Standalone,
) -> None:
    """A server restarted (its scripts gone: SCRIPT FLUSH) gets the tombstone script
    again; the counts are those of the SETs it replaces, and it is one script call for
    several keys (a single key: a plain SET)."""
    with RedisTier(redis_standalone.url, prefix=_prefix()) as t:
        admin = t._reads()
        t.set_many({"a": b"1", "b": TOMB, "c": b"3"})
        t.tombstone_many(["c"], TOMB, 60)
        admin.script_flush()
        before = admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        assert t.tombstone_groups([["a", "b", "absent"], ["c", "a"]], TOMB, 60) == [1, 0]
        after = admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        assert after - before == 2  # refused (NOSCRIPT), then run once loaded
        assert t.get_many(["a", "b", "c", "absent"]) == dict.fromkeys("abc", TOMB) | {
            "absent": TOMB
        }
        assert 0 < (t.ttl("absent") or 0) <= 60
        t.clear()


def test_riders_go_first_in_the_tombstone_round_trip(redis_standalone: Standalone) -> None:
    """A rider's command runs in the same pipeline, before the tombstones (it reads the
    value they replace); a rider whose command fails gets the error as its answer and
    the tombstones are done all the same; the message is published after them."""
    with RedisTier(redis_standalone.url, prefix=_prefix()) as t:
        t.set_many({"a": b"1", "b": b"two"})
        reads = _Rider("GET", t._key("a"))
        bad = _Rider("INCR", t._key("b"))  # not an integer: a reply error
        none = _Rider("PING")
        counts = t.tombstone_groups(
            [["a"], ["b"]], TOMB, 60, publish=("inv", b"m"), riders=[reads, bad, none]
        )
        assert counts == [1, 1]
        assert reads.replies == [b"1"]
        assert len(bad.replies) == 1
        assert isinstance(bad.replies[0], Exception)
        assert none.replies in ([b"PONG"], [True])
        assert t.get_many(["a", "b"]) == {"a": TOMB, "b": TOMB}
        alone = _Rider("GET", t._key("a"))
        assert t.tombstone_groups([], TOMB, 60, riders=[alone]) == []
        assert alone.replies == [TOMB]
        t.clear()


def test_riders_need_a_server_that_is_not_a_cluster(redis_cluster: Cluster) -> None:
    with (
        RedisTier(redis_cluster.url, prefix=_prefix()) as t,
        pytest.raises(ValueError, match="Cluster"),
    ):
        t.tombstone_groups([["a"]], TOMB, 60, riders=[_Rider("PING")])


def test_async_tombstones_in_one_script_call_with_riders(redis_standalone: Standalone) -> None:
    """The asyncio twin: several keys in one script call (a lost script given again),
    riders first, a key of another type failing the call after the others."""

    async def go() -> None:
        async with AsyncRedisTier(redis_standalone.url, prefix=_prefix()) as t:
            await t.set_many({"a": b"1", "b": b"2", "c": b"3"})
            client = t._client or t._connect()
            await client.script_flush()
            reads = _Rider("GET", t._key("a"))
            counts = await t.tombstone_groups(
                [["a", "x"], ["b", "a"]], TOMB, 60, publish=("c", b"m"), riders=[reads]
            )
            assert counts == [1, 1]
            assert reads.replies == [b"1"]
            await client.rpush(t._key("list"), b"x")
            with pytest.raises(TierError):
                await t.tombstone_many(["c", "list"], TOMB, 60)
            assert await t.get_many(["a", "b", "c", "x"]) == dict.fromkeys("abcx", TOMB)
            await t.clear()

    asyncio.run(go())
