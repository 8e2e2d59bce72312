"""MigrationStateCache / AsyncMigrationStateCache on the embedded default, Redis and
PostgreSQL: durable checkpoints read back in order without a scan, events, and the update
stream (Redis Streams across a server restart, the store's log otherwise)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from novacache import novacron
from novacache.errors import (
    ConfigurationError,
    InvalidArgument,
    PartialWrite,
    SourceError,
    TierError,
    TierTimeout,
)
from novacache.novacron import (
    KeyGenerator,
    MigrationCheckpoint,
    MigrationEvent,
    MigrationProgress,
    MigrationState,
)
from tiers.redis_servers import start_standalone

from ._env import Env, count_calls, maybe, redis_commands, run
from ._sources import Migrations

K = KeyGenerator()


def state(mid: str, status: str = "running") -> MigrationState:
    return MigrationState(mid, f"vm-{mid}", "n0", "n1", status, 1.0, 2.0)


def progress(mid: str, pct: float) -> MigrationProgress:
    return MigrationProgress(mid, pct, int(pct * 10), 1000, 5.0, 1.0, time.time())


def events(mid: str, steps: int = 3) -> list[MigrationEvent]:
    out = [MigrationEvent("started", mid, state=state(mid))]
    for i in range(1, steps + 1):
        out.append(MigrationEvent("progress", mid, progress=progress(mid, 100 * i / (steps + 1))))
        out.append(
            MigrationEvent("checkpointed", mid, checkpoint=MigrationCheckpoint(mid, i, i * 100))
        )
    out.append(MigrationEvent("completed", mid, state=state(mid, "completed")))
    return out


def test_checkpoints_are_durable_when_store_checkpoint_returns(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        cache = env.migration_cache(m)
        reader = env.store_reader()
        try:
            for seq in (3, 1, 2):
                checkpoint = MigrationCheckpoint("m1", seq, seq * 10, data=b"\x00" * 64)
                await cache.store_checkpoint("m1", checkpoint)
                # another connection to the store reads it at once
                frame = reader.get(K.migration_checkpoint("m1", seq))
                assert frame is not None
        finally:
            reader.close()
        assert cache.stats["checkpoints"] == 3

    run(env, body)


def test_a_store_that_refuses_a_checkpoint_raises(env: Env) -> None:
    async def body() -> None:
        m = await env.manager(store_options={"maxbytes": 4096}, on_write_error="report")
        cache = env.migration_cache(m)
        await cache.store_checkpoint("m1", MigrationCheckpoint("m1", 1, 10))
        big = MigrationCheckpoint("m1", 2, 20, data=random.randbytes(64 * 1024))
        with pytest.raises(PartialWrite) as info:
            await cache.store_checkpoint("m1", big)
        assert "store" in info.value.failed
        with pytest.raises(InvalidArgument):
            await cache.store_checkpoint("m2", MigrationCheckpoint("m1", 3, 0))
        with pytest.raises(InvalidArgument):
            await cache.store_checkpoint("m1", MigrationCheckpoint("m1", -1, 0))
        assert [c.sequence_number for c in await cache.get_checkpoints("m1")] == [1]

    run(env, body)


def test_checkpoints_come_back_ordered_without_a_keyspace_scan(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        cache = env.migration_cache(m)
        other = env.migration_cache(m)  # a second cache on the same manager: same rules
        seqs = list(range(1, 41))
        random.Random(7).shuffle(seqs)
        for seq in seqs:
            await cache.store_checkpoint("m1", MigrationCheckpoint("m1", seq, seq))
        await other.store_checkpoint("m2", MigrationCheckpoint("m2", 1, 1))
        scans = [count_calls(t, "scan") for t in (m.remote, m.store) if t is not None]
        before = redis_commands(env.url) if env.url else {}
        found = await cache.get_checkpoints("m1")
        assert [c.sequence_number for c in found] == list(range(1, 41))
        assert [len(s) for s in scans] == [0] * len(scans)
        if env.url:
            after = redis_commands(env.url)
            for command in ("scan", "keys"):
                assert after.get(command, 0) == before.get(command, 0)
        assert [c.migration_id for c in await other.get_checkpoints("m2")] == ["m2"]
        assert await cache.get_checkpoints("m3") == []

    run(env, body)


def test_events_update_the_cache(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        engine = Migrations()
        engine.add("m1")
        cache = env.migration_cache(m, engine)
        await cache.handle_event(MigrationEvent("started", "m1", state=state("m1")))
        assert await cache.get_state("m1") == state("m1")
        assert engine.calls["get_migration_state"] == 0  # cached by the event
        p = progress("m1", 40.0)
        await cache.handle_event(MigrationEvent("progress", "m1", progress=p))
        assert await cache.get_progress("m1") == p
        assert await cache.get_state("m1") == engine.states["m1"]  # dropped: from the source
        assert engine.calls["get_migration_state"] == 1
        for seq in (1, 2):
            checkpoint = MigrationCheckpoint("m1", seq, seq)
            await cache.handle_event(MigrationEvent("checkpointed", "m1", checkpoint=checkpoint))
        assert len(await cache.get_checkpoints("m1")) == 2
        assert 0 < await maybe(m.store.ttl(K.migration_progress("m1"))) <= 5
        # failure keeps the checkpoints (to resume from), drops the progress
        await cache.handle_event(MigrationEvent("failed", "m1", state=state("m1", "failed")))
        assert len(await cache.get_checkpoints("m1")) == 2
        assert await maybe(m.get(K.migration_progress("m1"))) is None
        assert (await cache.get_state("m1")).status == "failed"
        # completion cleans up the progress and the checkpoints
        await cache.handle_event(MigrationEvent("progress", "m1", progress=p))
        await cache.handle_event(MigrationEvent("completed", "m1", state=state("m1", "completed")))
        assert await cache.get_checkpoints("m1") == []
        assert await maybe(m.get(K.migration_progress("m1"))) is None
        assert (await cache.get_state("m1")).status == "completed"
        with pytest.raises(InvalidArgument):
            await cache.handle_event(MigrationEvent("paused", "m1"))
        with pytest.raises(InvalidArgument):
            await cache.handle_event(MigrationEvent("progress", "m1"))
        with pytest.raises(SourceError):
            await env.migration_cache(m).get_state("m9")  # no source

    run(env, body)


def test_stream_updates_replays_the_log_in_order_and_ends(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        cache = env.migration_cache(m)
        published = [await cache.handle_event(e) for e in events("m1", 4)]
        ids = [u.update_id for u in published]
        assert ids == sorted(ids, key=_order)
        assert len(set(ids)) == len(ids)
        got = [u async for u in cache.stream_updates("m1")]
        assert [u.type for u in got] == [e.type for e in events("m1", 4)]
        assert [u.update_id for u in got] == ids
        tail = [u async for u in cache.stream_updates("m1", after=ids[5])]
        assert [u.update_id for u in tail] == ids[6:]
        with pytest.raises(TierTimeout):  # nothing was ever published for m2
            async for _ in cache.stream_updates("m2", idle_timeout=0.3):
                pass

    run(env, body)


def _order(update_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in update_id.replace("-", " ").split())


def test_stream_updates_follows_a_live_migration(env: Env) -> None:
    """A reader started before the migration gets every update as another manager (in
    another thread, as another process would) publishes it, and stops at completion."""

    async def body() -> None:
        m = await env.manager()
        cache = env.migration_cache(m)
        producer_manager = await env.manager(kind="sync", path=env.path)
        producer = novacron.MigrationStateCache(producer_manager)
        sent = events("m7", 5)

        def publish() -> None:
            for event in sent:
                time.sleep(0.02)
                producer.handle_event(event)

        thread = threading.Thread(target=publish)
        thread.start()
        try:
            got = [u.type async for u in cache.stream_updates("m7", idle_timeout=10)]
        finally:
            thread.join(10)
        assert got == [e.type for e in sent]

    run(env, body)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_redis_stream_resumes_after_a_server_restart(
    kind: str, redis_base: Path, tmp_path: Path
) -> None:
    """The reader is blocked in XREAD when redis-server is killed; it is restarted (its
    append-only file keeps the stream) and the migration goes on: the reader gets every
    update exactly once, in order, resuming from the last id it read."""
    server = start_standalone(redis_base, appendonly="yes", appendfsync="always")
    env = Env(kind, "redis", tmp_path, server.url, None)
    sent = events("mx", 4)

    async def body() -> None:
        m = await env.manager()
        cache = env.migration_cache(m)
        producer_manager = await env.manager(kind="sync", path=env.path)
        producer = novacron.MigrationStateCache(producer_manager)
        for event in sent[:3]:
            producer.handle_event(event)
        got: list[Any] = []

        def outage_then_rest() -> None:
            deadline = time.monotonic() + 10
            while len(got) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)  # the reader is blocked in XREAD now
            server.server.kill()
            time.sleep(0.8)  # reads fail meanwhile: the reader retries
            server.server.start()
            for event in sent[3:]:
                for _ in range(50):
                    try:
                        producer.handle_event(event)
                        break
                    except TierError as exc:  # the client reconnecting
                        last = exc
                        time.sleep(0.05)
                else:
                    raise last

        thread = threading.Thread(target=outage_then_rest)
        thread.start()
        try:
            async for update in cache.stream_updates("mx", idle_timeout=15):
                got.append(update)
        finally:
            thread.join(20)
        assert [u.type for u in got] == [e.type for e in sent]
        assert len({u.update_id for u in got}) == len(sent)
        inner = cache if env.is_async else cache._target
        assert inner.stats["stream_reconnects"] >= 1

    try:
        run(env, body)
    finally:
        server.server.kill()


def test_warmup_by_node(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        engine = Migrations()
        engine.add("m1", "n0", "n1")
        engine.add("m2", "n2", "n3")
        cache = env.migration_cache(m, engine)
        result = await cache.warmup("node", ["n3"])
        assert (result.loaded, result.skipped, result.failed) == (2, 0, 0)
        result = await cache.warmup("cluster", [])
        assert (result.loaded, result.skipped) == (2, 2)
        assert await cache.get_state("m2") == engine.states["m2"]
        assert engine.calls["get_migration_state"] == 2

    run(env, body)


def test_a_manager_without_a_store_is_refused() -> None:
    from novacache import LocalCache
    from novacache.manager import CacheManager

    with pytest.raises(ConfigurationError, match="store"):
        novacron.MigrationStateCache(CacheManager(local=LocalCache(10), codec=novacron.codec()))
