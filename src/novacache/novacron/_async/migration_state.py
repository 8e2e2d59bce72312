"""AsyncMigrationStateCache (3.1): migration state and progress, durable checkpoints read
back in order from a per-migration index, event handling, and a stream of updates (Redis
Streams when the manager has a Redis tier, the store otherwise).

The one hand-written source of ``../_sync/migration_state.py`` (``scripts/unasync.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from ..._concurrency import async_sleep
from ...errors import (
    CodecError,
    ConfigurationError,
    InvalidArgument,
    PartialWrite,
    SourceError,
    TierError,
    TierTimeout,
)
from ...manager import AsyncCacheManager, WriteReport
from .._warmkit import Scope, WarmupResult, check_request
from ..config import MigrationCacheConfig
from ..keys import KeyGenerator, check_id
from ..models import (
    MIGRATION_EVENTS,
    MigrationCheckpoint,
    MigrationEvent,
    MigrationProgress,
    MigrationState,
    MigrationUpdate,
)
from ..sources import MigrationSource
from .base import AsyncDomainCache

__all__ = [
    "MIGRATION_COMPLETED",
    "MIGRATION_FAILED",
    "MIGRATION_PROGRESS",
    "AsyncMigrationStateCache",
    "MigrationCacheConfig",
]

#: Invalidation events (field ``migration_id``; after the namespace, see ``event``):
#: progress drops the cached state, completion drops the progress and the checkpoints,
#: failure drops the progress.
MIGRATION_PROGRESS = "migration.progress"
MIGRATION_COMPLETED = "migration.completed"
MIGRATION_FAILED = "migration.failed"

_ids = itertools.count()


def _redis_tier(manager: Any) -> Any:
    """The manager's remote tier when it is a Redis tier (streams live there)."""
    remote = manager.remote
    if remote is None:
        return None
    try:
        from ...tiers._redis_base import RedisTierBase
    except ImportError:  # redis-py is not installed: no Redis tier either
        return None
    return remote if isinstance(remote, RedisTierBase) else None


def _caught() -> tuple[type[BaseException], ...]:
    from ...tiers._redis_base import _CAUGHT

    return _CAUGHT


class AsyncMigrationStateCache(AsyncDomainCache):
    """Migrations through a manager.

    :param manager: an :class:`~novacache.manager.AsyncCacheManager` with a store (L3):
        checkpoints are durable there before :meth:`store_checkpoint` returns. Its codec
        must know the models (``codec=novacache.novacron.codec()``).
    :param source: the migration engine (:class:`~novacache.novacron.sources.MigrationSource`),
        or ``None`` when only events feed the cache (then a state or progress never
        reported is a :class:`SourceError`).
    :param config: a :class:`MigrationCacheConfig`.
    """

    source_name = "migration"

    def __init__(
        self,
        manager: AsyncCacheManager,
        source: MigrationSource | None = None,
        config: MigrationCacheConfig | None = None,
        *,
        keys: KeyGenerator | None = None,
    ) -> None:
        super().__init__(manager, keys)
        if manager.store is None:
            raise ConfigurationError(
                "MigrationStateCache stores checkpoints durably: give the manager a store "
                "(L3: SQLite or PostgreSQL)"
            )
        self.source = source
        self.config = config if config is not None else MigrationCacheConfig()
        if not isinstance(self.config, MigrationCacheConfig):
            raise ConfigurationError("config is a MigrationCacheConfig")
        self.redis = _redis_tier(manager)
        k = self.keys
        self._rule(MIGRATION_PROGRESS, keys=[k.template("migration_state")])
        self._rule(
            MIGRATION_COMPLETED,
            keys=[k.template("migration_progress")],
            tags=[k.template("checkpoint_index")],
        )
        self._rule(MIGRATION_FAILED, keys=[k.template("migration_progress")])

    # -- reads ------------------------------------------------------------------------

    def _source(self) -> MigrationSource:
        if self.source is None:
            raise SourceError(self.source_name, "read", "no migration source, nothing cached")
        return self.source

    async def get_state(self, migration_id: str) -> MigrationState:
        """The state of ``migration_id`` (cached ``state_ttl``; dropped by progress)."""
        key = self.keys.migration_state(migration_id)

        async def load() -> MigrationState:
            fn = self._source().get_migration_state
            return await self._call("get_migration_state", fn, migration_id)  # type: ignore[no-any-return]

        return await self._read_through(
            key, MigrationState, "get_migration_state", load, self.config.state_ttl
        )

    async def get_progress(self, migration_id: str) -> MigrationProgress:
        """The progress of ``migration_id`` (cached ``progress_ttl``)."""
        key = self.keys.migration_progress(migration_id)

        async def load() -> MigrationProgress:
            fn = self._source().get_migration_progress
            return await self._call("get_migration_progress", fn, migration_id)  # type: ignore[no-any-return]

        return await self._read_through(
            key, MigrationProgress, "get_migration_progress", load, self.config.progress_ttl
        )

    # -- checkpoints ------------------------------------------------------------------

    async def store_checkpoint(self, migration_id: str, checkpoint: MigrationCheckpoint) -> None:
        """Store ``checkpoint`` durably: when this returns, the store (L3) holds it and
        the migration's index names it. A store that failed raises
        :class:`~novacache.errors.PartialWrite` (``failed`` names it), whatever the
        manager's write policy; a failure of another tier only is counted."""
        mid = check_id("migration_id", migration_id)
        if not isinstance(checkpoint, MigrationCheckpoint):
            raise InvalidArgument("store_checkpoint takes a MigrationCheckpoint")
        if checkpoint.migration_id != mid:
            raise InvalidArgument(
                f"checkpoint of migration {checkpoint.migration_id!r:.60} given for {mid!r}"
            )
        key = self.keys.migration_checkpoint(mid, checkpoint.sequence_number)
        tag = self.keys.checkpoint_index(mid)
        try:
            report: WriteReport = await self.manager.set(
                key, checkpoint, self.config.checkpoint_ttl, [tag]
            )
        except PartialWrite as exc:
            report = WriteReport(exc.written, exc.failed)
        if not report.ok:
            self.stats.add("write_errors")
        if "store" in report.failed or "store" not in report.written:
            # Not durable: the tiers that took it must not serve it either.
            await self._drop(key)
            raise PartialWrite("store_checkpoint", dict(report.failed), report.written)
        self.stats.add("checkpoints")

    async def _drop(self, key: str) -> None:
        try:
            await self.manager.delete(key)
        except PartialWrite:
            self.stats.add("write_errors")

    async def get_checkpoints(self, migration_id: str) -> list[MigrationCheckpoint]:
        """The checkpoints of ``migration_id`` stored so far, by sequence number: the
        keys come from the migration's index (a Redis set, the store's tag table; never
        a keyspace scan), the values from one ``get_many``. Expired ones are left out.
        Raises the index's :class:`~novacache.errors.TierError` when no index answers."""
        mid = check_id("migration_id", migration_id)
        members = await self._index_members(self.keys.checkpoint_index(mid))
        numbered = sorted(
            (seq, key)
            for key in members
            if (seq := self.keys.sequence_of(key)) is not None
            and key == self.keys.migration_checkpoint(mid, seq)
        )
        if not numbered:
            return []
        found = await self.manager.get_many([key for _, key in numbered])
        out: list[MigrationCheckpoint] = []
        for _, key in numbered:
            value = found.get(key)
            if isinstance(value, MigrationCheckpoint):
                out.append(value)
            elif value is not None:
                self.stats.add("wrong_type")
        return out

    # -- events -----------------------------------------------------------------------

    async def handle_event(self, event: MigrationEvent) -> MigrationUpdate:
        """Apply an event of the migration engine, then append it to the migration's
        update log (what :meth:`stream_updates` reads); returns the update appended.

        - ``started``: caches ``event.state``;
        - ``progress``: caches ``event.progress`` (``progress_ttl``) and drops the state;
        - ``checkpointed``: :meth:`store_checkpoint` (raises when not durable);
        - ``completed``: drops the progress and the checkpoints, caches the final state;
        - ``failed``: drops the progress, caches the failed state (checkpoints stay, to
          resume from).

        A cache tier that fails is counted (``write_errors``); the update log that
        cannot be written raises its :class:`~novacache.errors.TierError` (the event
        was applied to the cache; retrying it is harmless).
        """
        if not isinstance(event, MigrationEvent):
            raise TypeError("handle_event takes a MigrationEvent")
        if event.type not in MIGRATION_EVENTS:
            raise InvalidArgument(
                f"event type is one of {', '.join(MIGRATION_EVENTS)}, not {event.type!r:.40}"
            )
        mid = check_id("migration_id", event.migration_id)
        k = self.keys
        c = self.config
        if event.state is not None and event.state.migration_id != mid:
            raise InvalidArgument("the event's state is of another migration")
        if event.type == "started":
            if event.state is None:
                raise InvalidArgument("a started event carries the state")
            await self._write(k.migration_state(mid), event.state, c.state_ttl)
        elif event.type == "progress":
            if event.progress is None or event.progress.migration_id != mid:
                raise InvalidArgument("a progress event carries the migration's progress")
            await self._write(k.migration_progress(mid), event.progress, c.progress_ttl)
            await self._emit(MIGRATION_PROGRESS, migration_id=mid)
        elif event.type == "checkpointed":
            if event.checkpoint is None:
                raise InvalidArgument("a checkpointed event carries the checkpoint")
            await self.store_checkpoint(mid, event.checkpoint)
        else:
            await self._emit(
                MIGRATION_COMPLETED if event.type == "completed" else MIGRATION_FAILED,
                migration_id=mid,
            )
            if event.state is not None:
                await self._write(k.migration_state(mid), event.state, c.state_ttl)
        update = MigrationUpdate(
            event.type,
            mid,
            "",
            event.state,
            event.progress,
            event.checkpoint,
            event.error,
            event.timestamp or time.time(),
        )
        update_id = await self._append(mid, update)
        self.stats.add("updates_published")
        return dataclasses.replace(update, update_id=update_id)

    # -- the update log ---------------------------------------------------------------

    async def _append(self, mid: str, update: MigrationUpdate) -> str:
        log = self.keys.update_log(mid)
        tier = self.redis
        if tier is None:
            # The store: one entry per update under an id that sorts in time, indexed
            # under the log's tag (no scan to find them).
            update_id = f"{time.time_ns():020d}-{os.getpid():07d}-{next(_ids) % 10**9:09d}"
            key = self.keys.migration_update(mid, update_id)
            try:
                report: WriteReport = await self.manager.set(
                    key, update, self.config.update_ttl, [log]
                )
            except PartialWrite as exc:
                if "store" in exc.failed:
                    raise exc.failed["store"] from exc
                self.stats.add("write_errors")
            else:
                if "store" in report.failed:
                    raise report.failed["store"]
            return update_id
        frame = self.manager.codec.encode(log, update)
        try:
            client = tier._client or tier._connect()
            async with tier._gate:  # unasync: unwrap
                entry = await client.xadd(
                    tier._key(log),
                    {b"u": frame},
                    maxlen=self.config.stream_buffer_size,
                    approximate=True,
                )
                ttl_ms = int(self.config.update_ttl * 1000)
                await client.pexpire(tier._key(log), ttl_ms)
        except _caught() as exc:
            raise tier._translate("xadd", exc) from exc
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    async def stream_updates(
        self,
        migration_id: str,
        *,
        after: str = "0",
        idle_timeout: float | None = None,
    ) -> AsyncIterator[MigrationUpdate]:
        """The updates of ``migration_id`` after ``after`` (an ``update_id``; ``"0"``:
        from the start of the log), in order, as they are appended; ends after the
        ``completed`` or ``failed`` update.

        On Redis it is a blocking ``XREAD`` of the migration's stream; a read that fails
        (the server restarted, the connection dropped) is retried from the last id
        read, with a growing pause up to a second (``stream_reconnects`` counts them),
        so nothing is skipped or repeated. On the store the log's index is polled every
        ``poll_interval``. With ``idle_timeout``, :class:`~novacache.errors.TierTimeout`
        is raised when nothing arrived for that many seconds.
        """
        mid = check_id("migration_id", migration_id)
        if not isinstance(after, str):
            raise InvalidArgument("after is an update id (str)")
        if self.redis is None:
            source = self._poll_store(mid, after, idle_timeout)
        else:
            source = self._read_stream(mid, after, idle_timeout)
        async for update in source:
            yield update
            if update.final:
                return

    async def _read_stream(
        self, mid: str, after: str, idle_timeout: float | None
    ) -> AsyncIterator[MigrationUpdate]:
        tier = self.redis
        log = self.keys.update_log(mid)
        raw = tier._key(log)
        last = after
        pause = 0.05
        quiet_since = time.monotonic()
        caught = _caught()
        while True:
            if idle_timeout is not None and time.monotonic() - quiet_since > idle_timeout:
                raise TierTimeout(f"no update of migration {mid!r} for {idle_timeout} s")
            try:
                client = tier._client or tier._connect()
                async with tier._gate:  # unasync: unwrap
                    reply = await client.xread({raw: last}, count=100, block=self.config.block_ms)
            except caught as exc:
                tier._translate("xread", exc)  # counted by the tier and its breaker
                self.stats.add("stream_reconnects")
                await async_sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            pause = 0.05
            for entry_id, fields in _entries(reply):
                last = entry_id
                quiet_since = time.monotonic()
                update = self._decode(log, fields.get(b"u"))
                if update is not None:
                    yield dataclasses.replace(update, update_id=entry_id)

    def _decode(self, key: str, frame: Any) -> MigrationUpdate | None:
        if not isinstance(frame, bytes):
            self.stats.add("wrong_type")
            return None
        try:
            value = self.manager.codec.decode(key, frame)
        except CodecError:
            self.stats.add("wrong_type")
            return None
        if not isinstance(value, MigrationUpdate):
            self.stats.add("wrong_type")
            return None
        return value

    async def _poll_store(
        self, mid: str, after: str, idle_timeout: float | None
    ) -> AsyncIterator[MigrationUpdate]:
        log = self.keys.update_log(mid)
        prefix = self.keys.migration_update(mid, "")
        seen: set[str] = set()
        quiet_since = time.monotonic()
        while True:
            if idle_timeout is not None and time.monotonic() - quiet_since > idle_timeout:
                raise TierTimeout(f"no update of migration {mid!r} for {idle_timeout} s")
            try:
                members = await self._index_members(log)
            except TierError:
                self.stats.add("stream_reconnects")
                members = set()
            fresh = sorted(
                key
                for key in members
                if key.startswith(prefix) and key not in seen and key[len(prefix) :] > after
            )
            if fresh:
                found = await self.manager.get_many(fresh)
                for key in fresh:
                    value = found.get(key)
                    if value is None:
                        continue  # not readable yet (or expired): looked at again next time
                    seen.add(key)
                    if not isinstance(value, MigrationUpdate):
                        self.stats.add("wrong_type")
                        continue
                    quiet_since = time.monotonic()
                    yield dataclasses.replace(value, update_id=key[len(prefix) :])
            await async_sleep(self.config.poll_interval)

    # -- warm-up ----------------------------------------------------------------------

    async def warmup(
        self,
        scope: Scope,
        targets: Sequence[str],
        *,
        parameters: Mapping[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> WarmupResult:
        """Load state and progress of the migrations in flight from or to ``targets``
        (scope ``"node"``) or of all of them (``"cluster"``, ``"all"``). Parameter
        ``force``: reload what is cached."""
        start = time.perf_counter()
        _scope, nodes, params = check_request(scope, targets, parameters, {"force": bool})
        src = self._source()
        ids: list[str] = []
        if nodes:
            for node in nodes:
                ids += await self._list("list_migrations", src.list_migrations, node)
        else:
            ids = await self._list("list_migrations", src.list_migrations, None)
        ids = list(dict.fromkeys(check_id("migration_id", i) for i in ids))
        force = bool(params.get("force", False))
        loaded = skipped = failed = done = 0
        total = 2 * len(ids)
        for mid in ids:
            plan: list[tuple[str, type, Any, float, str]] = [
                (self.keys.migration_state(mid), MigrationState, src.get_migration_state,
                 self.config.state_ttl, "get_migration_state"),
                (self.keys.migration_progress(mid), MigrationProgress,
                 src.get_migration_progress, self.config.progress_ttl,
                 "get_migration_progress"),
            ]  # fmt: skip
            for key, kind, fn, ttl, op in plan:
                if not force and isinstance(await self.manager.get(key), kind):
                    skipped += 1
                else:
                    try:
                        value: Any = self._expect(op, await self._call(op, fn, mid), kind, key)
                    except SourceError:
                        failed += 1
                    else:
                        await self._write(key, value, ttl)
                        loaded += 1
                done += 1
                if progress is not None:
                    progress(done, total)
        return WarmupResult(loaded, skipped, failed, time.perf_counter() - start)


def _entries(reply: Any) -> list[tuple[str, dict[bytes, Any]]]:
    """The ``(id, fields)`` of an XREAD reply (RESP2 list or RESP3 map, one stream)."""
    if not reply:
        return []
    streams = reply.items() if isinstance(reply, dict) else reply
    out: list[tuple[str, dict[bytes, Any]]] = []
    for _name, entries in streams:
        if isinstance(entries, list) and entries and isinstance(entries[0], list):
            entries = entries[0]  # RESP3 wraps the entries in one more list
        for entry_id, fields in entries:
            text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            out.append((text, dict(fields) if fields else {}))
    return out
