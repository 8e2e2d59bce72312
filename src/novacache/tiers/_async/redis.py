"""The Redis tier, written once: the asyncio form of this module is the hand-written
source, and the synchronous form is generated from it by ``scripts/unasync.py`` (see
:mod:`novacache.tiers.redis` for what the tier promises).

What differs by nature: the asyncio tier waits for a free connection on a semaphore (its
pools raise when every connection is busy) where the synchronous one uses redis-py's
blocking pool and a lock around connecting; subscriptions and the Sentinel failover
watch run as tasks of the loop or as daemon threads (:mod:`novacache._concurrency`).
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import inspect
import math
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.backoff import EqualJitterBackoff
from redis.exceptions import NoScriptError

from ..._concurrency import IS_ASYNC, AsyncEvent, AsyncMutex, AsyncWorker
from ...breaker import CircuitBreaker
from ...errors import TierError, TierUnavailable
from .._keys import encode_key
from .._kit import encoded, prefixed, present, raw_key, ttl_ms
from .._redis_base import (
    _CAUGHT,
    _DELETE_BATCH,
    _RELEASE_LUA,
    _SCAN_COUNT,
    _SET_IF_LUA,
    _TAG_ADD_LUA,
    _TOMBSTONE_BATCH,
    _TOMBSTONE_LUA,
    AsyncHandler,
    RedisTierBase,
    Rider,
    _check_frame,
    _escape_glob,
    _is_tombstone,
    _token,
)
from .._sentinel import AsyncWatchedSentinel, Switch
from ..redis_config import RedisConfig
from .lane import AsyncCommandLane, lane_size

__all__ = ["AsyncFailoverWatch", "AsyncRedisTier", "AsyncSubscription"]

if IS_ASYNC:
    # What a batch of gets turns into each waiter's error: redis-py's failures, and the
    # refusal of a tier closed meanwhile.
    _CAUGHT_OR_CLOSED: tuple[type[BaseException], ...] = (TierError, *_CAUGHT)


class AsyncRedisTier(RedisTierBase):
    """A Redis tier: frames in, frames out, under a key prefix (the namespace).

    Build it from a :class:`RedisConfig`, a URL (``"redis://127.0.0.1:6379/0"``) or
    keyword options (``host=..., port=...``); options given together with a config or URL
    override it. The client connects lazily, so constructing a tier never fails because
    Redis is down; the first call reports that. The synchronous tier is thread-safe
    (redis-py's connection pool); the asyncio tier serves the tasks of one event loop.
    """

    def __init__(
        self,
        config: RedisConfig | str | None = None,
        *,
        prefix: str = "",
        name: str | None = None,
        breaker: CircuitBreaker | None = None,
        **options: Any,
    ) -> None:
        self._setup(config, prefix, name, breaker, options)
        self._client: Any = None
        self._reader: Any = None  # replicas (Sentinel read_from_replicas)
        # How single-key commands are sent (get/set/delete): a lane of connections kept
        # out of the client's pool (.lane), or its ``execute_command`` (Cluster);
        # ``_read_exec`` goes to the replicas when they serve reads.
        self._exec: Any = None
        self._read_exec: Any = None
        self._lane_size = 0 if self._cluster else lane_size(self.config.max_connections)
        self._sentinel: AsyncWatchedSentinel | None = None
        self._release: Any = None
        self._tag_script: Any = None
        self._set_if_script: Any = None
        self._tombstone_script: Any = None
        self._connect_lock = AsyncMutex()
        if IS_ASYNC:
            # Note that redis.asyncio's pools raise instead of waiting when every
            # connection is busy; this gate makes excess tasks wait for a free one.
            # The lane's connections (.lane) are out of the pool for good: the gate
            # leaves the pool room for the commands that do not go through the lane.
            self._gate = asyncio.Semaphore(self.config.max_connections - self._lane_size)
            # Gets waiting for the server, and the batch of gets that joined them in this
            # pass of the loop (see get).
            self._waiting = 0
            self._batch: dict[bytes, asyncio.Future[bytes | None]] | None = None
            self._batch_tasks: set[asyncio.Task[None]] = set()
        self._subscriptions: list[AsyncSubscription] = []
        self._watch: AsyncFailoverWatch | None = None

    # -- plumbing -----------------------------------------------------------------------

    def _retry(self) -> redis.asyncio.retry.Retry:
        c = self.config
        return redis.asyncio.retry.Retry(
            EqualJitterBackoff(cap=c.backoff_cap, base=c.backoff_base), c.retries
        )

    def _connect(self) -> Any:
        # Note that building a client does no I/O: connections open on first use.
        with self._connect_lock:
            if self._closed:
                raise TierUnavailable(f"redis tier {self.name!r}: the tier is closed")
            if self._client is not None:
                return self._client
            c = self.config
            kw = self._connection_kwargs()
            client: Any
            if c.topology == "standalone":
                if IS_ASYNC:
                    client = redis.asyncio.Redis(
                        host=c.host,
                        port=c.port,
                        db=c.db,
                        unix_socket_path=c.unix_socket_path,
                        max_connections=c.max_connections,
                        retry=self._retry(),
                        **kw,
                    )
                else:
                    # Note that a blocking pool makes a thread wait (up to ``timeout``)
                    # for a free connection instead of failing when all are in use.
                    if c.unix_socket_path:
                        kw.update(connection_class=redis.UnixDomainSocketConnection)
                        kw.update(path=c.unix_socket_path)
                    else:
                        kw.update(host=c.host, port=c.port)
                        if kw.pop("ssl", False):
                            kw.update(connection_class=redis.SSLConnection)
                    pool = redis.BlockingConnectionPool(
                        db=c.db,
                        max_connections=c.max_connections,
                        timeout=c.timeout,
                        retry=self._retry(),
                        **kw,
                    )
                    client = redis.Redis(connection_pool=pool, retry=self._retry())
            elif c.topology == "sentinel":
                assert c.service_name is not None
                self._sentinel = AsyncWatchedSentinel(
                    list(c.sentinels),
                    sentinel_kwargs=self._sentinel_kwargs(),
                    db=c.db,
                    retry=self._retry(),
                    max_connections=c.max_connections,
                    **kw,
                )
                client = self._sentinel.master_for(c.service_name)
                if c.watch_failover:
                    self._watch = AsyncFailoverWatch(self, client)
                if c.read_from_replicas:
                    self._reader = self._sentinel.slave_for(c.service_name)
            else:
                strategy = None
                if c.read_from_replicas:
                    strategy = redis.cluster.LoadBalancingStrategy.ROUND_ROBIN_REPLICAS
                client = redis.asyncio.cluster.RedisCluster(
                    startup_nodes=[
                        redis.asyncio.cluster.ClusterNode(h, p) for h, p in c.startup_nodes
                    ],
                    retry=self._retry(),
                    max_connections=c.max_connections,
                    load_balancing_strategy=strategy,
                    **kw,
                )
            self._release = client.register_script(_RELEASE_LUA)
            self._tag_script = client.register_script(_TAG_ADD_LUA)
            self._set_if_script = client.register_script(_SET_IF_LUA)
            self._tombstone_script = client.register_script(_TOMBSTONE_LUA)
            self._exec = self._executor(client)
            self._read_exec = self._exec if self._reader is None else self._executor(self._reader)
            self._client = client
            return client

    def _executor(self, client: Any) -> Any:
        """How single-key commands go to ``client`` (see ``_exec``)."""
        c = self.config
        if self._lane_size:
            backoff = EqualJitterBackoff(cap=c.backoff_cap, base=c.backoff_base)
            return AsyncCommandLane(client, self._lane_size, c.retries, backoff)
        return client.execute_command

    def _reads(self) -> Any:
        client = self._client or self._connect()
        return self._reader or client

    def _writes_exec(self) -> Any:
        self._client or self._connect()
        return self._exec

    def _reads_exec(self) -> Any:
        self._client or self._connect()
        return self._read_exec

    # -- the contract -------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """The frame stored under ``key``, or ``None``.

        In the asyncio tier, a ``get`` issued while others are waiting for the server
        joins a batch: the keys of the gets issued in one pass of the event loop go out
        as one MGET (one round trip for them all, the same answers as their GETs).
        """
        # The hot path: the helpers are compiled where built (.._kit), the breaker is
        # consulted only when it has something to say (``idle``: closed, no failure
        # on record), and the command goes to redis-py's ``execute_command`` without
        # its per-command wrappers (the same command and reply).
        raw = raw_key(self._prefix_b, key, self._max_bulk)
        breaker = self.breaker
        if not breaker.idle and not breaker.allow():
            raise self._rejected("get")
        if IS_ASYNC:
            if self._waiting:
                return await self._batched_get(raw)
            self._waiting += 1
        try:
            execute = self._read_exec or self._reads_exec()
            async with self._gate:  # unasync: unwrap
                value: bytes | None = await execute("GET", raw)
        except _CAUGHT as exc:
            raise self._translate("get", exc) from exc
        finally:
            if IS_ASYNC:
                self._waiting -= 1
        if not breaker.idle:
            breaker.record_success()
        return value

    if IS_ASYNC:

        async def _batched_get(self, raw: bytes) -> bytes | None:
            """Wait for ``raw`` in the batch of this pass of the loop (made, and its
            flush scheduled, by the first get that joins it)."""
            batch = self._batch
            if batch is None:
                batch = self._batch = {}
                asyncio.get_running_loop().call_soon(self._flush_batch)
            future = batch.get(raw)
            if future is None:
                future = batch[raw] = asyncio.get_running_loop().create_future()
            # shield: a caller that is cancelled must not cancel the others' answer
            return await asyncio.shield(future)

        def _closed_get(self) -> TierUnavailable:
            return TierUnavailable(f"redis tier {self.name!r}: get on a closed tier")

        def _flush_batch(self) -> None:
            batch, self._batch = self._batch, None
            if batch:
                self._waiting += 1
                task = asyncio.get_running_loop().create_task(self._run_batch(batch))
                self._batch_tasks.add(task)
                task.add_done_callback(self._batch_tasks.discard)

        async def _run_batch(self, batch: dict[bytes, asyncio.Future[bytes | None]]) -> None:
            raws = list(batch)
            try:
                try:
                    client = self._reader or self._client or self._reads()
                    async with self._gate:
                        if self._cluster:
                            values = await client.mget_nonatomic(raws)
                        else:
                            values = await client.mget(raws)
                except _CAUGHT_OR_CLOSED as exc:
                    error = self._translate("get", exc)
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(error)
                            future.exception()  # retrieved: each waiter raises it
                    return
                except BaseException:  # cancelled (the tier closed): no waiter may hang
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(self._closed_get())
                            future.exception()
                    raise
                self.breaker.record_success()
                for future, value in zip(batch.values(), values, strict=True):
                    if not future.done():
                        future.set_result(value)
            finally:
                self._waiting -= 1

    async def set(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        """Store ``frame`` under ``key``, replacing its frame and TTL."""
        raw = raw_key(self._prefix_b, key, self._max_bulk)  # the hot path, as in get
        if type(frame) is not bytes or len(frame) > self._max_bulk:
            frame = _check_frame(frame, self._max_bulk)
        ms = ttl_ms(ttl)
        breaker = self.breaker
        if not breaker.idle and not breaker.allow():
            raise self._rejected("set")
        try:
            execute = self._exec or self._writes_exec()
            async with self._gate:  # unasync: unwrap
                if ms is None:
                    await execute("SET", raw, frame)
                else:
                    await execute("SET", raw, frame, "PX", ms)
        except _CAUGHT as exc:
            raise self._translate("set", exc) from exc
        if not breaker.idle:
            breaker.record_success()

    async def set_once(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        """:meth:`set`, sent at most once: a connection error or a timeout raises
        ``TierError`` without a retry (whether the write was applied is then unknown),
        where :meth:`set` retries, so that a first attempt that was applied cannot be
        applied again after another client's newer write. What a linearizable write
        needs (the ``strong`` model). Redis Cluster, or a pool too small for a lane: as
        :meth:`set` (redis-py's client retries)."""
        ms = ttl_ms(ttl)
        await self._once("set", key, "SET", frame, *(() if ms is None else ("PX", ms)))

    async def delete_once(self, key: str) -> bool:
        """:meth:`delete`, sent at most once (see :meth:`set_once`); whether it existed."""
        return bool(await self._once("delete", key, "UNLINK"))

    async def _once(self, op: str, key: str, command: str, *rest: Any) -> Any:
        raw = raw_key(self._prefix_b, key, self._max_bulk)
        if rest:
            rest = (_check_frame(rest[0], self._max_bulk), *rest[1:])
        if not self.breaker.allow():
            raise self._rejected(op)
        try:
            execute = self._exec or self._writes_exec()
            once = getattr(execute, "once", execute)
            async with self._gate:  # unasync: unwrap
                reply = await once(command, raw, *rest)
        except _CAUGHT as exc:
            raise self._translate(op, exc) from exc
        self.breaker.record_success()
        return reply

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The present keys among ``keys``: one MGET (Cluster: one MGET per slot, all
        slots of a node in one pipeline, the nodes' pipelines sent before any is read)."""
        names = keys if type(keys) is list else list(keys)
        if not names:
            return {}
        # The hot path of a batch read: the helpers are called directly (this is
        # _read_keys, _reads and _present inlined; each Python-level call costs here).
        cluster = self._cluster
        raws = encoded(self._prefix_b, names) if cluster else prefixed(self.prefix, names)
        if not self.breaker.allow():
            raise self._rejected("get_many")
        try:
            client = self._reader or self._client or self._reads()
            async with self._gate:  # unasync: unwrap
                values = await (client.mget_nonatomic(raws) if cluster else client.mget(raws))
        except _CAUGHT as exc:
            raise self._translate("get_many", exc) from exc
        self.breaker.record_success()
        return present(names, values)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store every item with the same TTL in one pipeline (one round trip per node)."""
        pairs = [(self._key(k), _check_frame(f, self._max_bulk)) for k, f in items.items()]
        ms = ttl_ms(ttl)
        if not pairs:
            return
        if not self.breaker.allow():
            raise self._rejected("set_many")
        try:
            client = self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                pipe = client.pipeline(transaction=False)
                for raw, frame in pairs:
                    pipe.set(raw, frame, px=ms)
                await pipe.execute()
        except _CAUGHT as exc:
            raise self._translate("set_many", exc) from exc
        self.breaker.record_success()

    async def set_if(
        self, key: str, frame: bytes, ttl: float | None = None, *, expect: bytes | None
    ) -> bool:
        """Store ``frame`` under ``key`` only if the key still holds ``expect`` (``None``:
        only if it is absent); whether it was stored. One server-side script (EVALSHA,
        loaded again by redis-py after a restart: NOSCRIPT), on one key (cluster-safe).
        The manager's write-backs use it (see docs/consistency.md)."""
        raw = self._key(key)
        frame = _check_frame(frame, self._max_bulk)
        ms = ttl_ms(ttl)
        digest = "" if expect is None else hashlib.sha1(_check_frame(expect)).hexdigest()
        if not self.breaker.allow():
            raise self._rejected("set_if")
        try:
            self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                n = await self._set_if_script(
                    keys=[raw], args=[digest, frame, "" if ms is None else ms]
                )
        except _CAUGHT as exc:
            raise self._translate("set_if", exc) from exc
        self.breaker.record_success()
        return bool(n)

    async def set_if_many(
        self, items: Mapping[str, tuple[bytes, float | None, bytes | None]]
    ) -> builtins.set[str]:
        """:meth:`set_if` of each ``key: (frame, ttl, expect)`` at once: one pipeline of
        EVALSHA (one round trip; a server that lost the script gets it once more); in a
        Cluster one script call after another (the keys live in different slots). The
        keys stored. The manager's promotions of a ``get_many`` use it."""
        calls: list[tuple[str, bytes, list[Any]]] = []
        for key, (frame, ttl, expect) in items.items():
            ms = ttl_ms(ttl)
            digest = "" if expect is None else hashlib.sha1(_check_frame(expect)).hexdigest()
            frame = _check_frame(frame, self._max_bulk)
            calls.append((key, self._key(key), [digest, frame, "" if ms is None else ms]))
        if not calls:
            return builtins.set()
        if not self.breaker.allow():
            raise self._rejected("set_if_many")
        try:
            client = self._client or self._connect()
            script = self._set_if_script
            async with self._gate:  # unasync: unwrap
                if self._cluster:
                    out = [await script(keys=[raw], args=args) for _, raw, args in calls]
                else:
                    # EVALSHA queued directly: a script object in a pipeline costs a
                    # SCRIPT EXISTS round trip on every execute.
                    try:
                        out = await self._evalsha_all(client, script.sha, calls)
                    except NoScriptError:  # a restarted server: nothing ran
                        await client.script_load(script.script)
                        out = await self._evalsha_all(client, script.sha, calls)
        except _CAUGHT as exc:
            raise self._translate("set_if_many", exc) from exc
        self.breaker.record_success()
        return {key for (key, _, _), n in zip(calls, out, strict=True) if n}

    @staticmethod
    async def _evalsha_all(client: Any, sha: str, calls: list[tuple[str, bytes, list[Any]]]) -> Any:
        pipe = client.pipeline(transaction=False)
        for _, raw, args in calls:
            pipe.evalsha(sha, 1, raw, *args)
        return await pipe.execute()

    async def tombstone_many(self, keys: Iterable[str], frame: bytes, ttl: float) -> int:
        """Replace each key's frame with ``frame`` (a delete's tombstone) for ``ttl``
        seconds, in one round trip (as ``SET ... PX ... GET`` would: one call of a Lua
        script per 1000 keys, or in a Cluster a pipeline of one such ``SET`` per key); how
        many keys held a live entry that was not a tombstone."""
        return (await self._tombstone("tombstone_many", [keys], frame, ttl, None))[0]

    async def tombstone_groups(
        self,
        groups: Sequence[Iterable[str]],
        frame: bytes,
        ttl: float,
        *,
        publish: tuple[str, bytes] | None = None,
        riders: Sequence[Rider] = (),
    ) -> list[int]:
        """:meth:`tombstone_many` of each group of keys, then (``publish``: ``(channel,
        message)``) publish ``message`` on ``prefix + channel``, in one round trip (one
        pipeline; in a Cluster the message is published after it, with :meth:`publish`).
        How many keys of each group held a live entry that was not a tombstone (a key in
        two groups is counted in the first). A failure raises ``TierError`` (what the
        server did before it is not known). The invalidation engine's ``run_many``
        (coalesced invalidations) uses it.

        ``riders`` (not in a Cluster: ``ValueError``) are commands of the caller sent in
        the same pipeline, before the tombstones (see :class:`~novacache.tiers._redis_base.Rider`):
        the invalidation engine reads its dependency index there, so that a batch of
        invalidations costs one round trip."""
        return await self._tombstone("tombstone_groups", groups, frame, ttl, publish, riders)

    async def _tombstone(
        self,
        op: str,
        groups: Sequence[Iterable[str]],
        frame: bytes,
        ttl: float,
        publish: tuple[str, bytes] | None,
        riders: Sequence[Rider] = (),
    ) -> list[int]:
        seen: dict[bytes, None] = {}  # every key once, in order
        raws: list[list[bytes]] = []  # each group's keys not in an earlier group
        for group in groups:
            fresh = [raw for raw in dict.fromkeys(self._key(k) for k in group) if raw not in seen]
            seen.update(dict.fromkeys(fresh))
            raws.append(fresh)
        seen_order = list(seen)
        frame = _check_frame(frame, self._max_bulk)
        ms = ttl_ms(ttl)
        channel = message = None
        if publish is not None:
            message = _check_frame(publish[1], self._max_bulk)
            channel = self._channel(publish[0])
        if riders and self._cluster:
            raise ValueError("riders need a Redis server that is not a Cluster")
        riding = channel is not None and not self._cluster  # PUBLISH in the pipeline
        live: list[bool] = []
        if seen or riding or riders:
            if not self.breaker.allow():
                raise self._rejected(op)
            try:
                client = self._client or self._connect()
                async with self._gate:  # unasync: unwrap
                    live = await self._tombstone_round(
                        client, seen_order, frame, ms, channel if riding else None, message, riders
                    )
            except _CAUGHT as exc:
                raise self._translate(op, exc) from exc
            self.breaker.record_success()
        if len(raws) == 1:
            counts = [sum(live)]
        else:
            counts, at = [], 0
            for group_raws in raws:
                counts.append(sum(live[at : at + len(group_raws)]))
                at += len(group_raws)
        if publish is not None and not riding:
            await self.publish(publish[0], publish[1])
        return counts

    async def _tombstone_round(
        self,
        client: Any,
        raws: list[bytes],
        frame: bytes,
        ms: int | None,
        channel: bytes | None,
        message: bytes | None,
        riders: Sequence[Rider],
    ) -> list[bool]:
        """One pipeline: the ``riders``, the tombstones of ``raws`` (distinct keys), the
        PUBLISH (``channel``); whether each key held a live entry that was no tombstone.
        Outside a Cluster, several keys go in one call of the tombstone script per 1000
        (a pipeline of a ``SET`` per key costs the client far more); a Cluster's keys
        live in different slots: a ``SET ... GET`` each. A reply error raises, once
        every rider has its answer."""
        scripted = len(raws) > 1 and not self._cluster
        pipe = client.pipeline(transaction=False)
        if not scripted and not riders:  # (one key, a delete's: as lean as it was)
            for raw in raws:
                pipe.set(raw, frame, px=ms, get=True)
            if channel is not None:
                pipe.publish(channel, message)
            olds = await pipe.execute()
            return [old is not None and not _is_tombstone(old) for old in olds[: len(raws)]]
        script = self._tombstone_script
        for rider in riders:
            pipe.execute_command(*rider.command)
        chunks: list[list[bytes]] = []
        if scripted:
            arg = b"" if ms is None else ms
            chunks = [raws[i : i + _TOMBSTONE_BATCH] for i in range(0, len(raws), _TOMBSTONE_BATCH)]
            for chunk in chunks:
                pipe.evalsha(script.sha, len(chunk), *chunk, frame, arg)
        else:
            for raw in raws:
                pipe.set(raw, frame, px=ms, get=True)
        if channel is not None:
            pipe.publish(channel, message)
        replies = await pipe.execute(raise_on_error=False)
        n = len(riders)
        for rider, reply in zip(riders, replies[:n], strict=True):
            rider.answer(reply)
        replies = replies[n:]
        error: BaseException | None = None
        if channel is not None:
            published = replies.pop()
            if isinstance(published, Exception):
                error = published
        live: list[bool] = []
        if scripted:
            for chunk, reply in zip(chunks, replies, strict=True):
                if isinstance(reply, NoScriptError):  # a restarted server: not run
                    await client.script_load(script.script)
                    reply = await client.evalsha(script.sha, len(chunk), *chunk, frame, arg)
                if isinstance(reply, Exception):
                    error = error or reply
                    reply = [0] * len(chunk)
                live += [bool(flag) for flag in reply]
        else:
            for reply in replies:
                if isinstance(reply, Exception):
                    error = error or reply
                    reply = None
                live.append(reply is not None and not _is_tombstone(reply))
        if error is not None:
            raise error
        return live

    async def delete(self, key: str) -> bool:
        """UNLINK ``key``; whether it existed."""
        raw = raw_key(self._prefix_b, key, self._max_bulk)  # the hot path, as in get
        breaker = self.breaker
        if not breaker.idle and not breaker.allow():
            raise self._rejected("delete")
        try:
            execute = self._exec or self._writes_exec()
            async with self._gate:  # unasync: unwrap
                n = await execute("UNLINK", raw)
        except _CAUGHT as exc:
            raise self._translate("delete", exc) from exc
        if not breaker.idle:
            breaker.record_success()
        return bool(n)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """UNLINK every key (Cluster: one UNLINK per slot, pipelined); how many existed."""
        raws = list(dict.fromkeys(self._key(k) for k in keys))
        if not raws:
            return 0
        if not self.breaker.allow():
            raise self._rejected("delete_many")
        try:
            client = self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                n = await client.unlink(*raws)
        except _CAUGHT as exc:
            raise self._translate("delete_many", exc) from exc
        self.breaker.record_success()
        return int(n)

    async def ttl(self, key: str) -> float | None:
        """Remaining lifetime in seconds, ``math.inf`` without expiry, ``None`` if absent."""
        raw = self._key(key)
        if not self.breaker.allow():
            raise self._rejected("ttl")
        try:
            client = self._reads()
            async with self._gate:  # unasync: unwrap
                ms = await client.pttl(raw)
        except _CAUGHT as exc:
            raise self._translate("ttl", exc) from exc
        self.breaker.record_success()
        if ms == -2:
            return None
        if ms == -1:
            return math.inf
        return float(ms) / 1000.0

    def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        """Each live key of the namespace matching ``pattern`` once (SCAN; in a Cluster on
        every master). Keys are de-duplicated in memory, since SCAN may repeat a key."""
        match = self._match(pattern)
        if not self.breaker.allow():
            raise self._rejected("scan")
        return self._scan(match, "scan")

    async def _scan(self, match: bytes, op: str) -> AsyncIterator[str]:
        seen: set[bytes] = set()
        try:
            client = self._reads()
            async with self._gate:  # unasync: unwrap
                async for raw in client.scan_iter(match=match, count=_SCAN_COUNT):
                    if raw in seen:
                        continue
                    seen.add(raw)
                    key = self._unprefix(raw)
                    if key is not None:
                        yield key
        except _CAUGHT as exc:
            raise self._translate(op, exc) from exc
        self.breaker.record_success()

    async def clear(self) -> None:
        """Remove every key of the namespace (tag index included), nothing outside it."""
        if not self.breaker.allow():
            raise self._rejected("clear")
        match = encode_key(_escape_glob(self.prefix)) + b"*"
        try:
            client = self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                batch: list[bytes] = []
                async for raw in client.scan_iter(match=match, count=_SCAN_COUNT):
                    batch.append(raw)
                    if len(batch) >= _DELETE_BATCH:
                        await client.unlink(*batch)
                        batch.clear()
                if batch:
                    await client.unlink(*batch)
        except _CAUGHT as exc:
            raise self._translate("clear", exc) from exc
        self.breaker.record_success()

    async def ping(self) -> float:
        """Round-trip time of a PING in seconds (Cluster: every node answers)."""
        if not self.breaker.allow():
            raise self._rejected("ping")
        try:
            client = self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                start = time.perf_counter()
                await client.ping()
                rtt = time.perf_counter() - start
        except _CAUGHT as exc:
            raise self._translate("ping", exc) from exc
        self.breaker.record_success()
        return rtt

    async def close(self) -> None:
        """Stop subscriptions and close every connection; harmless to repeat."""
        with self._connect_lock:
            self._closed = True
            client, reader, sentinel = self._client, self._reader, self._sentinel
            lanes = (self._exec, self._read_exec)
            self._client = self._reader = self._sentinel = None
            self._exec = self._read_exec = None
            subscriptions, self._subscriptions = self._subscriptions, []
            watch, self._watch = self._watch, None
        if IS_ASYNC:
            # Gets waiting in a batch fail rather than wait for a closed tier.
            batch, self._batch = self._batch, None
            for future in (batch or {}).values():
                if not future.done():
                    future.set_exception(self._closed_get())
                    future.exception()
            for task in list(self._batch_tasks):
                task.cancel()
        for lane in lanes:
            if isinstance(lane, AsyncCommandLane):
                await lane.aclose()  # back to the pools, which are disconnected below
        if watch is not None:
            await watch.close()
        for sub in subscriptions:
            await sub.close()
        for c in (reader, client):
            if c is not None:
                try:
                    await c.aclose()
                    if not IS_ASYNC:
                        # A blocking pool keeps idle connections open after close().
                        pool = getattr(c, "connection_pool", None)
                        if pool is not None:
                            pool.disconnect()
                except _CAUGHT:
                    pass
        if sentinel is not None:
            for s in sentinel.sentinels:
                try:
                    await s.aclose()
                except _CAUGHT:
                    pass

    async def __aenter__(self) -> AsyncRedisTier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- lease lock ---------------------------------------------------------------------

    async def acquire_lease(self, key: str, ttl: float) -> str | None:
        """Take the lease ``key`` for ``ttl`` seconds (SET NX PX): a token to release it
        with, or ``None`` when someone else holds it. Leases live in a sub-namespace of
        their own: the lease ``key`` never touches the entry cached under ``key``."""
        raw = self._lease_key(key)
        ms = ttl_ms(ttl)
        if ms is None:
            raise ValueError("a lease needs a finite ttl")
        token = secrets.token_hex(16)
        if not self.breaker.allow():
            raise self._rejected("acquire_lease")
        try:
            client = self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                ok = await client.set(raw, token, nx=True, px=ms)
        except _CAUGHT as exc:
            raise self._translate("acquire_lease", exc) from exc
        self.breaker.record_success()
        return token if ok else None

    async def release_lease(self, key: str, token: str) -> bool:
        """Release the lease if ``token`` still holds it (checked by a server-side script);
        whether it was released. An expired lease taken by another holder is left alone."""
        raw = self._lease_key(key)
        tok = _token(token)
        if not self.breaker.allow():
            raise self._rejected("release_lease")
        try:
            self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                n = await self._release(keys=[raw], args=[tok])
        except _CAUGHT as exc:
            raise self._translate("release_lease", exc) from exc
        self.breaker.record_success()
        return bool(n)

    # -- tag index ----------------------------------------------------------------------

    async def tag_add(self, tag: str, keys: Iterable[str], ttl: float | None = None) -> None:
        """Record that ``keys`` carry ``tag`` (a set in the tier's tag sub-namespace).

        The set's expiry is bounded by its members' TTLs, atomically (a server-side
        script): with ``ttl``, the set lives at least ``ttl`` (plus a second of slack)
        from now, never less than it already had; an expiry is never shortened. Without
        ``ttl`` (keys that do not expire), the set keeps no expiry from then on. The
        sync and asyncio tiers use the same sets: managers of both kinds on one
        namespace share one tag index.
        """
        tkey, batches = self._tag_batches(tag, keys, ttl)
        if not batches:
            return
        if not self.breaker.allow():
            raise self._rejected("tag_add")
        try:
            self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                for args in batches:
                    await self._tag_script(keys=[tkey], args=args)
        except _CAUGHT as exc:
            raise self._translate("tag_add", exc) from exc
        self.breaker.record_success()

    async def tag_members(self, tag: str) -> builtins.set[str]:
        """The keys recorded under ``tag`` (some may have expired since)."""
        tkey = self._tag_key(tag)
        if not self.breaker.allow():
            raise self._rejected("tag_members")
        try:
            client = self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                members = await client.smembers(tkey)
        except _CAUGHT as exc:
            raise self._translate("tag_members", exc) from exc
        self.breaker.record_success()
        return self._members(members)

    async def tag_invalidate(self, tag: str) -> int:
        """Delete every key recorded under ``tag`` and the index set; how many keys existed."""
        keys = await self.tag_members(tag)
        n = await self.delete_many(keys)
        if not self.breaker.allow():
            raise self._rejected("tag_invalidate")
        try:
            client = self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                await client.unlink(self._tag_key(tag))
        except _CAUGHT as exc:
            raise self._translate("tag_invalidate", exc) from exc
        self.breaker.record_success()
        return n

    # -- publish / subscribe ------------------------------------------------------------

    async def publish(self, channel: str, message: bytes) -> int:
        """Publish ``message`` on ``prefix + channel``; how many subscribers received it
        (in a Cluster: those connected to the node that took the message)."""
        message = _check_frame(message, self._max_bulk)
        name = self._channel(channel)
        if not self.breaker.allow():
            raise self._rejected("publish")
        try:
            client = self._client or self._connect()
            async with self._gate:  # unasync: unwrap
                if IS_ASYNC:
                    if hasattr(client, "publish"):
                        n = await client.publish(name, message)
                    else:
                        # redis-py < 8: no publish on the asyncio cluster client. Any
                        # node broadcasts a classic PUBLISH to the whole cluster.
                        n = await client.execute_command(
                            "PUBLISH", name, message, target_nodes=client.get_default_node()
                        )
                else:
                    n = client.publish(name, message)
        except _CAUGHT as exc:
            raise self._translate("publish", exc) from exc
        self.breaker.record_success()
        return int(n)

    async def subscribe(self, channel: str, handler: AsyncHandler) -> AsyncSubscription:
        """Call ``handler(message)`` for every message published on ``prefix + channel``,
        until the returned subscription (or the tier) is closed: from a daemon thread
        (the synchronous tier), or from a task of the running loop (the asyncio tier;
        ``handler`` may then be a coroutine function)."""
        name = self._channel(channel)
        if not self.breaker.allow():
            raise self._rejected("subscribe")
        owner = None
        try:
            client = self._client or self._connect()
            if IS_ASYNC:
                if self._cluster:
                    # Note that the asyncio cluster client learns its slots lazily; its
                    # pubsub needs them before the first command.
                    await client.initialize()
                if not hasattr(client, "pubsub"):
                    # redis-py < 8 has no pubsub on the asyncio cluster client. Classic
                    # pub/sub is broadcast to every node of a cluster, so a client of one
                    # node (with the cluster's connection settings) hears every message.
                    node = client.get_default_node()
                    client = owner = redis.asyncio.Redis(
                        connection_pool=redis.asyncio.ConnectionPool(
                            connection_class=node.connection_class, **node.connection_kwargs
                        )
                    )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(name)
        except _CAUGHT as exc:
            raise self._translate("subscribe", exc) from exc
        self.breaker.record_success()
        sub = AsyncSubscription(pubsub, handler, owner)
        with self._connect_lock:
            self._subscriptions.append(sub)
        return sub


class AsyncSubscription:
    """A channel subscription, served by a daemon thread (the synchronous tier) or a task
    of the loop (the asyncio tier); ``close()`` stops it."""

    def __init__(
        self,
        pubsub: Any,
        handler: AsyncHandler,
        owner: Any = None,
    ) -> None:
        self._pubsub = pubsub
        self._owner = owner  # a client made for this subscription alone, closed with it
        self._handler = handler
        self.errors = 0
        self._worker = AsyncWorker(self._run, "novacache-redis-sub")
        self._worker.start()

    async def _run(self) -> None:
        while self._worker.running:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            except _CAUGHT:
                self.errors += 1
                await self._worker.pause(0.1)
                continue
            if msg and msg.get("type") == "message":
                try:
                    if IS_ASYNC:
                        result = self._handler(msg["data"])
                        if inspect.isawaitable(result):
                            await result
                    else:
                        self._handler(msg["data"])
                except Exception:
                    self.errors += 1

    async def close(self) -> None:
        """Stop serving (a thread is waited for about a second at most) and drop the
        connection; harmless to repeat."""
        await self._worker.stop()
        try:
            await self._pubsub.aclose()
            if self._owner is not None:
                await self._owner.aclose()
        except _CAUGHT:
            pass


class AsyncFailoverWatch:
    """Listens for ``+switch-master`` on the sentinels (one at a time, rotating on
    errors) and, when our master moves, drops every pooled connection so the next
    command asks Sentinel for the new master. A daemon thread (the synchronous tier) or
    a task of the loop that first used the tier (the asyncio tier).

    Note why this exists: after a manual ``SENTINEL FAILOVER`` the old master was
    measured to keep accepting writes for ~11 s, and those writes were lost. For a cache
    a lost delete is stale data, so the tier moves as soon as Sentinel announces the
    switch instead of waiting for the old master to refuse a write.
    """

    def __init__(self, tier: AsyncRedisTier, master: Any) -> None:
        self._tier = tier
        self._master = master
        self.switches = 0
        self.errors = 0
        self.subscribed = AsyncEvent()
        self._worker = AsyncWorker(self._run, "novacache-sentinel-watch")
        self._worker.start()

    async def _run(self) -> None:
        sentinels = self._tier.config.sentinels
        kwargs = self._tier._sentinel_kwargs()
        turn = 0
        while self._worker.running:
            host, port = sentinels[turn % len(sentinels)]
            turn += 1
            client = redis.asyncio.Redis(host=host, port=port, **kwargs)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe("+switch-master")
                self.subscribed.set()
                while self._worker.running:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                    if msg and msg.get("type") == "message":
                        await self._switched(msg["data"])
            except _CAUGHT:
                self.errors += 1
                self.subscribed.clear()
                await self._worker.pause(0.2)
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except _CAUGHT:
                    pass

    async def _switched(self, data: bytes) -> None:
        switch = Switch.parse(data)
        if switch is None or switch.service != self._tier.config.service_name:
            return
        # Remember the switch before reconnecting: a sentinel that has not heard of it
        # yet would otherwise send the reconnect back to the old master.
        if self._tier._sentinel is not None:
            self._tier._sentinel.switches.note(switch)
        # Drop the connections first, count second: whoever waits for the counter (a
        # test, a health check) must find the pool already pointing at the new master;
        # in asyncio the await yields, and a task that saw the counter move could
        # otherwise write through a connection to the old master.
        try:
            await self._master.connection_pool.disconnect(inuse_connections=True)
        except _CAUGHT:
            pass
        self.switches += 1
        self._tier.stats.add_name("failovers")

    async def close(self) -> None:
        """Stop listening (a thread is waited for about a second at most); harmless to
        repeat."""
        await self._worker.stop()
