"""The consistency models in the managers (sync and asyncio, on Redis and on the
embedded default): strong reads never come from an L1 copy and raise the typed error
with Redis down, sessions read their writes (also resumed elsewhere from a token),
monotonic readers never go back, and what it costs in round trips."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from novacache import LocalCache
from novacache.consistency import ZERO, Version
from novacache.consistency.spec import MAX_TRACKED, Models, decode_token, encode_token
from novacache.errors import ConfigurationError, ConsistencyUnavailable, InvalidSessionToken
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.manager.envelope import read_tombstone
from novacache.tiers import AsyncRedisTier, RedisTier, SQLiteTier
from tiers.redis_servers import Standalone, free_port

from . import _recorder

T = TypeVar("T")
MODELS = {"acct:": "strong", "user:": "session", "feed:": "monotonic"}


def arun(main: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(main, 30))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ns() -> str:
    return f"m-{uuid.uuid4().hex[:10]}:"


def _pair(url: str, ns: str, **options: Any) -> tuple[CacheManager, CacheManager]:
    """Two managers on one Redis namespace, each with its own L1: two processes."""
    return tuple(  # type: ignore[return-value]
        CacheManager(local=LocalCache(100), remote=RedisTier(url, prefix=ns), **options)
        for _ in range(2)
    )


@pytest.fixture
def pair(redis_standalone: Standalone, ns: str) -> Iterator[tuple[CacheManager, CacheManager]]:
    a, b = _pair(redis_standalone.url, ns, consistency=MODELS)
    yield a, b
    a.close()
    b.close()


def _dead_redis(**options: Any) -> RedisTier:
    return RedisTier(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2, retries=0, **options)


# -- configuration --------------------------------------------------------------------


def test_models_by_longest_prefix() -> None:
    models = Models({"a:": "strong", "a:b:": "session", "": "monotonic", "x:": "eventual"})
    assert models.model("a:1") == "strong"
    assert models.model("a:b:1") == "session"
    assert models.model("zzz") == "monotonic"
    assert models.model("x:1") == "eventual"
    assert Models({"a:": "strong"}).model("b:1") == "eventual"


def test_bad_configurations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="one of eventual, strong"):
        CacheManager(
            local=LocalCache(10), store=SQLiteTier(tmp_path / "a.db"), consistency={"a:": "linear"}
        )
    with pytest.raises(ConfigurationError, match="prefix is a str"):
        Models({1: "strong"})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="a mapping"):
        Models([("a:", "strong")])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="need a tier below L1"):
        CacheManager(local=LocalCache(10), consistency={"a:": "strong"})
    with pytest.raises(ConfigurationError, match="session_key is bytes"):
        CacheManager(
            store=SQLiteTier(tmp_path / "b.db"),
            consistency=MODELS,
            session_key="text",  # type: ignore[arg-type]
        )
    with CacheManager(local=LocalCache(10), store=SQLiteTier(tmp_path / "c.db")) as m:
        with pytest.raises(ConfigurationError, match="sessions need consistency"):
            m.session()
        assert m.consistency is None
    # only eventual: nothing changes
    with CacheManager(
        local=LocalCache(10), store=SQLiteTier(tmp_path / "d.db"), consistency={"a:": "eventual"}
    ) as m:
        assert m.consistency is None
        assert "get" not in vars(m)


def test_without_consistency_the_methods_are_the_plain_ones(tmp_path: Path) -> None:
    with CacheManager.embedded(tmp_path / "e.db") as m:
        assert not {"get", "set", "delete", "get_many", "set_many", "get_or_load"} & set(vars(m))
        assert m.consistency is None


# -- strong ---------------------------------------------------------------------------


def test_strong_read_is_never_an_l1_copy(
    redis_standalone: Standalone, ns: str, pair: tuple[CacheManager, CacheManager]
) -> None:
    # Eventual (the default): B keeps serving its L1 copy after A wrote.
    a, b = _pair(redis_standalone.url, ns + "e:")
    with a, b:
        a.set("acct:1", 1)
        assert b.get("acct:1") == 1
        a.set("acct:1", 2)
        assert b.get("acct:1") == 1  # the stale copy the strong model rules out
    a, b = pair
    a.set("acct:1", 1)
    assert b.get("acct:1") == 1
    a.set("acct:1", 2)
    assert b.get("acct:1") == 2
    assert a.delete("acct:1") is True
    assert b.get("acct:1", "gone") == "gone"
    assert b.local is not None
    assert "acct:1" not in b.local
    # the plain (eventual) keys of the same managers keep their L1
    a.set("plain", 1)
    assert a.local is not None
    assert a.local["plain"] == 1


def test_strong_round_trips(
    redis_standalone: Standalone, pair: tuple[CacheManager, CacheManager]
) -> None:
    a, _ = pair
    a.set("acct:warm", 0, tags=["t"])  # the connection is open, the tag script loaded
    admin = redis_standalone.server.client()

    def commands() -> int:
        """Requests the clients sent (commands run inside a script are not counted:
        the tag script runs a few)."""
        stats = admin.info("commandstats")
        names = ("get", "set", "del", "unlink", "mget", "evalsha", "eval")
        return sum(int(stats.get(f"cmdstat_{n}", {}).get("calls", 0)) for n in names)

    try:
        idle = -commands() + commands()  # 0: INFO is not among them
        for op, most in (
            (lambda: a.get("acct:1"), 1),
            (lambda: a.set("acct:1", 1), 1),
            (lambda: a.get("acct:1"), 1),
            (lambda: a.set("acct:1", 2, tags=["t"]), 2),
            (lambda: a.delete("acct:1"), 1),
        ):
            before = commands()
            op()
            assert commands() - before - idle == most
    finally:
        admin.close()


def test_strong_with_redis_down_raises_the_typed_error(tmp_path: Path) -> None:
    store = SQLiteTier(tmp_path / "s.db")
    with CacheManager(
        local=LocalCache(10), remote=_dead_redis(), store=store, consistency=MODELS
    ) as m:
        store.set("acct:1", m.codec.encode("acct:1", [1, None, None, "in the store"]))
        assert m.get("plain", "default") == "default"  # eventual: a miss
        with pytest.raises(ConsistencyUnavailable) as info:
            m.get("acct:1")  # never the store's copy
        assert info.value.op == "get"
        assert info.value.key == "acct:1"
        assert "acct:1" not in str(info.value)  # no key material in the message
        with pytest.raises(ConsistencyUnavailable) as info:
            m.set("acct:1", 2)
        assert info.value.op == "set"
        assert info.value.applied in (None, False)
        with pytest.raises(ConsistencyUnavailable):
            m.delete("acct:1")
        for _ in range(5):  # open the breaker: then nothing is sent
            with pytest.raises(ConsistencyUnavailable):
                m.get("acct:1")
        with pytest.raises(ConsistencyUnavailable) as info:
            m.set("acct:1", 3)
        assert info.value.applied is False
        assert m.stats.tiers["remote"]["read_errors"] >= 1


def test_strong_on_the_embedded_default_uses_the_store(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with (
        CacheManager.embedded(path, consistency=MODELS) as a,
        CacheManager.embedded(path, consistency=MODELS) as b,
    ):
        a.set("acct:1", 1)
        assert b.get("acct:1") == 1
        a.set("acct:1", 2)
        assert b.get("acct:1") == 2
        assert b.local is not None
        assert "acct:1" not in b.local


def test_strong_get_or_load_get_many_set_many(pair: tuple[CacheManager, CacheManager]) -> None:
    a, b = pair
    calls = []

    def load() -> int:
        calls.append(1)
        return 7

    assert a.get_or_load("acct:9", load) == 7
    assert a.get_or_load("acct:9", load) == 7
    assert calls == [1]
    assert a.local is not None
    assert "acct:9" not in a.local
    b.set_many({"acct:8": 8, "plain:8": 8})
    assert b.local is not None
    assert "acct:8" not in b.local
    assert a.get_many(["acct:8", "plain:8", "acct:9", "none"]) == {
        "acct:8": 8,
        "plain:8": 8,
        "acct:9": 7,
    }
    a.set("acct:8", 9)
    assert b.get_many(["acct:8"]) == {"acct:8": 9}


# -- sessions -------------------------------------------------------------------------


def test_session_reads_its_writes_through_another_manager(
    pair: tuple[CacheManager, CacheManager],
) -> None:
    a, b = pair
    a.set("user:1", "v1")
    assert b.get("user:1") == "v1"  # now in B's L1
    with a.session() as s:
        s.set("user:1", "v2")
        assert s.get("user:1") == "v2"
        token = s.token
    assert b.get("user:1") == "v1"  # outside a session: B's L1 copy (eventual)
    with b.session(token) as s:
        assert s.get("user:1") == "v2"  # resumed: never older than what it wrote
        for m in (a, b):  # L1 holds the plain value (its version is kept beside it)
            assert m.local is not None
            assert m.local["user:1"] == "v2"
        s.delete("user:1")
        assert s.get("user:1", "none") == "none"
        token = s.token
    with a.session(token) as s:
        assert s.get("user:1", "none") == "none"
    # a strong key in a session is a strong key; an eventual one is left as it is
    with a.session() as s:
        s.set("acct:2", 2)
        s.set("plain:2", 2)
        assert b.session(s.token).get("acct:2") == 2
        assert s.get("plain:2") == 2
        assert s.delete("acct:2") is True
        assert s.delete("plain:2") is True


def test_session_copies_in_l1_go_with_every_drop(
    pair: tuple[CacheManager, CacheManager],
) -> None:
    a, _ = pair
    with a.session() as s:
        s.set("user:3", "v1", tags=["t"])
        assert a.local is not None
        assert a.local["user:3"] == "v1"
        assert a.invalidate_tags(["t"]) == 1  # not through the models: L1 drops it too
        assert s.get("user:3", "gone") == "gone"
        s.set("user:3", "v2")
        a.delete_many(["user:3"])
        assert s.get("user:3", "gone") == "gone"
        s.set("user:3", "v3")
        a.clear()
        assert s.get("user:3", "gone") == "gone"
        s.set("user:3", "v4")
        # a value put into L1 another way has no known version: never served in the
        # session, which reads below
        a.local["user:3"] = "planted"
        assert s.get("user:3") == "v4"
        assert a.local["user:3"] == "v4"
        assert a.get("user:3") == "v4"


def test_a_session_resumed_in_another_process(redis_standalone: Standalone, ns: str) -> None:
    key = b"k" * 16
    a = CacheManager(
        local=LocalCache(100),
        remote=RedisTier(redis_standalone.url, prefix=ns),
        consistency=MODELS,
        session_key=key,
    )
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(
        target=_recorder.resume_and_read,
        args=(theirs, redis_standalone.url, ns, "user:7", key),
        daemon=True,
    )
    with a:
        a.set("user:7", "old")
        child.start()
        try:
            assert ours.poll(30)
            assert ours.recv() == "old"  # the child holds "old" in its L1 now
            with a.session() as s:
                s.set("user:7", "new")
                ours.send(s.token)
            assert ours.poll(30)
            # its L1 still says "old"; the resumed session reads "new"
            assert ours.recv() == ("old", "new")
        finally:
            child.join(10)
    assert child.exitcode == 0


def test_session_tokens_are_validated_and_signed() -> None:
    versions = {"user:1": Version(5, 1), "é": Version(6 << 16, 2**32 - 1)}
    assert decode_token(encode_token(versions)) == versions
    signed = encode_token(versions, b"secret")
    assert decode_token(signed, b"secret") == versions
    with pytest.raises(InvalidSessionToken, match="signature"):
        decode_token(signed, b"other")
    with pytest.raises(InvalidSessionToken, match="signature"):
        decode_token(signed)  # signed, read as unsigned
    head, _, mac = signed.split(".")
    tampered = encode_token({"user:1": Version(9, 9)}).split(".")[1]
    with pytest.raises(InvalidSessionToken, match="signature"):
        decode_token(f"{head}.{tampered}.{mac}", b"secret")
    for bad in ("", "nv2.", "nv2.a.b.c", "xx1.a.b", "nv2.!!.b", "x" * 300_000):
        with pytest.raises(InvalidSessionToken):
            decode_token(bad)
    with pytest.raises(InvalidSessionToken, match="a str"):
        decode_token(b"nv2.a.b")  # type: ignore[arg-type]
    import base64
    import json

    from novacache.consistency import spec

    def forged(items: object) -> str:
        body = base64.urlsafe_b64encode(json.dumps(items).encode()).rstrip(b"=").decode()
        return f"nv2.{body}.{spec._mac(body, None)}"

    for items in (
        {"a": 1},
        [["k", -1, 0]],
        [["k", 1, -1]],
        [["k", 2**63, 0]],
        [["k", 1, 2**32]],
        [["k", 1]],
        [["k", 1, 0, "w"]],  # the first format's items
        [[1, 1, 0]],
        [["k", 1.5, 0]],
        [["k", 1, True]],
    ):
        with pytest.raises(InvalidSessionToken, match="malformed"):
            decode_token(forged(items))
    with pytest.raises(InvalidSessionToken, match="malformed"):
        decode_token(forged([["k", 1, 0]] * (MAX_TRACKED + 1)))
    assert decode_token(forged([["k", 1, 0]])) == {"k": Version(1, 0)}


def test_a_session_remembers_a_bounded_number_of_keys(tmp_path: Path) -> None:
    with CacheManager.embedded(tmp_path / "b.db", consistency=MODELS) as m, m.session() as s:
        for i in range(MAX_TRACKED + 10):
            s.set(f"user:{i}", i)
        assert len(decode_token(s.token)) == MAX_TRACKED
        assert "user:0" not in decode_token(s.token)  # the oldest went first
        assert s.get("user:0") == 0


# -- monotonic ------------------------------------------------------------------------


def test_monotonic_reader_never_reads_an_older_version(
    redis_standalone: Standalone, ns: str, tmp_path: Path
) -> None:
    def manager(consistency: dict[str, str] | None, name: str) -> CacheManager:
        clock = Clock()
        m = CacheManager(
            local=LocalCache(100, ttl=10, timer=clock),
            remote=RedisTier(redis_standalone.url, prefix=ns),
            store=SQLiteTier(tmp_path / "shared.db"),
            consistency=consistency,
        )
        m.test_clock = clock  # type: ignore[attr-defined]
        return m

    writer = manager(MODELS, "writer")
    reader = manager(MODELS, "reader")
    plain = manager(None, "plain")
    with writer, reader, plain:
        assert writer.store is not None
        assert writer.remote is not None
        writer.set("feed:1", "v1")
        old_frame = writer.store.get("feed:1")
        assert reader.get("feed:1") == "v1"
        writer.set("feed:1", "v2")
        assert reader.get("feed:1") == "v1"  # its L1 copy: it has not seen v2
        for m in (reader, plain):
            m.test_clock.now += 11  # type: ignore[attr-defined]  # L1 copies expire
            assert m.get("feed:1") == "v2"
        # Redis loses the key; the store still holds the older version.
        writer.remote.delete("feed:1")
        assert old_frame is not None
        writer.store.set("feed:1", old_frame)
        for m in (reader, plain):
            m.test_clock.now += 11  # type: ignore[attr-defined]
        assert reader.get("feed:1", "miss") == "miss"  # never v1 again: a miss
        assert plain.get("feed:1") == "v1"  # eventual goes back in time


# -- versions: the envelope's ----------------------------------------------------------


def test_a_token_of_the_first_format_is_refused_with_a_typed_error(tmp_path: Path) -> None:
    # What the models wrote before they compared envelope versions: "nv1." tokens of
    # [key, nanoseconds, counter, writer-text]; validly MAC'ed, still refused.
    import base64
    import json

    from novacache.consistency import spec

    body = base64.urlsafe_b64encode(json.dumps([["user:1", 5, 0, "ab"]]).encode())
    text = body.rstrip(b"=").decode()
    old = f"nv1.{text}.{spec._mac(text, b'k')}"
    with pytest.raises(InvalidSessionToken, match="older format"):
        decode_token(old, b"k")
    path = tmp_path / "t.db"
    with (
        CacheManager.embedded(path, consistency=MODELS, session_key=b"k") as m,
        pytest.raises(InvalidSessionToken, match="older format"),
    ):
        m.session(old)


def test_session_values_are_plain_values_for_a_plain_get(
    redis_standalone: Standalone, ns: str
) -> None:
    # The user-visible point of one notion of a version: what a session key stores is
    # the value, readable by a manager without consistency=, and the reverse.
    models, plain = (
        CacheManager(
            local=LocalCache(100), remote=RedisTier(redis_standalone.url, prefix=ns), **options
        )
        for options in ({"consistency": MODELS}, {})
    )
    with models, plain:
        with models.session() as s:
            s.set("user:1", {"cart": [1]})
            s.set("feed:1", "f1")
        assert plain.get("user:1") == {"cart": [1]}
        assert plain.get("feed:1") == "f1"
        assert plain.get_many(["user:1", "feed:1"]) == {"user:1": {"cart": [1]}, "feed:1": "f1"}
        plain.set("user:2", "written plainly")
        with models.session() as s:
            assert s.get("user:2") == "written plainly"
            seen = decode_token(s.token)["user:2"]
            # the version the session saw is the one the plain write sealed
            written = plain.get_versioned("user:2")
            assert written is not None
            assert seen == written.version > ZERO
        assert models.get("user:2") == "written plainly"
        assert models.get_versioned("user:1") is not None


def test_async_session_values_are_plain_values_for_a_plain_get(
    redis_standalone: Standalone, ns: str
) -> None:
    async def main() -> None:
        def make(**options: Any) -> AsyncCacheManager:
            remote = AsyncRedisTier(redis_standalone.url, prefix=ns)
            return AsyncCacheManager(local=LocalCache(100), remote=remote, **options)

        async with make(consistency=MODELS) as models, make() as plain:
            async with models.session() as s:
                await s.set("user:1", [1, 2])
                version = decode_token(s.token)["user:1"]
            assert await plain.get("user:1") == [1, 2]
            written = await plain.get_versioned("user:1")
            assert written is not None
            assert written.version == version
            await plain.set("user:1", "plain")
            async with make(consistency=MODELS) as other, other.session(s.token) as s2:
                # (another process: ``models`` may serve its own L1 copy, at ``version``)
                assert await s2.get("user:1") == "plain"
                assert decode_token(s2.token)["user:1"] > version

    arun(main())


def test_session_versions_are_the_envelopes_and_the_tombstones(
    redis_standalone: Standalone, pair: tuple[CacheManager, CacheManager], ns: str
) -> None:
    a, b = pair
    admin = redis_standalone.server.client()
    try:
        with a.session() as s:
            s.set("user:5", "v1")
            first = decode_token(s.token)["user:5"]
            got = b.get_versioned("user:5")
            assert got is not None
            assert got.version == first  # the version sealed in the envelope
            s.set("user:5", "v2")
            second = decode_token(s.token)["user:5"]
            assert second > first
            assert s.delete("user:5") is True
            deleted = decode_token(s.token)["user:5"]
            raw = admin.get(f"{ns}user:5")
            assert raw is not None
            assert read_tombstone(raw) == deleted > second  # the tombstone's version
            assert s.get("user:5", "absent") == "absent"
            token = s.token
        # another process reads the tombstone: absent at its version, and remembers it
        with b.session() as s2:
            assert s2.get("user:5", "absent") == "absent"
            assert decode_token(s2.token)["user:5"] == deleted
        with b.session(token) as s3:
            assert s3.get("user:5", "absent") == "absent"
    finally:
        admin.close()


def test_a_tombstone_reads_as_absent_never_as_the_older_value_below(
    redis_standalone: Standalone, ns: str, tmp_path: Path
) -> None:
    # Redis (the authority) holds the delete's tombstone; the store below still holds
    # the value from before the delete (its delete failed, or it came back from an older
    # copy). A reader that never saw the key and the session that deleted it both read
    # "absent at the delete's version", never the older value.
    def manager() -> CacheManager:
        return CacheManager(
            local=LocalCache(100),
            remote=RedisTier(redis_standalone.url, prefix=ns),
            store=SQLiteTier(tmp_path / "shared.db"),
            consistency=MODELS,
        )

    writer, reader = manager(), manager()
    with writer, reader:
        assert writer.store is not None
        for key in ("user:6", "feed:6"):
            writer.set(key, "old")
            old_frame = writer.store.get(key)
            with writer.session() as s:
                assert s.delete(key) is True
                assert old_frame is not None
                writer.store.set(key, old_frame)  # the store has the value back
                assert s.get(key, "absent") == "absent"
            assert reader.get(key, "absent") == "absent"
            with reader.session() as s:
                assert s.get(key, "absent") == "absent"
                raw = reader.remote.get(key)  # type: ignore[union-attr]
                assert raw is not None
                assert decode_token(s.token)[key] == read_tombstone(raw)


def test_an_entry_of_the_unversioned_envelopes_is_version_zero(tmp_path: Path) -> None:
    path = tmp_path / "z.db"
    with CacheManager.embedded(path, consistency=MODELS) as m:
        assert m.store is not None
        # envelopes 1 and 2, written before entries were versioned
        m.store.set("user:1", m.codec.encode("user:1", [1, None, None, "v1"]))
        m.store.set("user:2", m.codec.encode("user:2", [2, 9e12, 600.0, "v2", 9e12, 0.0, 0.0]))
        with m.session() as s:
            assert s.get("user:1") == "v1"
            assert s.get("user:2") == "v2"
            assert decode_token(s.token) == {"user:1": ZERO, "user:2": ZERO}
            s.set("user:1", "v1b")
            assert decode_token(s.token)["user:1"] > ZERO
            assert s.get("user:1") == "v1b"
        assert m.get("feed:9", "none") == "none"


def test_async_tombstones_and_unversioned_entries(
    redis_standalone: Standalone, ns: str, tmp_path: Path
) -> None:
    # The asyncio manager: the same versions as the synchronous tests above.
    from novacache.tiers import AsyncSQLiteTier

    async def main() -> None:
        async def make() -> AsyncCacheManager:
            store = await AsyncSQLiteTier.open(tmp_path / "a.db")
            remote = AsyncRedisTier(redis_standalone.url, prefix=ns)
            return AsyncCacheManager(
                local=LocalCache(100), remote=remote, store=store, consistency=MODELS
            )

        async with await make() as writer, await make() as reader:
            assert writer.store is not None
            assert writer.remote is not None
            await writer.set("user:1", "old")
            old_frame = await writer.store.get("user:1")
            assert old_frame is not None
            async with writer.session() as s:
                assert await s.delete("user:1") is True
                deleted = decode_token(s.token)["user:1"]
                assert read_tombstone(await writer.remote.get("user:1")) == deleted
                await writer.store.set("user:1", old_frame)  # the value back below
                assert await s.get("user:1", "absent") == "absent"
            assert await reader.get("user:1", "absent") == "absent"
            async with reader.session() as s:
                assert await s.get("user:1", "absent") == "absent"
                assert decode_token(s.token)["user:1"] == deleted
            # an envelope of format 1 (before versions): version 0
            await writer.remote.set("user:2", writer.codec.encode("user:2", [1, None, None, "v"]))
            async with reader.session() as s:
                assert await s.get("user:2") == "v"
                assert decode_token(s.token)["user:2"] == ZERO

    arun(main())


# -- asyncio --------------------------------------------------------------------------


def test_async_manager_applies_the_same_models(redis_standalone: Standalone, ns: str) -> None:
    async def main() -> None:
        def make() -> AsyncCacheManager:
            remote = AsyncRedisTier(redis_standalone.url, prefix=ns)
            return AsyncCacheManager(local=LocalCache(100), remote=remote, consistency=MODELS)

        async with make() as a, make() as b:
            await a.set("acct:1", 1)
            assert await b.get("acct:1") == 1
            await a.set("acct:1", 2)
            assert await b.get("acct:1") == 2
            assert b.local is not None
            assert "acct:1" not in b.local
            await a.set("user:1", "v1")
            assert await b.get("user:1") == "v1"
            async with a.session() as s:
                await s.set("user:1", "v2")
                token = s.token
            assert await b.get("user:1") == "v1"
            async with b.session(token) as s:
                assert await s.get("user:1") == "v2"

            async def load() -> int:
                return 5

            assert await a.get_or_load("acct:5", load) == 5
            # (B's own L1 copy is v2 now: its session read it)
            assert await b.get_many(["acct:5", "user:1"]) == {"acct:5": 5, "user:1": "v2"}
            await b.set_many({"acct:6": 6})
            assert await a.delete("acct:6") is True

    arun(main())


def test_async_strong_with_redis_down_raises(tmp_path: Path) -> None:
    async def main() -> None:
        remote = AsyncRedisTier(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2, retries=0)
        async with AsyncCacheManager(local=LocalCache(10), remote=remote, consistency=MODELS) as m:
            assert await m.get("plain") is None
            with pytest.raises(ConsistencyUnavailable):
                await m.get("acct:1")
            with pytest.raises(ConsistencyUnavailable):
                await m.set("acct:1", 1)

    arun(main())
