"""What the asyncio domain caches share: the manager and its invalidation engine, the
calls to a source (typed errors, type checks), reads through the manager, counters.

The one hand-written source of ``../_sync/base.py`` (``scripts/unasync.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from ..._concurrency import IS_ASYNC, async_call_side
from ..._counters import Counters
from ...errors import (
    CodecError,
    ConfigurationError,
    NovaCacheError,
    PartialWrite,
    SourceError,
    TierError,
)
from ...invalidation import AsyncInvalidationEngine, EmitReport
from ...manager import AsyncCacheManager, WriteReport
from ..keys import KeyGenerator
from ..models import VMState

__all__ = ["COUNTERS", "AsyncDomainCache"]

T = TypeVar("T")

#: The counters of every domain cache (``cache.stats``); each cache uses some of them.
COUNTERS = (
    "reads",  # calls that returned a value
    "source_calls",  # calls made to the source (a batch call counts once)
    "source_errors",  # source calls that raised or answered with the wrong type
    "source_missing",  # ids a batch source call left out of its answer
    "wrong_type",  # a cached value of another type under a domain key: reloaded
    "write_errors",  # cache writes that failed on some tier (the caller still got its value)
    "index_errors",  # reads of a per-migration index that failed on one index
    "invalidations",  # events emitted to the invalidation engine
    "stale_refetches",  # capacities past their freshness bound, fetched again
    "recommendations_revalidated",  # cached recommendations checked and served
    "recommendations_rejected",  # cached recommendations that no longer fit: recomputed
    "precache_loaded",  # entries pre-loaded by predictive caching
    "precache_skipped",  # predicted entries already cached and fresh
    "precache_failed",  # predicted entries the source failed for
    "sync_changes",  # VM states found changed by the real-time sync
    "checkpoints",  # checkpoints stored durably
    "updates_published",  # migration updates appended to the update log
    "stream_reconnects",  # update-log reads that failed and were retried
)


class DomainStats:
    """Exact counters of one domain cache (see :data:`COUNTERS`)."""

    def __init__(self) -> None:
        self._counters = Counters(COUNTERS)

    def add(self, name: str, n: int = 1) -> None:
        self._counters.add_name(name, n)

    def __getitem__(self, name: str) -> int:
        return self.snapshot()[name]

    def snapshot(self) -> dict[str, int]:
        """Every counter, read at once."""
        return dict(self._counters.snapshot())


class AsyncDomainCache:
    """The base of the asyncio domain caches (not used alone).

    :param manager: the :class:`~novacache.manager.AsyncCacheManager` to cache in; its
        codec must round-trip the models (build it with ``codec=novacron.codec()``).
        Its invalidation engine is used, or one is made and bound to it.
    :param keys: the :class:`~novacache.novacron.KeyGenerator` (``novacron:v1:``).
    """

    source_name = "source"

    def __init__(self, manager: AsyncCacheManager, keys: KeyGenerator | None = None) -> None:
        if IS_ASYNC:  # noqa: SIM108 (unasync keeps the else branch only)
            wanted = True
        else:
            wanted = False
        if getattr(manager, "_async_tiers", None) is not wanted or not hasattr(manager, "codec"):
            kind = "an AsyncCacheManager" if wanted else "a CacheManager"
            raise ConfigurationError(f"{type(self).__name__} caches in {kind}")
        try:
            manager.codec.encode("novacron:probe", VMState("probe", "running", "node"))
        except CodecError:
            raise ConfigurationError(
                "the manager's codec cannot encode the NovaCron models: build the manager "
                "with codec=novacache.novacron.codec()"
            ) from None
        self.manager = manager
        self.keys = keys if keys is not None else KeyGenerator()
        engine = manager.invalidation
        if engine is None:
            engine = AsyncInvalidationEngine(manager)
        self.engine: AsyncInvalidationEngine = engine
        self.stats = DomainStats()

    # -- rules ------------------------------------------------------------------------

    def event(self, name: str) -> str:
        """The invalidation event ``name`` of this cache's namespace
        (``"novacron:v1:vm.state_changed"``): caches in other namespaces on the same
        manager have events of their own."""
        return f"{self.keys.prefix}{name}"

    def _rule(
        self,
        name: str,
        keys: Iterable[str] = (),
        patterns: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> None:
        """Add the rule of event ``name`` in this namespace, once per engine (several
        caches may share one)."""
        event = self.event(name)
        if self.engine.rules.rules(event):
            return
        self.engine.rule(event, keys, patterns, tags)

    async def _emit(self, name: str, **fields: Any) -> EmitReport:
        self.stats.add("invalidations")
        report: EmitReport = await self.engine.emit(self.event(name), **fields)
        if not report.ok:
            self.stats.add("write_errors")
        return report

    # -- the source -------------------------------------------------------------------

    async def _call(self, op: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` (awaited when it returns an awaitable), as a source call: any
        exception it raises becomes :class:`SourceError`."""
        self.stats.add("source_calls")
        try:
            result = fn(*args)
            if IS_ASYNC:  # noqa: SIM102 (unasync drops the whole block)
                if inspect.isawaitable(result):
                    result = await result
        except NovaCacheError as exc:
            self.stats.add("source_errors")
            raise SourceError(self.source_name, op, f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            self.stats.add("source_errors")
            raise SourceError(self.source_name, op, type(exc).__name__) from exc
        return result

    def _expect(self, op: str, value: Any, kind: type[T], what: str) -> T:
        """``value`` when it is a ``kind``; else :class:`SourceError` (nothing cached)."""
        if not isinstance(value, kind):
            self.stats.add("source_errors")
            raise SourceError(
                self.source_name,
                op,
                f"answered {type(value).__name__} for {what:.80}, not {kind.__name__}",
            )
        return value

    async def _list(self, op: str, fn: Callable[..., Any], *args: Any) -> list[str]:
        """A list of ids from the source (for warm-up), checked."""
        found = await self._call(op, fn, *args)
        if isinstance(found, (str, bytes)) or not isinstance(found, Sequence | set | frozenset):
            self.stats.add("source_errors")
            raise SourceError(self.source_name, op, "did not answer a list of ids")
        ids = list(found)
        if not all(isinstance(i, str) for i in ids):
            self.stats.add("source_errors")
            raise SourceError(self.source_name, op, "answered ids that are not str")
        return ids

    # -- reads and writes through the manager -----------------------------------------

    async def _read_through(
        self,
        key: str,
        kind: type[T],
        op: str,
        load: Callable[[], Awaitable[T]],
        ttl: float,
        tags: Iterable[str] = (),
    ) -> T:
        """The ``kind`` cached under ``key``, else ``load()``'s (checked, then cached for
        ``ttl``). One load per key at a time (the manager's single-flight); a tier that
        fails reads as a miss (the manager counts it); a load that fails raises
        :class:`SourceError` and caches nothing."""

        async def loader() -> T:
            return self._expect(op, await load(), kind, key)

        value = await self.manager.get_or_load(key, loader, ttl, tags=tags)
        if not isinstance(value, kind):
            # Something else was stored under our key: replace it with the source's.
            self.stats.add("wrong_type")
            value = await loader()
            await self._write(key, value, ttl, tags)
        self.stats.add("reads")
        return value

    async def _write(
        self, key: str, value: Any, ttl: float | None, tags: Iterable[str] = ()
    ) -> WriteReport | None:
        """``manager.set``: a tier that fails is counted (``write_errors``), not raised."""
        try:
            report: WriteReport = await self.manager.set(key, value, ttl, tags)
        except PartialWrite:
            self.stats.add("write_errors")
            return None
        if not report.ok:
            self.stats.add("write_errors")
        return report

    async def _write_many(self, items: dict[str, Any], ttl: float | None) -> None:
        if not items:
            return
        try:
            report: WriteReport = await self.manager.set_many(items, ttl)
        except PartialWrite:
            self.stats.add("write_errors")
            return
        if not report.ok:
            self.stats.add("write_errors")

    async def _index_members(self, tag: str) -> set[str]:
        """The keys recorded under ``tag`` in the manager's tag indexes (a Redis set,
        the store's tag table: no keyspace scan). An index that fails is counted and
        skipped; when every index failed its error is raised."""
        found: set[str] = set()
        error: TierError | None = None
        answered = False
        for index in self.manager._indexes():
            try:
                found |= await async_call_side(index.members, (tag,))
                answered = True
            except TierError as exc:
                self.stats.add("index_errors")
                error = exc
        if not answered and error is not None:
            raise error
        return found
