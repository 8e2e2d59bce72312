"""AsyncCacheManager: one API over L1 (LocalCache), L2 (Redis) and L3 (a store).

This is the one hand-written source of both managers: ``CacheManager`` (threads) is
generated from it (``../_sync/manager.py``, by ``scripts/unasync.py``).

Read path: L1, then L2, then L3; a hit below is promoted to the tiers above it that the
router allows, with the remaining lifetime (see :mod:`..envelope`). The frame read below
is written up as it is (no second encode); L1 gets the live object decoded once. L1 is
the synchronous :class:`~novacache.LocalCache` in both managers: its calls never block.

Write path: the value is sealed in an envelope and encoded once, then written to the
tiers the router picks, lowest first (store, remote, local). A tier that fails does not
stop the others; every failure is counted, passed to ``on_error`` and, under the default
``on_write_error="raise"`` policy, raised as :class:`~novacache.errors.PartialWrite` once
every tier was tried.

Reads never raise because a tier below is down or returned garbage: a
:class:`~novacache.errors.TierError` counts as a miss of that tier (``read_errors``), a
frame the codec refuses as a miss too (``corrupt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..._concurrency import IS_ASYNC, async_call_side, async_run_blocking, async_sleep
from ..._local import LocalCache
from ...codec import Codec
from ...coherence import InvalidationBus
from ...consistency import hlc
from ...consistency.hlc import ZERO, Version
from ...consistency.resolve import DELETED, Resolution, Versioned
from ...errors import ConfigurationError, EntryTooLarge, TierError
from ...tiers.base import AsyncTier
from .. import _kit
from .._base import (
    MISS,
    REPAIR_INTERVAL,
    STRIPES,
    Down,
    ErrorHook,
    Freshness,
    Hits,
    ManagerBase,
    Seen,
    WritePolicy,
    as_tier_error,
    check_freshness,
    check_ttl,
    new_report,
    note_down,
    one_ttl,
    through_tier,
    wants_refresh,
)
from ..decorator import KeyFunc, TagsArg, make_decorator
from ..envelope import Envelope, read_tombstone, seal, tombstone
from ..router import LOCAL, REMOTE, Router
from ..stats import WriteReport
from ..tags import check_tags
from .singleflight import AsyncSingleFlight

if TYPE_CHECKING:
    from .consistency import AsyncSession

__all__ = ["AsyncCacheManager"]

T = TypeVar("T")
BUS = "bus"
F = TypeVar("F", bound=Callable[..., Any])
_MISS = MISS
#: A value read from the first tier below goes to L1 (see .._kit.fill_l1; a global, so
#: that ``_read`` calls it with what it holds already: no method, no attribute lookup
#: from C, where an instance's attribute costs more than in the interpreter).
_fill_l1 = _kit.fill_l1


class AsyncCacheManager(ManagerBase[AsyncTier]):
    """Chains an in-process L1, a remote L2 and a persistent L3 behind one cache API.

    :param local: the L1, a :class:`~novacache.LocalCache` holding live objects, or ``None``.
    :param remote: the L2, a tier (typically ``AsyncRedisTier``), or ``None``.
    :param store: the L3, a tier (``AsyncSQLiteTier``, ``AsyncPostgresTier``), or ``None``.
    :param codec: encodes values for L2/L3 (default: ``Codec()``, msgpack + lz4).
    :param router: picks the tiers each write goes to (default: all of them).
    :param ttl: the lifetime, in every tier (L1, Redis, the store), of entries written
        without a ``ttl`` of their own; ``None`` (the default): no expiry, so an entry
        stays in Redis and the store until it is deleted or evicted, and in L1 until
        evicted or past the LocalCache's own ``ttl`` (a bound on how long L1 may keep a
        value, never longer than the write's). ``default_ttl`` is its older name: give
        one (a :class:`~novacache.errors.ConfigurationError` if both differ).
    :param on_write_error: ``"raise"`` (default): a write that failed on some tier raises
        :class:`~novacache.errors.PartialWrite` after writing every tier it could;
        ``"report"``: the same writes, and the failures are returned (``set`` returns a
        :class:`WriteReport`), counted and passed to ``on_error``, never raised.
    :param on_error: called as ``on_error(op, tier_slot, exc)`` for every tier failure,
        reads included (an exception it raises is ignored).
    :param clock: wall-clock time for the envelopes' deadlines (``time.time``).
    :param bus: an :class:`~novacache.coherence.InvalidationBus` over a *synchronous*
        ``RedisTier``: every write, delete, tag invalidation and clear is announced to the
        other processes, which drop the keys from their L1 (a failed announcement is
        reported as the tier slot ``"bus"``); see :mod:`novacache.coherence`. (The
        asyncio manager publishes from a worker thread.)
    :param resolve: which copy wins when two tiers hold different versions of a key:
        ``"highest_version"`` (default), ``"last_writer_wins"``, or a callable ``(a, b)
        -> a or b`` of two :class:`~novacache.consistency.Versioned`; see
        :mod:`novacache.consistency.resolve` and ``docs/consistency.md``.
    :param tombstone_ttl: seconds a delete's tombstone stays in L2 and L3 (default 60):
        a load that began before the delete and ends within it cannot store its value.
    :param consistency: the consistency model of keys by prefix, e.g.
        ``{"acct:": "strong", "user:": "session", "feed:": "monotonic"}`` (other keys:
        ``"eventual"``, today's behaviour); see docs/consistency.md and :meth:`session`.
    :param repair_probe: seconds between the pings with which the background repairer
        checks that a tier that failed answers again, when no call of this process went
        through it since (default 1.0); ``None``: no ping, repair after such a call (or,
        for Redis, once the bus is healthy). See ``docs/consistency.md``.
    :param session_key: bytes that sign session tokens (the same in every process that
        resumes them); without it tokens are validated but not signed.

    Any tier may be absent. The manager owns ``remote`` and ``store``: :meth:`close`
    closes them. The synchronous manager is safe to share between threads; the asyncio
    manager serves the tasks of one event loop. A tier of the other kind (an asyncio tier
    given to the synchronous manager, or the reverse) is refused with a
    :class:`~novacache.errors.ConfigurationError`.
    """

    if IS_ASYNC:
        _async_tiers = True

    def __init__(
        self,
        local: LocalCache | None = None,
        remote: AsyncTier | None = None,
        store: AsyncTier | None = None,
        codec: Codec | None = None,
        router: Router | None = None,
        *,
        ttl: float | None = None,
        default_ttl: float | None = None,
        on_write_error: WritePolicy = "raise",
        on_error: ErrorHook | None = None,
        clock: Callable[[], float] = time.time,
        bus: InvalidationBus | None = None,
        resolve: Resolution = "highest_version",
        tombstone_ttl: float = 60.0,
        consistency: Mapping[str, str] | None = None,
        repair_probe: float | None = 1.0,
        session_key: bytes | None = None,
    ) -> None:
        super().__init__(
            local, remote, store, codec, router, one_ttl(ttl, default_ttl), on_write_error,
            on_error, clock, resolve, tombstone_ttl, consistency, repair_probe,
        )  # fmt: skip
        self._flights = AsyncSingleFlight()
        if local is None:
            # Note that without an L1 there is nothing to try first: skip a KeyError.
            self.get = self._get_below  # type: ignore[method-assign]
        if bus is not None:
            if local is None:
                raise ConfigurationError("an invalidation bus keeps an L1 coherent: give local=")
            self.bus = bus
            bus.attach(local)
        if consistency:
            self._use_models(consistency, session_key)

    def _use_models(self, spec: Mapping[str, str], session_key: bytes | None) -> None:
        """Point the reads and writes of single keys (``get``, ``set``, ``delete``, their
        ``_many`` forms and ``get_or_load``) at the consistency models of ``spec``
        (:mod:`novacache.consistency`). Without ``consistency=`` this never runs: the
        methods stay the plain ones and cost what they cost."""
        from ...consistency.spec import EVENTUAL, Models
        from .consistency import AsyncConsistency

        models = Models(spec)
        if models.uses <= {EVENTUAL}:
            return
        engine = self.consistency = AsyncConsistency(self, models, session_key)
        self.get = engine.get  # type: ignore[method-assign]
        self.set = engine.set  # type: ignore[method-assign]
        self.delete = engine.delete  # type: ignore[method-assign]
        self.get_many = engine.get_many  # type: ignore[method-assign]
        self.set_many = engine.set_many  # type: ignore[method-assign]
        self.get_or_load = engine.get_or_load  # type: ignore[method-assign]

    def session(self, token: str | None = None) -> AsyncSession:
        """A session over the ``session`` (and ``monotonic``) keys: read-your-writes and
        monotonic reads (``with manager.session() as s: s.set(...)``, ``async with``
        and ``await`` in the asyncio manager);
        ``token``: resume the session of ``s.token``, made in any process. See
        docs/consistency.md. A :class:`~novacache.errors.ConfigurationError` without a
        ``consistency=`` that names a model other than eventual."""
        if self.consistency is None:
            raise ConfigurationError("sessions need consistency={prefix: 'session', ...}")
        return self.consistency.session(token)  # type: ignore[no-any-return]

    @classmethod
    async def embedded(
        cls,
        path: str | os.PathLike[str],
        *,
        maxsize: int | None = 10_000,
        maxbytes: int | None = None,
        store_maxbytes: int | None = None,
        rebuild: bool = False,
        store_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncCacheManager:
        """The embedded default, with no server: an L1 of ``maxsize`` entries (``maxbytes``)
        over an SQLite store in the file ``path`` (created if missing; the asyncio form
        opens it off the event loop) of at most ``store_maxbytes`` frame bytes.

        ``rebuild=True``: a file that is damaged or not a store is moved aside (renamed
        ``<path>.corrupt-<time>``) and an empty store created, instead of
        :class:`~novacache.errors.StoreCorrupted` on every start. ``store_options`` are
        more keyword arguments of :class:`~novacache.tiers.SQLiteTier` (``verify``,
        ``timeout``, ``pragmas``, ...); ``options`` go to the manager.
        """
        from ...tiers.sqlite import AsyncSQLiteTier

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = await AsyncSQLiteTier.open(
            path, maxbytes=store_maxbytes, rebuild=rebuild, **(store_options or {})
        )
        try:
            return cls(local=LocalCache(maxsize, maxbytes=maxbytes), store=store, **options)
        except BaseException:
            await store.close()
            raise

    # -- reading ----------------------------------------------------------------------

    if IS_ASYNC:

        async def get(self, key: str, default: Any = None) -> Any:
            """The value cached under ``key``, or ``default``.

            Never raises because a tier below is unreachable or holds a corrupt frame:
            those read as misses of that tier (counted in :attr:`stats`).
            """
            raise NotImplementedError  # the body is .._kit.aget (below)

        if not TYPE_CHECKING:
            # The body is .._kit.aget: the L1 first, else _get_below; compiled where built,
            # where an L1 hit is awaited as a Ready (no coroutine made and run).
            get = _kit.documented(_kit.aget, get)

    else:
        # The synchronous method is compiled (the same body: .._kit.get), so an L1 hit
        # pays no Python frame.
        get = _kit.get

    async def _get_below(self, key: str, default: Any = None) -> Any:
        env = await self._read(key, {})
        return default if env is None else env.value

    if not IS_ASYNC:  # noqa: SIM102 (unasync keeps the body of an `if not IS_ASYNC`)
        if _kit.COMPILED and not TYPE_CHECKING:
            # The synchronous read below L1 compiled (.._kit.read, .._kit.get_below): the
            # same steps as the Python below, without its frames; the Python is the twin.
            _get_below = _kit.get_below

    async def _read(self, key: str, down: Down, seen: Seen | None = None) -> Envelope | None:
        """The entry of ``key`` from the first tier below L1 that holds it (promoted to
        the tiers above), or ``None``. Tiers in ``down`` (unreachable earlier in this
        call) are skipped; a tier found unreachable now is added to it. What each tier
        asked held is put in ``seen`` (see ``Seen``); a hit below a tier that holds a
        newer delete's tombstone is a miss."""
        below = self._below
        bus = self.bus
        h = hash(key) & (STRIPES - 1)
        gen = self._wseq[h] + (bus.stripes[h] + bus.epoch if bus is not None else 0)
        count = self._count
        for i, (slot, tier) in enumerate(below):
            if slot in down:
                continue
            try:
                frame = await tier.get(key)
            except (TierError, EntryTooLarge) as exc:
                self._read_failed("get", slot, exc, down)
                continue
            if frame is None:
                count(self._misses[slot])
                if seen is None:
                    seen = {}
                seen[slot] = None
                continue
            env = self._open(slot, key, frame)
            if env is None:
                if seen is None:
                    seen = {}
                seen[slot] = frame
                continue
            count(self._hits[slot])
            if seen is not None:
                seen[slot] = frame
            if i:
                return await self._promote(key, frame, env, below[:i], gen, down, seen)
            local = self.local
            if local is not None:
                _fill_l1(self, local, bus, self._fill, key, frame, env, gen)
            return env
        return None

    if not IS_ASYNC:  # noqa: SIM102 (unasync keeps the body of an `if not IS_ASYNC`)
        if _kit.COMPILED and not TYPE_CHECKING:
            _read = _kit.read  # the method above, compiled (see _get_below)

    async def _promote(
        self,
        key: str,
        frame: bytes,
        env: Envelope,
        above: tuple[tuple[str, AsyncTier], ...],
        gen: int,
        down: Down,
        seen: Seen | None,
    ) -> Envelope | None:
        """Write an entry read below to the tiers above it, each only over what the read
        saw there (a newer write or a delete that landed since wins); ``None`` (a miss)
        when a tier above holds a newer delete's tombstone."""
        if self._newer_delete(env, seen):
            return None
        slots = self.router.tiers(key, len(frame))
        stored = True
        for slot, tier in above:
            if slot in slots and slot not in down and seen and slot in seen:
                try:
                    if not await self._store_if(slot, tier, key, frame, env.remaining, seen):
                        stored = False
                except (TierError, ValueError) as exc:
                    note_down(down, slot, exc)
                    self.stats.count(slot, "promote_errors")
                    self._report("promote", slot, exc)
        if LOCAL in slots and self.local is not None:
            if stored:
                self._to_l1(key, env.value, self._l1_ttl(env), gen)
            else:
                self.local.pop(key, None)
        return env

    async def _store_if(
        self, slot: str, tier: AsyncTier, key: str, frame: bytes, ttl: float | None, seen: Seen
    ) -> bool:
        """Store ``frame`` on ``tier`` only over what ``seen`` says it held (a tier
        without ``set_if``, e.g. a user's own: unconditionally); whether it was stored."""
        set_if = getattr(tier, "set_if", None)
        if set_if is None:
            await tier.set(key, frame, ttl)
            return True
        if await set_if(key, frame, ttl, expect=seen[slot]):
            return True
        self.stats.count(slot, "writebacks_refused")
        return False

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """``{key: value}`` for the keys cached (absent keys are left out).

        One call per tier: L1 first, then one ``get_many`` on L2 for what L1 lacked, then
        one on L3 for what is still missing. Never raises for a tier failure.
        """
        wanted = list(dict.fromkeys(keys))
        gens = {key: self._generation(key) for key in wanted} if self.local is not None else {}
        found: dict[str, Any] = self.local.get_many(wanted) if self.local is not None else {}
        missing = [k for k in wanted if k not in found]
        above: list[tuple[str, AsyncTier]] = []
        down: Down = {}
        seen: dict[str, Seen] = {}  # what each tier asked held, by key (see _read)
        for slot, tier in self._below:
            if not missing:
                break
            try:
                frames = await tier.get_many(missing)
            except (TierError, EntryTooLarge) as exc:
                self._read_failed("get_many", slot, exc, down)
                continue
            hits: dict[str, tuple[bytes, Envelope]] = {}
            deleted: set[str] = set()
            for key in missing:
                frame = frames.get(key)
                env = None if frame is None else self._open(slot, key, frame)
                if env is None:
                    seen.setdefault(key, {})[slot] = frame
                elif self._newer_delete(env, seen.get(key)):
                    deleted.add(key)  # a tier above holds a newer delete: a miss
                else:
                    hits[key] = (frame, env)  # type: ignore[assignment]
            self.stats.count(slot, "hits", len(hits))
            self.stats.count(slot, "misses", len(missing) - len(hits))
            if hits:
                live = tuple(t for t in above if t[0] not in down)
                await self._promote_many(hits, live, gens, seen)
                for key, (_, env) in hits.items():
                    found[key] = env.value
            if hits or deleted:
                missing = [k for k in missing if k not in hits and k not in deleted]
            above.append((slot, tier))
        return {k: found[k] for k in wanted if k in found}

    async def _promote_many(
        self,
        hits: Hits,
        above: tuple[tuple[str, AsyncTier], ...],
        gens: dict[str, int],
        seen: dict[str, Seen],
    ) -> None:
        """Write hits from below to the tiers above, each key only over what the read
        saw there: one ``set_if_many`` per tier (Redis: one pipeline of the script; the
        store: one transaction), or one ``set_if`` per key on a tier without it; to a
        tier without ``set_if``: one ``set_many`` for the entries without expiry and one
        for the others, with the longest remaining life among them (the envelope's
        deadline still ends each entry on time)."""
        refused: set[str] = set()
        route = self.router.tiers
        for slot, tier in above:
            if getattr(tier, "set_if", None) is None:
                for batch, ttl in self._promotion_batches(slot, hits):
                    try:
                        await tier.set_many(batch, ttl)
                    except (TierError, ValueError) as exc:
                        self.stats.count(slot, "promote_errors")
                        self._report("promote", slot, exc)
                continue
            wanted = {
                key: (frame, env.remaining, seen[key][slot])
                for key, (frame, env) in hits.items()
                if slot in route(key, len(frame)) and slot in seen.get(key, {})
            }
            if not wanted:
                continue
            many = getattr(tier, "set_if_many", None)
            try:
                if many is not None:
                    lost = wanted.keys() - await many(wanted)
                    if lost:
                        self.stats.count(slot, "writebacks_refused", len(lost))
                        refused |= lost
                    continue
                for key, (frame, ttl, _) in wanted.items():
                    if not await self._store_if(slot, tier, key, frame, ttl, seen[key]):
                        refused.add(key)
            except (TierError, ValueError) as exc:
                self.stats.count(slot, "promote_errors")
                self._report("promote", slot, exc)
                # the tier failed (not reported once per key): no key promoted after the
                # failure is known to be there; L1 keeps them as before
        if self.local is not None:
            for key, (frame, env) in hits.items():
                if key in refused:
                    self.local.pop(key, None)
                elif LOCAL in route(key, len(frame)):
                    self._to_l1(key, env.value, self._l1_ttl(env), gens.get(key))

    # -- writing ----------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> WriteReport:
        """Cache ``value`` under ``key`` for ``ttl`` seconds (``None``: the default TTL;
        ``math.inf``: no expiry) in every tier the router picks for it.

        The value is encoded once (a :class:`~novacache.errors.CodecError` is raised
        before anything is written). Tiers are written lowest first; a tier the router
        does not pick loses any older value of the key (L1 always; L2/L3 when the router
        has size rules, since the key may have been routed there before). Returns what
        was written; under the ``"raise"`` policy a failure raises
        :class:`~novacache.errors.PartialWrite` instead.
        """
        return await self._set(key, value, ttl, tags, None)

    async def _set(
        self,
        key: str,
        value: Any,
        ttl: float | None,
        tags: Iterable[str],
        policy: WritePolicy | None,
        fresh: Freshness = None,
        down: Down | None = None,
        stamp: int | None = None,
    ) -> WriteReport:
        # The common write (no tags, no freshness deadline, no bus) makes as few
        # Python-level calls as it can: each costs about what the encoding does.
        # ``stamp``: the version's stamp to seal (the consistency models tick it, to
        # know the version written); ``None``: a new one (hlc.tick).
        if ttl is None and self._on_write is not None:
            ttl = self._on_write.ttl_for(key)  # the TTL rules (novacache.invalidation)
        ttl = self.default_ttl if ttl is None else check_ttl(ttl)
        if tags or type(tags) is not tuple:
            tags = check_tags(tags)
        slots, frame = self._encode_and_route(key, value, ttl, self.clock(), fresh, stamp)
        if self._recent is not None:
            self._recent.append(key)
        if fresh is None:
            tier_ttl, l1_ttl = ttl, (math.inf if ttl is None else ttl)
        else:
            tier_ttl, l1_ttl = self._write_ttls(ttl, fresh)
        down = {} if down is None else down
        written: list[str] = []
        failed: dict[str, TierError] = {}
        if tags:
            await self._index(tags, [key], tier_ttl, failed, down)
        if self._on_write is not None:  # patterns indexed at write time (invalidation)
            await self._on_write.index([key], tier_ttl, failed, down)
        for slot, tier in reversed(self._below):
            if slot in down:
                if slot in slots or self.router.sizes_matter:
                    failed[slot] = down[slot]  # unreachable earlier in this call
                    self._report("set", slot, down[slot])
                continue
            try:
                if slot in slots:
                    assert frame is not None
                    await tier.set(key, frame, tier_ttl)
                    written.append(slot)
                elif self.router.sizes_matter:
                    await tier.delete(key)
            except TierError as exc:
                note_down(down, slot, exc)
                failed[slot] = exc
                self._report("set", slot, exc)
            except EntryTooLarge as exc:  # larger than the tier takes (budget, size limit)
                failed[slot] = as_tier_error(slot, exc)
                self._report("set", slot, exc)
                with contextlib.suppress(TierError, EntryTooLarge):  # reported above
                    await tier.delete(key)  # drop the old value
        self._wseq[hash(key) & (STRIPES - 1)] += 1
        if failed:
            self._log_failed_slots(failed, [key])
        if self.local is not None:
            if LOCAL in slots:
                if self._to_l1(key, value, l1_ttl):
                    written.append(LOCAL)
                elif not written and l1_ttl > 0 and self.bus is None:
                    failed[LOCAL] = TierError("L1 refused the entry (larger than its maxbytes)")
            else:
                self.local.pop(key, None)
        if self.bus is not None:
            await self._announce([key], failed, down)
        report = new_report(WriteReport, (tuple(written), failed))
        return self._finish("set", report, policy) if failed else report

    async def _write_back(
        self,
        key: str,
        value: Any,
        ttl: float | None,
        tags: Iterable[str],
        fresh: Freshness,
        down: Down,
        seen: Seen,
        stamp: int,
        gen: int,
        refusals: list[str] | None = None,
    ) -> WriteReport:
        """Store a loaded value (version ``stamp``) in each tier only over what the read
        before the load saw there (``seen``; a tier it did not ask is read first), so a
        write or a delete made meanwhile wins; into L1 only when every tier took it and
        nothing was written or invalidated in this process since the read (``gen``).
        Failures are reported, never raised (``get_or_load`` returns its value); the
        tiers that refused the write go into ``refusals`` when given."""
        if ttl is None and self._on_write is not None:
            ttl = self._on_write.ttl_for(key)
        ttl = self.default_ttl if ttl is None else check_ttl(ttl)
        tags = check_tags(tags)
        tier_ttl, l1_ttl = self._write_ttls(ttl, fresh)
        if fresh is None:
            sealed = seal(value, ttl, self.clock(), stamp=stamp)
        else:
            stale, delta, beta = fresh
            sealed = seal(value, ttl, self.clock(), stale=stale, delta=delta, beta=beta,
                          stamp=stamp)  # fmt: skip
        frame = self.codec.encode(key, sealed) if self._below else None
        slots = self.router.tiers(key, None if frame is None else len(frame))
        written: list[str] = []
        failed: dict[str, TierError] = {}
        refused = False
        if tags:
            await self._index(tags, [key], tier_ttl, failed, down)
        if self._on_write is not None:
            await self._on_write.index([key], tier_ttl, failed, down)
        for slot, tier in reversed(self._below):
            if slot not in slots:
                continue
            if slot in down:
                failed[slot] = down[slot]  # unreachable earlier in this call
                self._report("set", slot, down[slot])
                continue
            assert frame is not None
            try:
                if slot not in seen:
                    seen[slot] = await tier.get(key)
                if await self._store_if(slot, tier, key, frame, tier_ttl, seen):
                    written.append(slot)
                else:
                    refused = True
                    if refusals is not None:
                        refusals.append(slot)
            except TierError as exc:
                note_down(down, slot, exc)
                failed[slot] = exc
                self._report("set", slot, exc)
            except EntryTooLarge as exc:
                failed[slot] = as_tier_error(slot, exc)
                self._report("set", slot, exc)
        if failed:
            self._log_failed_slots(failed, [key])  # its older copy there goes on recovery
        if self.local is not None:
            if LOCAL in slots and not refused:
                if self._to_l1(key, value, l1_ttl, gen):
                    written.append(LOCAL)
            else:
                self.local.pop(key, None)
        if self.bus is not None and written:
            await self._announce([key], failed, down)
        report = new_report(WriteReport, (tuple(written), failed))
        return self._finish("set", report, "report") if failed else report

    async def _observe(self, key: str, seen: Seen, down: Down) -> None:
        """Note what each tier below holds for ``key`` now (before a refresh loads it),
        for a later ``_write_back`` over exactly that."""
        for slot, tier in self._below:
            if slot in down:
                continue
            try:
                seen[slot] = await tier.get(key)
            except (TierError, EntryTooLarge) as exc:
                note_down(down, slot, exc)

    def _log_failed_slots(self, failed: Mapping[str, TierError], keys: list[str]) -> None:
        for slot in failed:
            if slot in self._c.logs:
                self._log_failed(slot, keys)

    async def set_many(
        self, items: Mapping[str, Any], ttl: float | None = None, tags: Iterable[str] = ()
    ) -> WriteReport:
        """Cache every ``key: value`` of ``items`` with one TTL: every value is encoded
        first (nothing is written if one cannot be), then one ``set_many`` per tier."""
        if ttl is None and self._on_write is not None and self._on_write.ttl_rules:
            report: WriteReport = await self._on_write.set_many(items, tags)  # by TTL rule
            return report
        ttl = self._ttl(ttl)
        tags = check_tags(tags)
        now = self.clock()
        routed = {key: self._encode_and_route(key, value, ttl, now) for key, value in items.items()}
        written: list[str] = []
        failed: dict[str, TierError] = {}
        down: Down = {}
        if tags and routed:
            await self._index(tags, list(routed), ttl, failed, down)
        if self._on_write is not None and routed:  # (invalidation)
            await self._on_write.index(list(routed), ttl, failed, down)
        for slot, tier in reversed(self._below):
            batch = {k: f for k, (slots, f) in routed.items() if slot in slots and f is not None}
            elsewhere = [k for k, (slots, _) in routed.items() if slot not in slots]
            if slot in down:
                if batch or (elsewhere and self.router.sizes_matter):
                    failed[slot] = down[slot]  # unreachable earlier in this call
                    self._report("set_many", slot, down[slot])
                continue
            try:
                if batch:
                    await tier.set_many(batch, ttl)
                    written.append(slot)
                if elsewhere and self.router.sizes_matter:
                    await tier.delete_many(elsewhere)
            except TierError as exc:
                note_down(down, slot, exc)
                failed[slot] = exc
                self._report("set_many", slot, exc)
            except EntryTooLarge as exc:  # nothing of the batch was stored there
                failed[slot] = as_tier_error(slot, exc)
                self._report("set_many", slot, exc)
                with contextlib.suppress(TierError, EntryTooLarge):  # reported above
                    await tier.delete_many(list(batch))  # drop the old values
        self._wrote(routed)
        if self._recent is not None:
            self._recent.extend(routed)
        if failed:
            self._log_failed_slots(failed, list(routed))
        if self.local is not None:
            l1_ttl = ttl if ttl is not None else math.inf
            for key, (slots, _) in routed.items():
                if LOCAL in slots:
                    self._to_l1(key, items[key], l1_ttl)
                else:
                    self.local.pop(key, None)
            if any(LOCAL in slots for slots, _ in routed.values()):
                written.append(LOCAL)
        await self._announce(list(routed), failed, down)
        return self._finish("set_many", WriteReport(tuple(written), failed))

    async def delete(self, key: str) -> bool:
        """Remove ``key`` from every tier (lowest first); whether some tier held it.

        A tier that fails is reported as for writes (``PartialWrite`` under "raise")."""
        return await self.delete_many([key]) > 0

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys from every tier, one call per tier; how many keys were found
        (as counted by the tier that held the most of them)."""
        found, report = await self._delete_many(list(dict.fromkeys(keys)))
        self._finish("delete", report)
        return found

    async def _delete_many(
        self, wanted: list[str], down: Down | None = None, version: Version | None = None
    ) -> tuple[int, WriteReport]:
        """Delete ``wanted`` everywhere, leaving tombstones of ``version`` (default: a new
        one) in the tiers that keep them; how many were found and what was written."""
        failed: dict[str, TierError] = {}
        down = {} if down is None else down
        if not wanted:
            return 0, WriteReport((), failed)
        dropped = await self._bury(wanted, failed, down, "delete", version=version)
        found = max(dropped.values(), default=0)
        written = list(dropped)
        if self.local is not None:
            found = max(found, self.local.delete_many(wanted))
            written.append(LOCAL)
        await self._announce(wanted, failed, down)
        return found, WriteReport(tuple(written), failed)

    async def _bury(
        self,
        wanted: list[str],
        failed: dict[str, TierError],
        down: Down,
        op: str,
        *,
        report_down: bool = True,
        version: Version | None = None,
    ) -> dict[str, int]:
        """Delete ``wanted`` (distinct keys) from every tier below L1, lowest first, one call
        per tier; how many live entries each tier that answered held, by slot.

        What every delete does, the manager's and its invalidation engine's: a
        tombstone, not a removal, where the tier keeps them (``tombstone_many``: a load
        or a promotion that read a key before this delete can then not store it again);
        the writes counted for the L1 fill gate and for a Redis restarted from its AOF;
        a tier that failed goes into ``failed`` (reported as ``op``) and its keys into
        its repair log. A tier already in ``down`` is not tried (reported again only
        with ``report_down``). The tombstones are of ``version`` (default: a new one)."""
        counts, _ = await self._bury_groups(
            [wanted], wanted, failed, down, op, report_down, version=version
        )
        return {slot: n[0] for slot, n in counts.items()} if counts else {}

    async def _bury_groups(
        self,
        groups: list[list[str]],
        union: list[str],
        failed: dict[str, TierError],
        down: Down,
        op: str,
        report_down: bool = True,
        publish: tuple[str, bytes] | None = None,
        version: Version | None = None,
        riders: tuple[Any, ...] = (),
    ) -> tuple[dict[str, list[int]], bool]:
        """:meth:`_bury` of several groups of keys at once (``union``: their distinct
        keys), one call per tier (``tombstone_groups`` where the tier has it, else
        ``tombstone_many`` per group, else ``delete_many`` per group); how many live
        entries of each group each tier that answered held (a key in two groups is
        counted in the first), by slot. The fill gate, the recent writes and the repair
        logs take ``union``.

        ``publish`` (``(channel, message)``, a bus message) goes in the call of the
        Redis tier (``remote``: its ``tombstone_groups``), which must have it; whether
        it did (published or failed there: counted on the bus, a failure reported as the
        bus's) is the second value: else the caller announces the keys itself. The
        tombstones are of ``version`` (default: a new one).

        ``riders`` (commands of the invalidation engine: its index read) go in that same
        call of the Redis tier, before the tombstones; the tier must take them (not a
        Cluster). They get no answer when the tier was not called (down earlier in this
        call) or failed: that failure is in ``failed``."""
        below = self._below
        if not below:
            mark = b""  # no tier keeps a tombstone: no version to make
        else:
            if version is None:
                version = Version(hlc.tick(self.clock()), hlc.writer())
            mark = tombstone(version)
        ttl = self.tombstone_ttl
        single = len(groups) == 1
        dropped: dict[str, list[int]] = {}
        lost: dict[str, TierError] = {}
        rode = False
        for slot, tier in reversed(below):
            if slot in down:
                lost[slot] = down[slot]  # unreachable earlier in this call
                if report_down:
                    self._report(op, slot, down[slot])
                continue
            ride = publish if tier is self.remote else None
            extra = riders if tier is self.remote else ()
            bury = getattr(tier, "tombstone_many", None)
            grouped = (
                None
                if single and ride is None and not extra
                else getattr(tier, "tombstone_groups", None)
            )
            try:
                if ride is not None or extra:
                    rode = ride is not None
                    assert grouped is not None  # the caller's promise
                    if extra:
                        counts = await grouped(groups, mark, ttl, publish=ride, riders=extra)
                    else:
                        counts = await grouped(groups, mark, ttl, publish=ride)
                elif single:
                    n = await (tier.delete_many(union) if bury is None else bury(union, mark, ttl))
                    counts = [n]
                elif grouped is not None:
                    counts = await grouped(groups, mark, ttl)
                else:
                    # one call per group: a key an earlier group named is gone (or a
                    # tombstone) by the time a later group names it: counted in the first
                    counts = [
                        0
                        if not group
                        else await tier.delete_many(group)
                        if bury is None
                        else await bury(group, mark, ttl)
                        for group in groups
                    ]
                dropped[slot] = [int(n) for n in counts]
            except (TierError, EntryTooLarge) as exc:
                note_down(down, slot, exc)
                lost[slot] = as_tier_error(slot, exc)
                self._report(op, slot, exc)
                if ride is not None:
                    failed[BUS] = lost[slot]
                    self._report("publish", BUS, exc)
                    if self.bus is not None:
                        self.bus.count_publish(False)
                continue
            if ride is not None and self.bus is not None:
                self.bus.count_publish(True)
        self._wrote(union)
        if self._recent is not None:
            self._recent.extend(union)
        if lost:
            failed.update(lost)
            self._log_failed_slots(lost, union)
        return dropped, rode

    async def _announce(self, keys: list[str], failed: dict[str, TierError], down: Down) -> None:
        """Tell the other processes' L1 to drop ``keys`` (one bus message; the asyncio
        manager publishes it from a worker thread: the bus runs on a synchronous tier)."""
        bus = self.bus
        if bus is None or not keys:
            return
        error = self._bus_down(down)
        if error is not None:
            failed[BUS] = error
            self._report("publish", BUS, error)
            return
        try:
            await async_run_blocking(bus.publish_keys, keys)
        except TierError as exc:
            failed[BUS] = exc
            self._report("publish", BUS, exc)

    # -- versions and repairs -----------------------------------------------------------

    async def get_versioned(self, key: str) -> Versioned | None:
        """The value of ``key`` with its version (a
        :class:`~novacache.consistency.Versioned`), or ``None`` when no tier holds it.

        Reads every tier below L1 (an L1 copy has no version: it is not used; without
        tiers below, L1's value comes with version ``(0, 0)``). When the tiers disagree,
        the ``resolve=`` rule picks the winner and the losers are repaired (counted as
        ``repairs``); a winning delete is ``None``. Never raises for a tier failure."""
        if not self._below:
            value = self._l1.get(key, MISS) if self.local is not None else MISS
            return None if value is MISS else Versioned(value, ZERO, LOCAL)
        copies: list[tuple[str, AsyncTier, bytes | None, Versioned | None]] = []
        down: Down = {}
        for slot, tier in self._below:
            try:
                frame = await tier.get(key)
            except (TierError, EntryTooLarge) as exc:
                self._read_failed("get", slot, exc, down)
                continue
            copy = None
            if frame is not None:
                env = self._open(slot, key, frame)
                if env is not None:
                    copy = Versioned(env.value, env.version, slot, env.remaining)
                else:
                    deleted = read_tombstone(frame)
                    if deleted is not None:
                        copy = Versioned(DELETED, deleted, slot)
            copies.append((slot, tier, frame, copy))
        winner: Versioned | None = None
        for _, _, _, copy in copies:
            if copy is not None:
                winner = copy if winner is None else self._winner(winner, copy)
        if winner is None:
            return None
        best = next(frame for _, _, frame, copy in copies if copy is winner)
        assert best is not None
        for slot, tier, frame, copy in copies:
            if copy is winner or (copy is not None and copy.version == winner.version):
                continue
            try:  # repair the loser: only over what was read there
                if await self._store_if(slot, tier, key, best, self._life(winner), {slot: frame}):
                    self.stats.count(slot, "repairs")
            except (TierError, ValueError) as exc:
                self._report("repair", slot, exc)
        if winner.deleted:
            if self.local is not None:
                self.local.pop(key, None)
            return None
        return winner

    def _life(self, copy: Versioned) -> float | None:
        return self.tombstone_ttl if copy.deleted else copy.remaining

    async def repair(self) -> int:
        """Replay the repair logs now: in each tier that answers, remove the keys whose
        write failed there (and the keys written just before it went unreachable), so it
        cannot serve a value that a later write replaced; tell the other processes' L1
        (the bus). How many keys were repaired. The background repairer calls this every
        ``REPAIR_INTERVAL`` (0.1 s) while a log is not empty; see docs/consistency.md."""
        total = 0
        for slot, tier in self._below:
            if slot not in self._c.outage and not self._c.logs.get(slot, {}):
                continue
            if not self._answers(slot, tier):
                if not self._probe_due(slot):
                    continue
                try:
                    await tier.ping()
                except TierError:
                    continue
            keys = self._take_repairs(slot)
            try:
                if keys is None:
                    await tier.clear()
                elif keys:
                    for i in range(0, len(keys), 500):
                        await tier.delete_many(keys[i : i + 500])
                else:
                    await tier.ping()
            except (TierError, EntryTooLarge):
                continue  # still unreachable: next round
            if keys:
                self.stats.count(slot, "repairs", len(keys))
                total += len(keys)
            # This process's L1 may have taken the replaced values from that tier too
            # (the bus does not deliver our own announcements to us): drop them, and
            # make reads that began before skip their fill.
            self._wrote(keys)
            if self.local is not None:
                if keys is None:
                    self.local.clear()
                elif keys:
                    self.local.delete_many(keys)
            if self.bus is not None and keys:
                try:
                    await async_run_blocking(self.bus.publish_keys, keys)
                except TierError as exc:
                    self._report("publish", BUS, exc)  # the bus flushes L1 when back
            elif self.bus is not None and keys is None:
                with contextlib.suppress(TierError):
                    await async_run_blocking(self.bus.publish_clear)
            self._repaired(slot, keys)
        return total

    async def _repair_loop(self) -> None:
        """The background repairer: replay the logs every REPAIR_INTERVAL while any
        holds a key or a tier is in an outage; then stop (started again on need)."""
        try:
            while not self._closed:
                await async_sleep(REPAIR_INTERVAL)
                if self._closed:
                    return
                try:
                    await self.repair()
                except Exception as exc:  # never let the repairer die silently
                    self._report("repair", "manager", exc)
                with self._c.lock:
                    if not self._pending_repairs() and not self._c.outage:
                        self._c.repairer = None
                        return
        finally:
            with self._c.lock:
                if self._c.repairer is not None and self._closed:
                    self._c.repairer = None

    def _start_repairer(self) -> None:
        with self._c.lock:
            if self._c.repairer is not None or self._closed:
                return
            if IS_ASYNC:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    return  # no loop (a failure noted outside one): repair() by hand
                self._c.repairer = loop.create_task(self._repair_loop())
            else:
                self._c.repairer = threading.Thread(
                    target=self._repair_loop, name="novacache-repair", daemon=True
                )
                self._c.repairer.start()

    # -- tags -------------------------------------------------------------------------

    async def _index(
        self,
        tags: tuple[str, ...],
        keys: list[str],
        ttl: float | None,
        failed: dict[str, TierError],
        down: Down,
    ) -> None:
        """Record the keys under the tags in every tag index, before the values are
        written (a crash in between leaves an index entry without a value: harmless)."""
        for index in self._indexes():
            if through_tier(index) and index.slot in down:
                failed[index.slot] = down[index.slot]
                continue
            try:
                await async_call_side(index.add, tags, keys, ttl)
            except TierError as exc:
                note_down(down if through_tier(index) else None, index.slot, exc)
                failed[index.slot] = exc
                self._report("tag_add", index.slot, exc)

    async def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Remove every key set with one of ``tags`` from every tier; how many were found.

        The keys come from the tag indexes (Redis sets, the SQLite or PostgreSQL tag
        table: no KEYS, no SCAN). An index or a tier that fails is reported as for
        writes; what could be found is removed anyway. Other processes' L1 keep their
        copies until their L1 TTL ends (without an invalidation bus).

        Note that a write of a tagged key that runs concurrently with the invalidation
        of its tag may survive it, exactly as a concurrent write may survive a delete.
        """
        wanted = check_tags(tags)
        failed: dict[str, TierError] = {}
        keys: set[str] = set()
        if not wanted:
            return 0
        indexes = self._indexes()
        down: Down = {}
        for index in indexes:
            try:
                keys |= await async_call_side(index.members, wanted)
            except TierError as exc:
                note_down(down if through_tier(index) else None, index.slot, exc)
                failed[index.slot] = exc
                self._report("tag_members", index.slot, exc)
        found, report = await self._delete_many(sorted(keys), down)
        failed.update(report.failed)
        for index in indexes:
            if through_tier(index) and index.slot in down:
                failed.setdefault(index.slot, down[index.slot])
                continue
            try:
                await async_call_side(index.drop, wanted)
            except TierError as exc:
                note_down(down if through_tier(index) else None, index.slot, exc)
                failed.setdefault(index.slot, exc)
                self._report("tag_drop", index.slot, exc)
        self._finish("invalidate_tags", WriteReport(report.written, failed))
        return found

    async def clear(self) -> WriteReport:
        """Remove every entry of every tier (each tier's own namespace only)."""
        written: list[str] = []
        failed: dict[str, TierError] = {}
        down: Down = {}
        for slot, tier in reversed(self._below):
            try:
                await tier.clear()
                written.append(slot)
            except TierError as exc:
                note_down(down, slot, exc)
                failed[slot] = exc
                self._report("clear", slot, exc)
        self._wrote(None)
        if self.local is not None:
            self.local.clear()
            written.append(LOCAL)
        for index in self._tag_indexes or ():
            if through_tier(index) and index.slot in down:
                continue
            try:
                await async_call_side(index.clear)
            except TierError as exc:
                failed.setdefault(index.slot, exc)
        if self.bus is not None:
            error = self._bus_down(down)
            try:
                if error is not None:
                    raise error
                await async_run_blocking(self.bus.publish_clear)
            except TierError as exc:
                failed[BUS] = exc
                self._report("publish", BUS, exc)
        return self._finish("clear", WriteReport(tuple(written), failed))

    # -- loading ----------------------------------------------------------------------

    if IS_ASYNC:

        async def get_or_load(
            self,
            key: str,
            loader: Callable[[], Awaitable[T]],
            ttl: float | None = None,
            *,
            tags: Iterable[str] = (),
            negative_ttl: float | None = None,
            stale_ttl: float | None = None,
            beta: float | None = None,
            lease: float | None = None,
        ) -> T:
            """The cached value of ``key``; on a miss, the value of ``loader()`` (awaited in
            the asyncio manager), cached for ``ttl``.

            The loader runs at most once at a time per key in this process (in this event
            loop): concurrent callers wait for its result, or its exception (raised in every
            one of them; an exception is not cached). Tier failures while storing the loaded
            value are counted and reported, never raised: the caller gets its value. A call
            for the same key from inside its own loader raises
            :class:`~novacache.errors.ReentrantLoad`.

            ``tags`` are recorded with the loaded value. A loader that returns ``None``
            ("not found") is not cached, unless ``negative_ttl`` is given: then ``None`` is
            cached for that many seconds (negative caching).

            ``stale_ttl`` (stale-while-revalidate): the value stays stored ``stale_ttl``
            seconds past ``ttl``; a caller that finds it stale refreshes it (running the
            loader) while every other caller gets the stale value at once; never served past
            ``ttl + stale_ttl``. ``beta`` (XFetch, e.g. 1.0): a caller may refresh a fresh
            value early, with a probability that grows as its expiry nears and with how long
            the loader took; larger is earlier. Both need a finite ``ttl``.

            ``lease`` (seconds, opt-in; needs a Redis ``remote``): the loader also runs once
            per key across processes. The caller that takes the Redis lease of ``key``
            (``SET NX PX`` in the tier's lease sub-namespace) loads; the others poll L2 until
            the value appears, the lease is released, or ``lease`` seconds pass, and then
            load themselves. With Redis down, each process loads on its own (degraded, never
            blocked).
            """
            raise NotImplementedError  # the body is .._kit.aget_or_load (below)

        if not TYPE_CHECKING:
            # The body is .._kit.aget_or_load, as for get: the L1 first, and everything a
            # miss needs (the checks of the options, the single-flight and the closure of
            # its leader) in _load, so an L1 hit pays no cell variables and no checks.
            get_or_load = _kit.documented(_kit.aget_or_load, get_or_load)

    else:
        # Compiled (.._kit.get_or_load): an L1 hit pays no Python frame and no
        # keyword-only defaults; a miss goes to _load below.
        get_or_load = _kit.get_or_load

    async def _load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: Iterable[str],
        negative_ttl: float | None,
        stale_ttl: float | None,
        beta: float | None,
        lease: float | None,
    ) -> T:
        """``get_or_load`` below L1: read the tiers, then load once (see there)."""
        # A tier found unreachable is not tried again in this call: one call pays at most
        # one timeout per tier (the read, the read inside the lead, the write).
        if self._on_write is not None:
            self._on_write.accessed(key, loader, ttl, tags)  # smart invalidation
        down: Down = {}
        seen: Seen = {}
        gen = self._generation(key)
        found = await self._read(key, down, seen)
        if found is not None:
            if not wants_refresh(found):
                return found.value  # type: ignore[no-any-return]
            if self._flights.in_flight(key):
                self.stats.add("stale_served")
                return found.value  # type: ignore[no-any-return]  # another caller refreshes
        self._ttl(ttl)
        self._ttl(negative_ttl)
        check_tags(tags)
        stale_ttl, beta, lease = check_freshness(stale_ttl, beta, lease)

        async def lead() -> T:
            nonlocal gen
            if found is None:
                seen.clear()
                gen = self._generation(key)
                again = await self._read(key, down, seen)  # a flight that just ended may have it
                if again is not None and not wants_refresh(again):
                    return again.value  # type: ignore[no-any-return]
            else:
                self.stats.add("refreshes")
            token = None
            if lease is not None:
                waited, token = await self._wait_for_lease(key, lease, down)
                if waited is not None:
                    return waited.value  # type: ignore[no-any-return]
            try:
                self.stats.add("loads")
                # The loaded value's version is taken before the loader runs: a write of
                # the key made while it runs is newer, and wins.
                stamp = hlc.tick(self.clock())
                started = time.perf_counter()
                loaded = await loader()
                took = time.perf_counter() - started
                if self._on_write is not None:
                    self._on_write.loaded(key, took)
                ttl_used: float | None = ttl
                if loaded is None:
                    if negative_ttl is None:
                        return loaded
                    ttl_used = negative_ttl
                life: Freshness = (stale_ttl, took, beta or 0.0) if (stale_ttl or beta) else None
                await self._write_back(key, loaded, ttl_used, tags, life, down, seen, stamp, gen)
                return loaded
            finally:
                if token is not None:
                    await self._release_lease(key, token)

        return await self._flights.do(key, lead)

    async def _wait_for_lease(
        self, key: str, lease: float, down: Down
    ) -> tuple[Envelope | None, str | None]:
        """Take the Redis lease of ``key`` (``(None, token)``: this caller loads) or wait for
        the holder's value in L2 (``(entry, None)``); ``(None, None)``: load without it
        (at once when Redis was unreachable earlier in this call: ``down``)."""
        remote = self.remote
        acquire = getattr(remote, "acquire_lease", None)
        if remote is None or acquire is None:
            return None, None
        deadline = time.monotonic() + lease
        pause = 0.002
        while True:
            if REMOTE in down:
                return None, None  # Redis down: load here
            try:
                token = await acquire(key, lease)
            except (TierError, ValueError) as exc:
                note_down(down, REMOTE, exc)
                self._report("lease", REMOTE, exc)
                return None, None  # Redis down: load here
            found = await self._read(key, down)  # the last holder may have just stored it
            if found is not None and not wants_refresh(found):
                if token is not None:
                    await self._release_lease(key, token)
                return found, None
            if token is not None:
                return None, token
            if time.monotonic() >= deadline:
                return None, None
            await async_sleep(pause)
            pause = min(pause * 2, 0.05)

    async def _release_lease(self, key: str, token: str) -> None:
        try:
            await self.remote.release_lease(key, token)  # type: ignore[union-attr]
        except TierError as exc:
            self._report("lease", "remote", exc)  # it expires by itself

    def cached(
        self,
        ttl: float | None = None,
        *,
        key: KeyFunc | None = None,
        tags: TagsArg = (),
        negative_ttl: float | None = None,
    ) -> Callable[[F], F]:
        """Decorate a function so that its results are cached through this manager for
        ``ttl`` seconds (see :mod:`novacache.manager.decorator`): a coroutine function for
        the asyncio manager; a function or a coroutine function for the synchronous one.

        ``key(*args, **kwargs)`` builds the cache key (default: the function's qualified
        name and the ``repr`` of its arguments); ``tags`` is a list of tags or a
        callable ``tags(*args, **kwargs)``; ``negative_ttl`` caches a ``None`` result for
        that long (by default ``None`` is not cached). The decorated function keeps its
        type for type checkers.
        """
        return make_decorator(self, ttl, key, tags, negative_ttl)

    # -- lifetime ---------------------------------------------------------------------

    async def close(self) -> None:
        """Close the tiers below (L1 is left as it is); calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if IS_ASYNC:
            repairer, self._c.repairer = self._c.repairer, None
            if repairer is not None:
                repairer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await repairer
        else:
            self._c.repairer = None  # the thread sees _closed and ends within REPAIR_INTERVAL
        if self._on_write is not None:
            await self._on_write.close()
        if self.bus is not None:
            await async_run_blocking(self.bus.close)
        self._close_indexes()
        for slot, tier in self._below:
            try:
                await tier.close()
            except TierError as exc:
                self._report("close", slot, exc)

    async def __aenter__(self) -> AsyncCacheManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
