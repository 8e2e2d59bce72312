"""The hostile-input suite of the tiers (issue 18), against real servers: Redis
standalone and Cluster (slots are computed from a key's bytes), SQLite, PostgreSQL, each
sync and async.

Odd keys (lone surrogates, NUL and control characters, U+FFFF, glob metacharacters,
20 kB, non-str), odd frames, absurd TTLs and odd scan patterns: each call works, or
raises an error novacache raises on purpose (``tests/_hostile.py``); what was stored
reads back exactly, and ``scan`` finds it under its own name.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _hostile import (
    FRAMES,
    KEY_CHARS,
    KEYS,
    NON_FRAMES,
    NON_STR_KEYS,
    PATTERNS,
    TTLS,
    Driver,
    assert_typed,
    call,
    escape_glob,
)
from novacache.errors import ConfigurationError, NovaCacheError
from novacache.tiers import (
    AsyncPostgresTier,
    AsyncRedisTier,
    AsyncSQLiteTier,
    PostgresTier,
    RedisConfig,
    RedisTier,
    SQLiteTier,
)

from .redis_servers import Cluster, Standalone

KINDS = ["redis", "cluster", "sqlite", "postgres"]
HOSTILE = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _make(kind: str, is_async: bool, request: pytest.FixtureRequest, base: Path) -> Any:
    name = uuid.uuid4().hex[:10]
    if kind in ("redis", "cluster"):
        server: Standalone | Cluster = request.getfixturevalue(
            f"redis_{kind.replace('redis', 'standalone')}"
        )
        cls: Any = AsyncRedisTier if is_async else RedisTier
        return cls(server.url, prefix=f"h-{name}:")
    if kind == "sqlite":
        cls = AsyncSQLiteTier if is_async else SQLiteTier
        return cls(base / f"{name}.db")
    dsn = request.getfixturevalue("postgres_dsn")
    cls = AsyncPostgresTier if is_async else PostgresTier
    return cls(dsn, table=f"h_{name}")


@pytest.fixture(scope="module", params=[(k, a) for k in KINDS for a in (False, True)],
                ids=lambda p: f"{p[0]}-{'async' if p[1] else 'sync'}")  # fmt: skip
def tier(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Driver]:
    kind, is_async = request.param
    loop = asyncio.new_event_loop() if is_async else None
    driver = Driver(_make(kind, is_async, request, tmp_path_factory.mktemp("hostile")), loop)
    try:
        yield driver
    finally:
        driver("clear")
        driver("close")
        if loop is not None:
            loop.close()


class _Pairs(Mapping[Any, bytes]):
    """A mapping that holds any key, hashable or not (as a caller's own mapping may)."""

    def __init__(self, pairs: list[tuple[Any, bytes]]) -> None:
        self._pairs = pairs

    def __getitem__(self, key: Any) -> bytes:
        for k, v in self._pairs:
            if k is key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        return iter([k for k, _ in self._pairs])

    def __len__(self) -> int:
        return len(self._pairs)


@HOSTILE
@given(key=KEYS, frame=FRAMES, ttl=TTLS)
def test_set_get_scan_delete_any_key(tier: Driver, key: str, frame: Any, ttl: Any) -> None:
    ok, _ = tier.call("set", key, frame, ttl)
    long_lived = ttl is None or (isinstance(ttl, (int, float)) and not isinstance(ttl, bool)
                                 and ttl >= 60)  # fmt: skip
    if not ok:
        # Only the frame type (SQLite and PostgreSQL take bytes only) or the TTL may be
        # refused: never the key, which is a str.
        assert not (isinstance(frame, bytes) and long_lived)
        return
    if not long_lived:
        return  # it may already be gone
    want = bytes(frame)
    assert tier("get", key) == want
    assert tier("get_many", [key, key + "\x00other"]) == {key: want}
    assert tier("scan", escape_glob(key)) == [key]
    assert key in tier("scan", "*")
    assert tier("delete", key) is True
    assert tier("get", key) is None
    assert tier("delete_many", [key]) == 0


@HOSTILE
@given(items=st.dictionaries(KEYS, st.binary(max_size=16), max_size=6), ttl=TTLS)
def test_bulk_calls_with_odd_keys(tier: Driver, items: dict[str, bytes], ttl: Any) -> None:
    ok, _ = tier.call("set_many", items, ttl)
    if ok and (ttl is None or (type(ttl) in (int, float) and ttl >= 60)):
        assert tier("get_many", list(items)) == items
        assert tier("delete_many", list(items)) == len(items)
    ok, got = tier.call("get_many", list(items))
    assert ok  # str keys: a read never raises
    assert set(got) <= set(items)


@HOSTILE
@given(key=NON_STR_KEYS, frame=st.one_of(FRAMES, NON_FRAMES))
def test_non_str_keys_and_non_frames_are_refused_with_type_errors(
    tier: Driver, key: Any, frame: Any
) -> None:
    for name, args in (
        ("get", (key,)),
        ("set", (key, b"v")),
        ("delete", (key,)),
        ("ttl", (key,)),
        ("get_many", ([key],)),
        ("set_many", (_Pairs([(key, b"v")]),)),
        ("delete_many", ([key],)),
    ):
        ok, exc = tier.call(name, *args)
        assert not ok, (name, key)
        assert isinstance(exc, TypeError)
    ok, exc = tier.call("set", "k", frame)
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        assert not ok
        assert isinstance(exc, TypeError)


@HOSTILE
@given(pattern=PATTERNS)
def test_scan_with_any_pattern(tier: Driver, pattern: Any) -> None:
    ok, keys = tier.call("scan", pattern)
    if ok:
        assert all(isinstance(k, str) for k in keys)
    else:
        assert not isinstance(pattern, str) or isinstance(keys, NovaCacheError)


@HOSTILE
@given(frame=st.binary(max_size=64), key=KEYS)
def test_ttl_of_any_key(tier: Driver, frame: bytes, key: str) -> None:
    assert tier("ttl", key) in (None, float("inf")) or tier("ttl", key) > 0
    tier("set", key, frame, 3600)
    left = tier("ttl", key)
    assert left is not None
    assert 3500 < left <= 3600
    tier("delete", key)


def test_driver_contract_rejects_raw_errors() -> None:
    """The checker itself: a raw library error fails it, ours passes."""
    with pytest.raises(AssertionError):
        assert_typed(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    try:
        "x".encode("no-such-codec")
    except LookupError as exc:
        lookup = exc
    with pytest.raises(AssertionError):
        assert_typed(lookup)
    assert_typed(NovaCacheError("ours"))


# -- beyond the contract: the Redis tier's tag sets, leases and pub/sub ------------------


@pytest.fixture(scope="module", params=["standalone", "cluster"])
def redis_pair(request: pytest.FixtureRequest) -> Iterator[tuple[Driver, Driver]]:
    """A sync and an async Redis tier on one namespace (they share the tag sets)."""
    server = request.getfixturevalue(f"redis_{request.param}")
    prefix = f"h-{uuid.uuid4().hex[:10]}:"
    loop = asyncio.new_event_loop()
    sync = Driver(RedisTier(server.url, prefix=prefix))
    async_ = Driver(AsyncRedisTier(server.url, prefix=prefix), loop)
    try:
        yield sync, async_
    finally:
        sync("clear")
        sync("close")
        async_("close")
        loop.close()


@HOSTILE
@given(tag=st.one_of(KEYS, NON_STR_KEYS), keys=st.lists(KEYS, max_size=4), ttl=TTLS)
def test_redis_tag_sets_with_odd_tags_and_keys(
    redis_pair: tuple[Driver, Driver], tag: Any, keys: list[str], ttl: Any
) -> None:
    for tier in redis_pair:
        ok, _ = tier.call("tag_add", tag, keys, ttl)
        if not ok:
            continue
        ok, members = tier.call("tag_members", tag)
        assert ok
        assert set(keys) <= members or not keys
        ok, _ = tier.call("tag_invalidate", tag)
        assert ok
        assert tier("tag_members", tag) == set()


@HOSTILE
@given(
    key=st.one_of(KEYS, NON_STR_KEYS), ttl=TTLS, token=st.one_of(st.text(KEY_CHARS), NON_STR_KEYS)
)
def test_redis_leases_with_odd_keys(
    redis_pair: tuple[Driver, Driver], key: Any, ttl: Any, token: Any
) -> None:
    long_lived = type(ttl) in (int, float) and 60 <= ttl < 1e6
    for tier in redis_pair:
        ok, got = tier.call("acquire_lease", key, ttl)
        if ok and got is not None:
            assert tier("get", key) is None  # the lease is not the entry
            tier.call("release_lease", key, token)
            released = tier("release_lease", key, got)
            assert released is True or not long_lived  # a short lease may be gone
        tier.call("release_lease", key, token)


@HOSTILE
@given(channel=st.one_of(KEYS, NON_STR_KEYS), message=st.one_of(FRAMES, NON_FRAMES))
def test_redis_publish_on_odd_channels(
    redis_pair: tuple[Driver, Driver], channel: Any, message: Any
) -> None:
    for tier in redis_pair:
        ok, got = tier.call("publish", channel, message)
        if ok:
            assert got >= 0


# -- construction ---------------------------------------------------------------------

_SCHEMES = st.sampled_from(
    ["redis", "rediss", "unix", "redis+sentinel", "rediss+cluster", "redis+cluster", "http", ""]
)
_URLS = st.one_of(
    st.text(KEY_CHARS, max_size=30),
    st.builds(
        lambda scheme, rest, query: f"{scheme}://{rest}{query}",
        _SCHEMES,
        st.text(st.one_of(KEY_CHARS, st.sampled_from(list("[]:@/,.%0123456789"))), max_size=24),
        st.one_of(st.just(""), st.builds(lambda q: "?" + q, st.text(KEY_CHARS, max_size=12))),
    ),
)


@settings(max_examples=600, deadline=None)
@given(url=st.one_of(_URLS, NON_STR_KEYS))
def test_any_url_is_a_config_or_a_configuration_error(url: Any) -> None:
    for build in (RedisConfig.from_url, RedisTier, AsyncRedisTier):
        ok, got = call(build, url)
        if not ok:
            assert isinstance(got, (ConfigurationError, TypeError))
            assert isinstance(got, ConfigurationError) or not isinstance(url, str)


_ODD_OPTION_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(KEY_CHARS, max_size=4), st.binary(max_size=3), st.lists(st.integers(), max_size=2),
    st.tuples(st.tuples(st.text(max_size=2), st.integers())),
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    name=st.sampled_from(
        ["host", "port", "db", "timeout", "connect_timeout", "retries", "max_connections",
         "backoff_base", "backoff_cap", "health_check_interval", "password", "username",
         "sentinels", "startup_nodes", "topology", "ssl", "client_name", "prefix", "name"]
    ),
    value=_ODD_OPTION_VALUES,
)  # fmt: skip
def test_any_redis_option_builds_or_is_refused(name: str, value: Any) -> None:
    ok, tier = call(RedisTier, **{name: value})
    if ok:
        tier.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(["maxbytes", "timeout", "touch_batch", "touch_interval", "pragmas",
                          "rebuild", "verify", "name", "clock"]),
    value=st.one_of(_ODD_OPTION_VALUES, st.dictionaries(st.text(KEY_CHARS, max_size=5),
                                                         _ODD_OPTION_VALUES, max_size=2)),
)  # fmt: skip
def test_any_sqlite_option_builds_or_is_refused(tmp_path: Path, name: str, value: Any) -> None:
    ok, tier = call(SQLiteTier, tmp_path / "o.db", **{name: value})
    if ok:
        call(tier.set, "k", b"v")
        tier.close()


@settings(max_examples=100, deadline=None)
@given(path=st.one_of(NON_STR_KEYS, st.text(KEY_CHARS, min_size=1, max_size=8)))
def test_any_sqlite_path_opens_or_is_refused(
    path: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Note that a relative path would land in the working directory: keep them all in
    # the session's temp directory.
    base = tmp_path_factory.getbasetemp()
    if isinstance(path, str):
        path = base / path.replace("/", "_")
    elif isinstance(path, bytes):
        path = os.fsencode(base) + b"/" + path.replace(b"/", b"_")
    ok, tier = call(SQLiteTier, path)
    if ok:
        tier.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(["maxbytes", "timeout", "evict_every", "touch_batch", "touch_interval",
                          "min_size", "max_size", "table", "name", "unlogged"]),
    value=_ODD_OPTION_VALUES,
)  # fmt: skip
def test_any_postgres_option_builds_or_is_refused(postgres_dsn: str, name: str, value: Any) -> None:
    for cls in (PostgresTier, AsyncPostgresTier):
        options = {"table": f"o_{uuid.uuid4().hex[:8]}", "timeout": 2.0, name: value}
        ok, tier = call(cls, postgres_dsn, **options)
        if ok and cls is PostgresTier:
            tier.close()
    ok, tier = call(PostgresTier, value, timeout=0.5)  # the DSN itself
    if ok:
        tier.close()
