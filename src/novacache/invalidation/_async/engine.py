"""The invalidation engine, written once: :class:`AsyncInvalidationEngine` (for the
``AsyncCacheManager``) is the hand-written source; ``InvalidationEngine`` (for the
``CacheManager``) is generated from it by ``scripts/unasync.py``. What it promises:
:mod:`novacache.invalidation` and ``docs/invalidation.md``.
"""

from __future__ import annotations

import inspect
import math
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

from ..._concurrency import (
    IS_ASYNC,
    AsyncEvent,
    AsyncMutex,
    AsyncWorker,
    async_call_side,
)
from ...consistency import hlc
from ...consistency.hlc import Version
from ...errors import ConfigurationError, PartialWrite, TierError
from ...manager._base import Down, note_down, through_tier
from ...manager.envelope import is_tombstone
from ...manager.stats import WriteReport
from ..indexes import indexes_for
from ..rules import (
    EventRules,
    InvalidationStrategy,
    Rule,
    Targets,
    Template,
    TTLRules,
    _glob_regex,
)
from ..smart import SmartRefresh, Tracked
from ..stats import EmitReport, InvalidationStats

if IS_ASYNC:
    import asyncio
else:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["AsyncBatchInvalidator", "AsyncInvalidationEngine"]

_PATTERN = "p:"  # index names: a pattern instance ...
_DEPENDS = "d:"  # ... or the dependents of a key
_RIDE_BYTES = 1 << 20  # a larger bus message is published on its own


class AsyncInvalidationEngine:
    """Event rules, patterns indexed at write time, dependencies, TTL rules, smart
    refresh and batching, bound to one manager (``manager.invalidation``).

    :param manager: the :class:`~novacache.manager.AsyncCacheManager` to serve (the
        synchronous ``InvalidationEngine`` serves a ``CacheManager``). It gets its write
        hooks: keys that fall under a registered pattern are indexed as they are written,
        writes without a TTL get the TTL rules' TTL, and ``get_or_load`` misses feed the
        smart tracker. One engine per manager.
    :param ttl_rules: default TTLs by prefix or pattern (a :class:`TTLRules` or a dict).
    :param smart: a :class:`SmartRefresh` to reload hot keys instead of dropping them
        (``None``: every invalidated key is dropped).
    :param strategies: more strategies (see :class:`InvalidationStrategy`), after the
        event rules (``engine.rules``).
    :param dependencies: follow dependency edges (``depends``) when invalidating.
    :param max_depth: levels of dependents followed at most.
    :param max_keys: keys one invalidation takes at most (beyond: ``truncated``).
    :param scan_limit: keys one SCAN fallback takes at most, per pattern and tier.
    :param grace: seconds an index entry read by an invalidation is kept (a write that
        raced the invalidation is still found by the next one meanwhile).
    """

    def __init__(
        self,
        manager: Any,
        *,
        ttl_rules: TTLRules | Mapping[str, float] | None = None,
        smart: SmartRefresh | None = None,
        strategies: Iterable[InvalidationStrategy] = (),
        dependencies: bool = True,
        max_depth: int = 8,
        max_keys: int = 100_000,
        scan_limit: int = 10_000,
        grace: float = 60.0,
    ) -> None:
        if IS_ASYNC:  # noqa: SIM108 (unasync keeps the else branch only)
            wanted = True
        else:
            wanted = False
        if getattr(manager, "_async_tiers", None) is not wanted or not hasattr(
            manager, "_on_write"
        ):
            kind = "an AsyncCacheManager" if wanted else "a CacheManager"
            raise ConfigurationError(f"{type(self).__name__} serves {kind}")
        if manager._on_write is not None:
            raise ConfigurationError("this manager already has an invalidation engine")
        for name, value in (("max_depth", max_depth), ("max_keys", max_keys),
                            ("scan_limit", scan_limit)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be an int >= 1, not {value!r}")
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace > 0:
            raise ConfigurationError(f"grace must be a number of seconds > 0, not {grace!r}")
        if smart is not None and not isinstance(smart, SmartRefresh):
            raise ConfigurationError("smart must be a SmartRefresh")
        self.manager = manager
        self.rules = EventRules()
        self.strategies: list[InvalidationStrategy] = [self.rules]
        self.ttl_rules = ttl_rules if isinstance(ttl_rules, TTLRules) else TTLRules(ttl_rules)
        self.smart = smart
        self.dependencies = dependencies
        self.max_depth = max_depth
        self.max_keys = max_keys
        self.scan_limit = scan_limit
        self.grace = float(grace)
        self.stats = InvalidationStats()
        self._templates: dict[str, Template] = {}
        self._patterns: tuple[Template, ...] = ()
        self.indexes = indexes_for(manager.local, manager.remote, manager.store, manager.clock)
        self._mutex = AsyncMutex()
        self._pending = 0
        self._closed = False
        self._batches: list[AsyncBatchInvalidator] = []
        if IS_ASYNC:
            self._tasks: set[asyncio.Task[None]] = set()
            self._gate: asyncio.Semaphore | None = None
        else:
            self._pool: ThreadPoolExecutor | None = None
        for strategy in strategies:
            self.add_strategy(strategy)
        manager._on_write = self
        manager.invalidation = self

    # -- configuration ------------------------------------------------------------------

    def rule(
        self,
        event: str,
        keys: Iterable[str] = (),
        patterns: Iterable[str] = (),
        tags: Iterable[str] = (),
        *,
        name: str | None = None,
    ) -> Rule:
        """Add an event rule (see :meth:`EventRules.rule`); its patterns are indexed from
        now on, as matching keys are written."""
        built = self.rules.rule(event, keys, patterns, tags, name=name)
        if built.tags:
            self.manager._indexes()  # ConfigurationError now if tags cannot work here
        for template in built.patterns:
            self._watch(template)
        return built

    def watch(self, *patterns: str) -> None:
        """Index ``patterns`` (templates) as keys are written, without a rule: for
        :meth:`invalidate` ``(patterns=...)`` with instances of them."""
        for text in patterns:
            self._watch(Template(text, pattern=True))

    def add_strategy(self, strategy: InvalidationStrategy) -> None:
        """Add a strategy (after the ones there); its patterns are indexed from now on."""
        if not isinstance(strategy, InvalidationStrategy):
            raise ConfigurationError("a strategy has a name, targets(event, fields) and patterns()")
        self.strategies.append(strategy)
        for template in strategy.patterns():
            self._watch(template)

    def _watch(self, template: Template) -> None:
        with self._mutex:
            self._templates.setdefault(template.text, template)
            self._patterns = tuple(self._templates.values())

    def patterns(self) -> list[str]:
        """The pattern templates indexed at write time."""
        return list(self._templates)

    async def backfill(self, pattern: str, *, limit: int | None = None) -> int:
        """Index the keys already stored that fall under the registered pattern template
        ``pattern`` (written before its rule existed): a SCAN of each tier below of at
        most ``limit`` keys (default ``scan_limit``), each key indexed with its remaining
        TTL there. A one-off operation for rolling out a rule, never run per event;
        returns how many keys were indexed (``backfilled`` is counted). Raises
        ``ConfigurationError`` for a pattern that is not registered, ``TierError``
        when a tier or an index fails."""
        template = self._templates.get(pattern)
        if template is None:
            raise ConfigurationError(f"{pattern!r} is not a registered pattern template")
        limit = self.scan_limit if limit is None else limit
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, not {limit!r}")
        glob = template.glob()
        indexed: set[str] = set()
        for _, tier in self.manager._below:
            found, _, _ = await _scan_live(
                tier, glob, limit, lambda k: k not in indexed and template.instance(k) is not None
            )
            for key in found:
                left = await tier.ttl(key)
                if left is None:
                    continue  # gone meanwhile
                failed: dict[str, TierError] = {}
                await self.index([key], None if math.isinf(left) else left, failed, {})
                if failed:
                    raise next(iter(failed.values()))
                indexed.add(key)
        self.stats.add("backfilled", len(indexed))
        return len(indexed)

    # -- the manager's hooks --------------------------------------------------------------

    def ttl_for(self, key: str) -> float | None:
        """The TTL rules' TTL for a write of ``key`` that gives none (``None``: no rule
        names it; ``math.inf``: no expiry)."""
        rules = self.ttl_rules
        if not rules or not isinstance(key, str):
            return None  # (the manager refuses a key that is no str with its own error)
        ttl = rules.ttl_for(key)
        if ttl is not None:
            self.stats.add("ttl_ruled")
        return ttl

    async def index(
        self, keys: list[str], ttl: float | None, failed: dict[str, TierError], down: Down
    ) -> None:
        """Record the keys being written under the pattern instances they fall under,
        before the values are written (a failure goes into ``failed``, as the tag index's
        does)."""
        patterns = self._patterns
        if not patterns:
            return
        pairs = [
            (_PATTERN + found, key)
            for key in keys
            if isinstance(key, str)
            for template in patterns
            if (found := template.instance(key)) is not None
        ]
        if pairs:
            await self._add(pairs, ttl, failed, down)

    async def set_many(self, items: Mapping[str, Any], tags: Iterable[str]) -> WriteReport:
        """``manager.set_many(items)`` without a TTL, under TTL rules: one ``set_many`` per
        TTL the rules give (the manager's default TTL for keys no rule names)."""
        manager = self.manager
        groups: dict[float, dict[str, Any]] = {}
        default = manager.default_ttl if manager.default_ttl is not None else math.inf
        for key, value in items.items():
            ttl = self.ttl_for(key)
            groups.setdefault(default if ttl is None else ttl, {})[key] = value
        tags = list(tags)
        written: list[str] = []
        failed: dict[str, TierError] = {}
        for ttl, group in groups.items():
            try:
                report = await manager.set_many(group, ttl, tags)
            except PartialWrite as exc:
                report = WriteReport(exc.written, exc.failed)
            written += [slot for slot in report.written if slot not in written]
            failed.update(report.failed)
        if failed and manager.on_write_error == "raise":
            raise PartialWrite("set_many", failed, tuple(written))
        return WriteReport(tuple(written), failed)

    def accessed(self, key: str, loader: Any, ttl: float | None, tags: Iterable[str]) -> None:
        """A ``get_or_load`` of ``key`` missed L1 (for the smart tracker)."""
        smart = self.smart
        if smart is not None:
            if IS_ASYNC:
                smart.accessed(key, loader, ttl, tags)
            else:
                if inspect.iscoroutinefunction(loader):
                    return  # the synchronous engine cannot run it
                smart.accessed(key, loader, ttl, tags)

    def loaded(self, key: str, seconds: float) -> None:
        """The loader of ``key`` took ``seconds`` (for the smart tracker)."""
        smart = self.smart
        if smart is not None:
            smart.loaded(key, seconds)

    # -- dependencies ---------------------------------------------------------------------

    async def depends(self, key: str, on: Iterable[str], ttl: float | None = None) -> None:
        """Record that ``key`` depends on each key of ``on``: invalidating one of them
        (by ``emit``, ``invalidate`` or a batch) invalidates ``key`` too, transitively.

        The edges live as long as ``key``: ``ttl`` seconds, or by default the remaining
        life of ``key`` in the first tier below L1 that holds it (else its TTL rule, else
        the manager's default TTL; none of these: until ``key`` is invalidated). Raises
        :class:`~novacache.errors.PartialWrite` when an index could not record them.
        """
        if not isinstance(key, str):
            raise TypeError(f"a key is a str, not {type(key).__name__}")
        if isinstance(on, str):
            raise TypeError("on is a list of keys, not one str")
        targets = list(dict.fromkeys(on))
        for other in targets:
            if not isinstance(other, str):
                raise TypeError(f"a key is a str, not {type(other).__name__}")
        if not targets:
            return
        life = await self._life(key) if ttl is None else ttl
        if life is not None and math.isinf(life):
            life = None
        elif life is not None and (isinstance(life, bool) or not life > 0):
            raise ValueError(f"ttl must be a real > 0, math.inf or None, not {life!r}")
        failed: dict[str, TierError] = {}
        await self._add([(_DEPENDS + other, key) for other in targets], life, failed, {})
        self.stats.add("edges", len(targets))
        if failed:
            written = tuple(i.slot for i in self.indexes if i.slot not in failed)
            raise PartialWrite("depends", failed, written)

    async def _life(self, key: str) -> float | None:
        manager = self.manager
        for slot, tier in manager._below:
            try:
                left = await tier.ttl(key)
            except TierError as exc:
                manager._report("ttl", slot, exc)
                continue
            if left is not None:
                return float(left)
        rule = self.ttl_for(key)
        return rule if rule is not None else manager.default_ttl

    # -- invalidating ---------------------------------------------------------------------

    def resolve(self, event: str, fields: Mapping[str, Any]) -> Targets:
        """What ``event`` names, from every strategy (no I/O). Raises
        :class:`~novacache.errors.MissingField` / ``EventFieldError`` before anything is
        done when a field is missing or unusable."""
        if not isinstance(event, str) or not event:
            raise ValueError(f"an event name is a non-empty str, not {event!r}")
        out = Targets()
        for strategy in self.strategies:
            found = strategy.targets(event, fields)
            if found:
                if not found.by:
                    found.by = [strategy.name]
                out.update(found)
        for who in out.by:
            self.stats.add_by(who, "events")
        self.stats.add("emits")
        return out

    def targets(
        self,
        keys: Iterable[str] = (),
        patterns: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> Targets:
        """Targets for :meth:`invalidate`: a pattern that is an instance of a registered
        pattern template is read from the indexes; any other pattern is resolved by the
        bounded SCAN fallback."""
        out = Targets(by=["invalidate"])
        for what, items in (("keys", keys), ("patterns", patterns), ("tags", tags)):
            if isinstance(items, str):
                raise TypeError(f"{what} is a list of str, not one str")
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"a key is a str, not {type(key).__name__}")
            out.keys.add(key)
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern:
                raise ValueError(f"a pattern is a non-empty str, not {pattern!r}")
            if any(t.instance(pattern) == pattern for t in self._patterns):
                out.patterns.add(pattern)
            else:
                out.scans.add(pattern)
        for tag in tags:
            if not isinstance(tag, str) or not tag:
                raise ValueError(f"a tag is a non-empty str, not {tag!r}")
            out.tags.add(tag)
        return out

    async def emit(self, event: str, /, **fields: Any) -> EmitReport:
        """Invalidate what the strategies name for ``event`` filled from ``fields``: in
        every tier, in this process's L1 and, through the bus, in every other process's
        L1; dependents too; hot keys with a loader are reloaded instead (``smart``).

        Never raises for a tier failure: the report says what each tier dropped and
        which failed. Raises :class:`~novacache.errors.MissingField` when a rule's
        placeholder has no field (nothing is invalidated then).
        """
        return await self.run(self.resolve(event, fields), event)

    async def invalidate(
        self,
        keys: Iterable[str] = (),
        *,
        patterns: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> EmitReport:
        """Invalidate ``keys``, the keys matching ``patterns`` and those carrying ``tags``,
        with their dependents (as :meth:`emit` does)."""
        return await self.run(self.targets(keys, patterns, tags), None)

    async def run(self, targets: Targets, event: str | None = None) -> EmitReport:
        """Invalidate ``targets`` (see :meth:`emit`)."""
        rider = self._rider_index()
        if rider is not None:
            return (await self._folded(rider, [targets], event))[0]
        report = EmitReport(event=event)
        errors: dict[str, TierError] = {}
        down: Down = {}
        depth = await self._named(targets, report, errors, down)
        wanted = [[_PATTERN + p for p in sorted(targets.patterns)]]
        self.stats.add("pattern_lookups", len(wanted[0]))
        frontiers = [list(depth) if self.dependencies else []]
        counted = [0]
        while wanted[0] or frontiers[0]:
            wanted[0] += [_DEPENDS + k for k in frontiers[0]]
            found = await self._take(wanted[0], errors, down)
            self._level(found, wanted, [depth], [report], frontiers, counted)
        dependents = counted[0]
        keys = set(depth)
        refreshed: set[str] = set()
        if self.smart is not None and keys:
            refreshed = self._refresh_hot(keys)
        drop = sorted(keys - refreshed)
        await self._drop(drop, report, errors, down)
        if targets.tags:
            await self._tag_drop(tuple(sorted(targets.tags)), errors, down)
        self._finish([targets], [report], [keys], [refreshed], [dependents], errors)
        return report

    async def run_many(
        self, batch: Sequence[Targets], event: str | None = None
    ) -> list[EmitReport]:
        """Run several invalidations together, each as :meth:`run` runs one, with its own
        report: one index read per level of dependents for all of them, one drop per
        tier (a pipeline of one delete per invalidation, where the tier can; the bus
        message rides in the Redis tier's when the bus is on that server), one bus
        message. When this returns, every invalidation of ``batch`` is done in every
        tier, this process's L1 and (the bus) every other process's L1.

        Each report's ``dropped`` counts what its own invalidation dropped (a key two of
        them name is counted by the first, which dropped it); a tier or bus failure is
        in every report (each had its part in the call that failed).

        Over a Redis tier (not a Cluster) whose server holds the dependency index, and
        without ``smart``, the index read of the dependents of each level's keys rides
        in the round trip of those keys' tombstones (see :meth:`_folded`): a batch whose
        keys have no dependents is one round trip to Redis."""
        if not batch:
            return []
        rider = self._rider_index()
        if rider is not None:
            return await self._folded(rider, batch, event)
        if len(batch) < 2:
            return [await self.run(targets, event) for targets in batch]
        reports, errors, down, depths, wanted = await self._begin(batch, event)
        frontiers = [list(depth) if self.dependencies else [] for depth in depths]
        dependents = [0] * len(batch)
        while True:
            for names, frontier in zip(wanted, frontiers, strict=True):
                names += [_DEPENDS + k for k in frontier]
            asked = list(dict.fromkeys(name for names in wanted for name in names))
            if not asked:
                break
            found = await self._take(asked, errors, down)
            self._level(found, wanted, depths, reports, frontiers, dependents)
        refreshed: list[set[str]] = []
        drops: list[list[str]] = []
        for depth in depths:
            keys = set(depth)
            hot: set[str] = set()
            if self.smart is not None and keys:
                hot = self._refresh_hot(keys)
            refreshed.append(hot)
            drops.append(sorted(keys - hot))
        await self._drop_groups(drops, reports, errors, down)
        for targets in batch:
            if targets.tags:
                await self._tag_drop(tuple(sorted(targets.tags)), errors, down)
        self._finish(batch, reports, depths, refreshed, dependents, errors)
        return reports

    def _rider_index(self) -> Any:
        """The index whose read can ride in the Redis tier's tombstone round trip (it
        lives on the manager's Redis tier, not a Cluster), when the invalidations can
        be folded (no ``smart``: which keys it reloads instead of dropping is decided
        over every key of an invalidation); else ``None``."""
        if self.smart is not None:
            return None
        remote = self.manager.remote
        for index in self.indexes:
            if (
                getattr(index, "tier", None) is remote
                and remote is not None
                and hasattr(index, "rider")
                and hasattr(remote, "tombstone_groups")
                and not getattr(remote, "_cluster", True)
            ):
                return index
        return None

    async def _folded(
        self, rider: Any, batch: Sequence[Targets], event: str | None
    ) -> list[EmitReport]:
        """:meth:`run_many` level by level: the keys the invalidations name are dropped
        in the round trip that reads their dependents from the index on the Redis tier
        (``rider``: its read rides before the tombstones in the tier's pipeline, with
        the bus message after them), the dependents found in the next one, and so on;
        other indexes are read just before each round trip. What each report says is
        what :meth:`run_many` says, but for where a key is counted: by the first
        invalidation that dropped it, level by level (a key one invalidation names and
        another reaches as a dependent is counted by the one that names it)."""
        reports, errors, down, depths, wanted = await self._begin(batch, event)
        frontiers = [list(depth) if self.dependencies else [] for depth in depths]
        fresh = [sorted(depth) for depth in depths]  # to drop in the next round trip
        dependents = [0] * len(batch)
        version = Version(hlc.tick(self.manager.clock()), hlc.writer())
        while True:
            for names, frontier in zip(wanted, frontiers, strict=True):
                names += [_DEPENDS + k for k in frontier]
            asked = list(dict.fromkeys(name for names in wanted for name in names))
            if not asked and not any(fresh):
                break
            found = await self._round(rider, asked, fresh, reports, errors, down, version)
            fresh = self._level(found, wanted, depths, reports, frontiers, dependents)
        for targets in batch:
            if targets.tags:
                await self._tag_drop(tuple(sorted(targets.tags)), errors, down)
        self._finish(batch, reports, depths, [()] * len(batch), dependents, errors)
        return reports

    async def _round(
        self,
        rider: Any,
        names: list[str],
        groups: list[list[str]],
        reports: list[EmitReport],
        errors: dict[str, TierError],
        down: Down,
        version: Version,
    ) -> dict[str, set[str]]:
        """One round trip of :meth:`_folded`: the index read of ``names`` (the other
        indexes first, then the Redis one riding in the tombstone round trip) and the
        drop of each group of keys in every tier, L1 and the bus; what the read found."""
        found = await self._take(names, errors, down, skip=rider) if names else {}
        if not any(groups):  # nothing to drop: the read alone
            if names:
                for name, keys in (await self._take(names, errors, down, only=rider)).items():
                    found.setdefault(name, set()).update(keys)
            return found
        slot = rider.slot
        take = None
        if names and slot not in down:
            try:
                take = rider.rider(names, self.grace)
            except TierError as exc:
                self._index_failed(slot, exc, errors, down)
        elif names:
            errors.setdefault(slot, down[slot])
        await self._drop_groups(
            groups,
            reports,
            errors,
            down,
            version=version,
            riders=() if take is None else (take,),
        )
        if names and take is None:
            got = await self._take(names, errors, down, only=rider)  # (could not ride)
        elif take is not None and take.answered:
            try:
                got = await rider.taken(take)
            except TierError as exc:
                self._index_failed(slot, exc, errors, down)
                got = {}
        else:
            if take is not None:  # the tier failed: the read with it
                error = errors.get(slot) or down.get(slot)
                if error is not None:
                    self._index_failed(slot, error, errors, down)
            got = {}
        for name, keys in got.items():
            found.setdefault(name, set()).update(keys)
        return found

    def _index_failed(
        self, slot: str, exc: TierError, errors: dict[str, TierError], down: Down
    ) -> None:
        note_down(down, slot, exc)
        errors.setdefault(slot, exc)
        self.stats.add("index_errors")
        self.manager._report("index_take", slot, exc)

    # -- the steps ------------------------------------------------------------------------

    async def _begin(
        self, batch: Sequence[Targets], event: str | None
    ) -> tuple[list[EmitReport], dict[str, TierError], Down, list[dict[str, int]], list[list[str]]]:
        """The start of a batch's walk: a report per invalidation, the errors and the
        tiers found down (filled as it goes), the keys each invalidation names itself at
        depth 0 (:meth:`_named`) and the index sets of its patterns, read first
        (counted)."""
        reports = [EmitReport(event=event) for _ in batch]
        errors: dict[str, TierError] = {}
        down: Down = {}
        depths: list[dict[str, int]] = []
        for targets, report in zip(batch, reports, strict=True):
            depths.append(await self._named(targets, report, errors, down))
        wanted = [[_PATTERN + p for p in sorted(t.patterns)] for t in batch]
        self.stats.add("pattern_lookups", sum(len(names) for names in wanted))
        return reports, errors, down, depths, wanted

    def _level(
        self,
        found: dict[str, set[str]],
        wanted: list[list[str]],
        depths: list[dict[str, int]],
        reports: list[EmitReport],
        frontiers: list[list[str]],
        dependents: list[int],
    ) -> list[list[str]]:
        """Record what one index read ``found`` for each invalidation of a batch (the
        names it ``wanted``: its patterns' sets and its frontier's dependents): the keys
        new to its ``depths``, at their level, counted in ``dependents``; its next
        ``frontiers``; ``truncated`` in its report where a bound cut the walk. Empties
        ``wanted``; returns each invalidation's new keys, in order."""
        follow = self.dependencies
        news: list[list[str]] = []
        for i, names in enumerate(wanted):
            depth, report, frontier, new = depths[i], reports[i], [], []
            for name in names:
                keys = found.get(name)
                if not keys:
                    continue
                level = depth[name[2:]] + 1 if name.startswith(_DEPENDS) else 0
                for key in sorted(keys):
                    if key in depth:
                        continue
                    depth[key] = level
                    new.append(key)
                    dependents[i] += level > 0
                    if follow and level < self.max_depth:
                        frontier.append(key)
                    elif follow:
                        report.truncated = True  # its dependents are not followed
            wanted[i] = []
            if frontier and len(depth) >= self.max_keys:
                report.truncated = True  # the dependents of the frontier are not followed
                frontier = []
            frontiers[i] = frontier
            news.append(new)
        return news

    async def _named(
        self, targets: Targets, report: EmitReport, errors: dict[str, TierError], down: Down
    ) -> dict[str, int]:
        """The keys ``targets`` names itself (its keys, its tags' members, what its
        unregistered patterns' SCAN finds), each at depth 0: where the walk of patterns
        and dependents starts."""
        depth: dict[str, int] = dict.fromkeys(targets.keys, 0)
        if targets.tags:
            for key in await self._tag_members(tuple(sorted(targets.tags)), errors, down):
                depth.setdefault(key, 0)
        for pattern in sorted(targets.scans):
            for key in await self._scan(pattern, report, errors, down):
                depth.setdefault(key, 0)
        return depth

    def _finish(
        self,
        batch: Sequence[Targets],
        reports: list[EmitReport],
        keys: Sequence[Iterable[str]],
        refreshed: Sequence[Iterable[str]],
        dependents: Sequence[int],
        errors: dict[str, TierError],
    ) -> None:
        """Complete the report of each invalidation of ``batch`` (the ``keys`` it
        invalidated, those ``refreshed`` in place, the ``errors``: each report gets its
        own copy when there are several) and count them, with what each walk found (its
        ``dependents``, whether a bound cut it short), in one update of the stats."""
        counts: Counter[str] = Counter()
        by: dict[str, Counter[str]] = {}
        tiers: dict[str, Counter[str]] = {}
        alone = len(reports) == 1
        for targets, report, named, hot, n in zip(
            batch, reports, keys, refreshed, dependents, strict=True
        ):
            report.keys = frozenset(named)
            report.refreshed = frozenset(hot)
            report.errors = errors if alone else dict(errors)
            if report.truncated:
                counts["depth_limited"] += 1
            counts["dependents"] += n
            if n:
                by.setdefault("dependencies", Counter())["keys"] += n
            counts["invalidations"] += 1
            counts["keys"] += len(report.keys)
            for who in dict.fromkeys(targets.by):
                by.setdefault(who, Counter())["keys"] += len(report.keys)
            for slot, dropped in report.dropped.items():
                tiers.setdefault(slot, Counter())["dropped"] += dropped
            for slot in errors:
                tiers.setdefault(slot, Counter())["errors"] += 1
        self.stats.merge(counts, by, tiers)

    async def _add(
        self,
        pairs: list[tuple[str, str]],
        ttl: float | None,
        failed: dict[str, TierError],
        down: Down,
    ) -> None:
        self.stats.add("index_writes")
        for index in self.indexes:
            slot = index.slot
            through = through_tier(index)
            if through and slot in down:
                failed[slot] = down[slot]
                continue
            try:
                await async_call_side(index.add, pairs, ttl)
            except TierError as exc:
                note_down(down if through else None, slot, exc)
                failed[slot] = exc
                self.stats.add("index_errors")
                self.manager._report("index_add", slot, exc)

    async def _take(
        self,
        names: list[str],
        errors: dict[str, TierError],
        down: Down,
        *,
        skip: Any = None,
        only: Any = None,
    ) -> dict[str, set[str]]:
        """What every index (but ``skip``; or ``only`` that one) holds under ``names``;
        a failed index goes into ``errors``."""
        out: dict[str, set[str]] = {}
        if not names:
            return out
        for index in self.indexes:
            if index is skip or (only is not None and index is not only):
                continue
            slot = index.slot
            through = through_tier(index)
            if through and slot in down:
                errors.setdefault(slot, down[slot])
                continue
            try:
                found = await async_call_side(index.take, names, self.grace)
            except TierError as exc:
                note_down(down if through else None, slot, exc)
                errors.setdefault(slot, exc)
                self.stats.add("index_errors")
                self.manager._report("index_take", slot, exc)
                continue
            for name, keys in found.items():
                out.setdefault(name, set()).update(keys)
        return out

    async def _tag_members(
        self, tags: tuple[str, ...], errors: dict[str, TierError], down: Down
    ) -> set[str]:
        manager = self.manager
        keys: set[str] = set()
        for index in manager._indexes():
            slot = index.slot
            if through_tier(index) and slot in down:
                errors.setdefault(f"tags:{slot}", down[slot])
                continue
            try:
                keys |= await async_call_side(index.members, tags)
            except TierError as exc:
                note_down(down if through_tier(index) else None, slot, exc)
                errors.setdefault(f"tags:{slot}", exc)
                manager._report("tag_members", slot, exc)
        return keys

    async def _tag_drop(
        self, tags: tuple[str, ...], errors: dict[str, TierError], down: Down
    ) -> None:
        """Forget ``tags`` in every tag index, once their keys are dropped (as
        ``invalidate_tags`` does)."""
        manager = self.manager
        for index in manager._indexes():
            slot = index.slot
            if through_tier(index) and slot in down:
                continue
            try:
                await async_call_side(index.drop, tags)
            except TierError as exc:
                note_down(down if through_tier(index) else None, slot, exc)
                errors.setdefault(f"tags:{slot}", exc)
                manager._report("tag_drop", slot, exc)

    async def _scan(
        self, pattern: str, report: EmitReport, errors: dict[str, TierError], down: Down
    ) -> set[str]:
        """The keys matching an unregistered ``pattern``: a SCAN of each tier below
        (L1's keys for a manager without one), at most ``scan_limit`` keys per tier
        (keys that hold a delete's tombstone are skipped: see :func:`_scan_live`)."""
        manager = self.manager
        found: set[str] = set()
        limit = self.scan_limit
        self.stats.add("scans")
        self.stats.add_by("scan", "events")
        for slot, tier in manager._below:
            if slot in down:
                errors.setdefault(slot, down[slot])
                continue
            n = 0
            try:
                keys, n, cut = await _scan_live(tier, pattern, limit)
                found.update(keys)
                if cut:
                    report.truncated = True
                    self.stats.add("scan_truncated")
            except TierError as exc:
                note_down(down, slot, exc)
                errors.setdefault(slot, exc)
                manager._report("scan", slot, exc)
            report.scanned += n
            self.stats.add("scanned", n)
        local = manager.local
        if not manager._below and local is not None:
            compiled = re.compile(_glob_regex(pattern), re.DOTALL)
            n = 0
            for key in list(local):
                n += 1
                if isinstance(key, str) and compiled.fullmatch(key):
                    found.add(key)
                    if len(found) >= limit:
                        report.truncated = True
                        self.stats.add("scan_truncated")
                        break
            report.scanned += n
            self.stats.add("scanned", n)
        return found

    async def _drop(
        self, keys: list[str], report: EmitReport, errors: dict[str, TierError], down: Down
    ) -> None:
        """Delete ``keys`` from every tier (one call per tier, lowest first) as
        ``manager.delete`` does (tombstones: a load that began before the event cannot
        store its value after it; a failed tier's keys into its repair log), from L1,
        and announce them to the other processes' L1 (the bus)."""
        if not keys:
            return
        manager = self.manager
        dropped = await manager._bury(keys, errors, down, "invalidate", report_down=False)
        report.dropped.update(dropped)
        if manager.local is not None:
            report.dropped["local"] = int(manager.local.delete_many(keys))
        await manager._announce(keys, errors, down)

    async def _drop_groups(
        self,
        groups: list[list[str]],
        reports: list[EmitReport],
        errors: dict[str, TierError],
        down: Down,
        *,
        version: Version | None = None,
        riders: tuple[Any, ...] = (),
    ) -> None:
        """:meth:`_drop` of each group of keys at once: one call per tier, lowest first
        (``manager._bury_groups``: tombstones of ``version`` (default: a new one) as
        ``manager.delete``'s; a pipeline of them for every group where the tier has
        ``tombstone_groups``, with ``riders`` before them), from L1, and one bus message
        for them all (sent in the Redis tier's pipeline when the bus is on that server).
        Each group's counts are added to its report's."""
        union = list(dict.fromkeys(chain.from_iterable(groups)))
        if not union:
            return
        manager = self.manager
        message = self._rider(union, down)
        publish = None if message is None or manager.bus is None else (manager.bus.channel, message)
        dropped, rode = await manager._bury_groups(
            groups,
            union,
            errors,
            down,
            "invalidate",
            report_down=False,
            publish=publish,
            version=version,
            riders=riders,
        )
        for slot, counts in dropped.items():
            for group, report, n in zip(groups, reports, counts, strict=True):
                if group:
                    report.dropped[slot] = report.dropped.get(slot, 0) + n
        local = manager.local
        if local is not None:
            for group, report in zip(groups, reports, strict=True):
                if group:
                    n = int(local.delete_many(group))
                    report.dropped["local"] = report.dropped.get("local", 0) + n
        if not rode:
            await manager._announce(union, errors, down)

    def _rider(self, keys: list[str], down: Down) -> bytes | None:
        """The bus message for ``keys`` when it can be published in the Redis tier's
        pipeline (the bus runs on that server, under the same prefix, and the message is
        small), else ``None`` (announced the usual way)."""
        manager = self.manager
        bus, remote = manager.bus, manager.remote
        if (
            bus is None
            or remote is None
            or not hasattr(remote, "tombstone_groups")
            or getattr(bus.tier, "prefix", None) != getattr(remote, "prefix", None)
            or not manager._bus_on_remote()
            or manager._bus_down(down) is not None
        ):
            return None
        message: bytes = bus.message_keys(keys)
        return message if len(message) <= _RIDE_BYTES else None

    # -- smart refresh --------------------------------------------------------------------

    def _refresh_hot(self, keys: set[str]) -> set[str]:
        """Start the reloads of the hot keys among ``keys`` (bounded); the keys started."""
        smart = self.smart
        assert smart is not None
        started: set[str] = set()
        for key, entry in smart.pick(keys).items():
            with self._mutex:
                if self._closed or self._pending >= smart.max_pending:
                    self.stats.add("refresh_overflow")
                    continue
                self._pending += 1
            epoch = entry.epoch
            if IS_ASYNC:
                if self._gate is None:
                    self._gate = asyncio.Semaphore(smart.workers)
                task = asyncio.get_running_loop().create_task(self._refresh(key, entry, epoch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                with self._mutex:
                    if self._pool is None:
                        self._pool = ThreadPoolExecutor(
                            smart.workers, thread_name_prefix="novacache-refresh"
                        )
                    pool = self._pool
                pool.submit(self._refresh, key, entry, epoch)
            started.add(key)
        if started:
            self.stats.add_by("smart", "keys", len(started))
        return started

    async def _refresh(self, key: str, entry: Tracked, epoch: int) -> None:
        smart = self.smart
        assert smart is not None
        manager = self.manager
        try:
            # What the tiers hold before the reload: the reloaded value replaces exactly
            # that, never a write made meanwhile (docs/consistency.md).
            seen: dict[str, bytes | None] = {}
            down: Down = {}
            gen = manager._generation(key)
            await manager._observe(key, seen, down)
            stamp = hlc.tick(manager.clock())
            if IS_ASYNC:
                assert self._gate is not None
                async with self._gate:
                    started = time.perf_counter()
                    value = await entry.loader()
            else:
                started = time.perf_counter()
                value = entry.loader()
            smart.loaded(key, time.perf_counter() - started)
            if value is None:
                raise ValueError("the loader returned None")
            if not smart.current(key, entry, epoch):
                self.stats.add("refresh_skipped")  # a newer invalidation decides
                return
            refusals: list[str] = []
            report = await manager._write_back(
                key, value, entry.ttl, entry.tags, None, down, seen, stamp, gen, refusals
            )
            if report.failed:
                raise report.failed[next(iter(report.failed))]
            if refusals:
                # The key changed since the reload read it: a newer write (it wins), a
                # delete, or a load that began before the event and stored its older
                # value meanwhile: that one must not stay.
                self.stats.add("refresh_refused")
                if await self._older_than(key, refusals, stamp):
                    await self._drop([key], EmitReport(), {}, {})
                return
            self.stats.add("refreshes")
        except Exception as exc:
            self.stats.add("refresh_errors")
            manager._report("refresh", "loader", exc)
            try:  # the event must not leave the old value in place
                await self._drop([key], EmitReport(), {}, {})
            except Exception as again:
                manager._report("refresh", "loader", again)
        finally:
            with self._mutex:
                self._pending -= 1

    async def _older_than(self, key: str, slots: list[str], stamp: int) -> bool:
        """Whether one of the tiers ``slots`` holds an entry of ``key`` older than a
        reload versioned ``stamp`` (a write that began before the reload did)."""
        manager = self.manager
        tiers = dict(manager._below)
        for slot in slots:
            try:
                frame = await tiers[slot].get(key)
            except TierError as exc:
                manager._report("refresh", slot, exc)
                return True  # not known: dropping costs a miss, keeping may serve it
            env = None if frame is None else manager._open(slot, key, frame)
            if env is not None and env.stamp < stamp:
                return True
        return False

    async def wait_refreshes(self) -> None:
        """Wait until every reload started so far has ended."""
        if IS_ASYNC:
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        else:
            pool = self._pool
            if pool is not None:
                while True:
                    with self._mutex:
                        if not self._pending:
                            break
                    time.sleep(0.001)

    # -- batching and lifetime ------------------------------------------------------------

    def batch(
        self,
        max_size: int = 1000,
        interval: float = 0.05,
        *,
        on_flush: Callable[[EmitReport], None] | None = None,
        keep: int = 16,
    ) -> AsyncBatchInvalidator:
        """A batch invalidator over this engine (see :class:`AsyncBatchInvalidator`);
        :meth:`close` (and so the manager's ``close``) closes it, flushing its queue."""
        made = AsyncBatchInvalidator(self, max_size, interval, on_flush=on_flush, keep=keep)
        with self._mutex:
            self._batches.append(made)
        return made

    async def close(self) -> None:
        """Close the batch invalidators made by :meth:`batch` (flushing their queues),
        wait for the reloads under way, then close the indexes' own connections (the
        manager calls it from its ``close``, before closing its tiers); harmless to
        repeat."""
        with self._mutex:
            batches, self._batches = self._batches, []
        for batch in batches:
            try:
                await batch.close()
            except Exception as exc:  # reported: closing goes on
                self.manager._report("batch", "engine", exc)
        with self._mutex:
            if self._closed:
                return
            self._closed = True
        await self.wait_refreshes()
        if not IS_ASYNC:  # noqa: SIM102 (unasync resolves the outer test only)
            if self._pool is not None:
                self._pool.shutdown(wait=True)
        for index in self.indexes:
            try:
                await async_call_side(index.close)
            except TierError as exc:  # pragma: no cover - closing reports nothing else
                self.manager._report("close", index.slot, exc)

    async def __aenter__(self) -> AsyncInvalidationEngine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


_LIVE_CHUNK = 500  # keys a SCAN fallback checks for tombstones per read
_SCAN_SLACK = 4  # a SCAN that skips tombstones reads at most this many times its limit


async def _scan_live(
    tier: Any, pattern: str, limit: int, keep: Callable[[str], bool] | None = None
) -> tuple[list[str], int, bool]:
    """SCAN ``tier`` for ``pattern``: up to ``limit`` keys that ``keep`` accepts (all
    by default) and that hold a live entry; with how many keys the SCAN returned, and
    whether it was cut short (by ``limit``, or by the bound below).

    A key that holds a delete's tombstone (on a tier that keeps them:
    ``tombstone_many``) is no entry: it is skipped and does not count towards
    ``limit``. Such a tier's SCAN takes at most ``4 * limit`` accepted keys, then tells
    them apart with one ``get_many`` per 500 keys, once its iterator is closed (an
    asyncio Redis tier holds a slot of its connection gate while it scans). The
    iterator is closed however the SCAN ends. Raises ``TierError`` as the tier does."""
    check = getattr(tier, "tombstone_many", None) is not None
    cap = limit * _SCAN_SLACK if check else limit
    candidates: list[str] = []
    scanned = 0
    it = tier.scan(pattern)
    try:
        async for key in it:
            scanned += 1
            if keep is None or keep(key):
                candidates.append(key)
                if len(candidates) >= cap:
                    break
    finally:
        if IS_ASYNC:
            close = getattr(it, "aclose", None)
            if close is not None:
                await close()
        else:
            close = getattr(it, "close", None)
            if close is not None:
                close()
    if not check:
        return candidates, scanned, len(candidates) >= limit
    found: list[str] = []
    for i in range(0, len(candidates), _LIVE_CHUNK):
        if len(found) >= limit:
            break
        chunk = candidates[i : i + _LIVE_CHUNK]
        frames = await tier.get_many(chunk)
        found += [k for k in chunk if (f := frames.get(k)) is not None and not is_tombstone(f)]
    return found[:limit], scanned, len(found) >= limit or len(candidates) >= cap


class AsyncBatchInvalidator:
    """Queues invalidations and runs them as one batch: the keys, patterns, tags and
    dependencies of every queued call in one pass (one index read and one delete per
    tier, one bus message).

    :param engine: the engine that runs the batches.
    :param max_size: queued items (keys, patterns, tags) at most: the call that fills
        the queue flushes it itself before it returns (backpressure: nothing is ever
        dropped, and the queue never grows past ``max_size`` plus one call's items).
    :param interval: seconds a queued item waits at most: one background loop (a task
        of the running loop for the asyncio form, a daemon thread for the synchronous
        one) flushes what waited that long; no thread or task per flush.
    :param on_flush: called with each batch's :class:`EmitReport` (an exception it
        raises is ignored).
    :param keep: how many recent reports :attr:`reports` keeps.

    :meth:`close` flushes what is queued and stops the loop.
    """

    def __init__(
        self,
        engine: AsyncInvalidationEngine,
        max_size: int = 1000,
        interval: float = 0.05,
        *,
        on_flush: Callable[[EmitReport], None] | None = None,
        keep: int = 16,
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ConfigurationError(f"max_size must be an int >= 1, not {max_size!r}")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise ConfigurationError(f"interval must be seconds > 0, not {interval!r}")
        if not 0 < interval < math.inf:
            raise ConfigurationError(f"interval must be seconds > 0, not {interval!r}")
        self.engine = engine
        self.max_size = max_size
        self.interval = float(interval)
        self.on_flush = on_flush
        self.reports: deque[EmitReport] = deque(maxlen=keep)
        self._mutex = AsyncMutex()
        self._queued = Targets()
        self._count = 0
        self._since = 0.0
        self._worker = AsyncWorker(self._loop, "novacache-invalidation-batch")
        self._started = False
        self._closed = False
        # Set while the loop is not flushing: close waits for a flush under way instead
        # of stopping the loop in the middle of it.
        self._idle = AsyncEvent()
        self._idle.set()

    def __len__(self) -> int:
        """How many items are queued."""
        return self._count

    async def add(
        self,
        keys: Iterable[str] = (),
        *,
        patterns: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> None:
        """Queue an invalidation of ``keys``, ``patterns`` and ``tags`` (as
        :meth:`AsyncInvalidationEngine.invalidate`)."""
        await self._queue(self.engine.targets(keys, patterns, tags))

    async def emit(self, event: str, /, **fields: Any) -> None:
        """Queue what ``event`` names (resolved now: a missing field raises here)."""
        await self._queue(self.engine.resolve(event, fields))

    async def _queue(self, targets: Targets) -> None:
        n = len(targets.keys) + len(targets.patterns) + len(targets.tags) + len(targets.scans)
        if not n:
            return
        with self._mutex:
            if self._closed:
                raise ConfigurationError("the batch invalidator is closed")
            if not self._count:
                self._since = time.monotonic()
            self._queued.update(targets)
            self._count += n
            full = self._count >= self.max_size
            start = not self._started
            self._started = True
        if start:
            self._worker.start()
        if full:
            self.engine.stats.add("backpressure")
            await self.flush()

    async def flush(self) -> EmitReport | None:
        """Run what is queued now, as one batch; its report (``None``: nothing queued)."""
        with self._mutex:
            targets, self._queued = self._queued, Targets()
            self._count = 0
        if not targets:
            return None
        engine = self.engine
        try:
            report = await engine.run(targets, None)
        except Exception:
            engine.stats.add("batches")
            engine.stats.add("batch_errors")
            raise
        engine.stats.add("batches")
        if not report.ok:
            engine.stats.add("batch_errors")
        self.reports.append(report)
        if self.on_flush is not None:
            try:
                self.on_flush(report)
            except Exception:
                engine.manager.stats.add("hook_errors")
        return report

    async def _loop(self) -> None:
        worker = self._worker
        while worker.running:
            await worker.pause(self.interval / 2)
            with self._mutex:
                due = (
                    not self._closed
                    and self._count
                    and time.monotonic() - self._since >= self.interval
                )
                if due:
                    self._idle.clear()
            if due:
                try:
                    await self.flush()
                except Exception as exc:  # counted; the loop must go on
                    self.engine.manager._report("batch", "engine", exc)
                finally:
                    self._idle.set()

    async def close(self) -> EmitReport | None:
        """Stop the loop and flush what is queued; harmless to repeat."""
        with self._mutex:
            self._closed = True
            started = self._started
        if started:
            await self._idle.wait()  # a flush of the loop under way ends first
            await self._worker.stop()
        return await self.flush()

    async def __aenter__(self) -> AsyncBatchInvalidator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
