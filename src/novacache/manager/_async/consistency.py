"""The consistency models of one manager (``consistency={prefix: model}``).

This is the one hand-written source; the synchronous half (``../_sync/consistency.py``)
is generated from it by ``scripts/unasync.py``. What needs no manager (the models by
prefix, session tokens, versions, the history checker) is :mod:`novacache.consistency`.

The manager hands the keys of a non-``eventual`` prefix to :class:`AsyncConsistency`
(its ``get``, ``set`` and ``delete`` are replaced by this object's when a
``consistency=`` is given; without one nothing here runs):

- ``strong``: reads and writes go to the *authority* only (the Redis tier, else the
  store), never to or from an L1 copy: one round trip per read and per write (two with
  tags). When the authority cannot be reached, :class:`~novacache.errors.
  ConsistencyUnavailable` is raised instead of serving another tier.
- ``session`` / ``monotonic``: they compare the version every entry's envelope carries
  (:class:`~novacache.consistency.Version`, a hybrid logical clock: see
  :mod:`novacache.consistency.hlc`; the value stored is the plain value, as for any
  key). A read is served from L1 only when its version is at least the highest the
  reader saw (the session's, or for ``monotonic`` keys the manager's), else from the
  first tier below that has such a version; a delete's tombstone reads as "absent at
  the delete's version", an entry written before versions (envelopes 1 and 2) as
  version ``(0, 0)``. The *authority* (the first tier below: Redis, else the
  store) is the source of truth: what it holds is returned even when older than seen
  (the newer write was replaced by a concurrent write that carries an older version);
  an older version in a tier under it is never served (a miss instead: the caller
  loads from its own source); when the authority does not answer and no other tier has
  a version at least as new, ``ConsistencyUnavailable`` is raised.

Note that the keys of every model are routed below L1 (a rule per prefix, before the
router's own): no path but this one puts them into the manager's L1. ``strong`` keys
are never put there; a ``session``/``monotonic`` value is put there as a plain value
(what every other read path expects) and its version is kept beside it, in
:class:`~..spec.Stamps`, with the very object put into L1: deletes, invalidations, the
bus and ``clear`` drop the L1 copy as they drop any, and an L1 value that is not the
stamped object has an unknown version (it is never served against a floor).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from ...consistency import hlc
from ...consistency.hlc import Version
from ...consistency.spec import (
    EVENTUAL,
    MONOTONIC,
    STRONG,
    Models,
    Stamps,
    Tracked,
    decode_token,
    encode_token,
)
from ...errors import ConfigurationError, ConsistencyUnavailable, EntryTooLarge, TierError
from ..envelope import read_tombstone, seal
from ..router import REMOTE, STORE, Route, Router
from ..stats import WriteReport
from ..tags import check_tags

__all__ = ["AsyncConsistency", "AsyncSession"]

_MISS: Any = object()
#: Keys the manager-wide "highest version seen" of ``monotonic`` keys covers, at least.
_READER_KEYS = 10_000


def _applied(exc: BaseException) -> bool | None:
    """Whether a failed write may have reached the server: ``False`` when the tier
    refused it before any I/O (an open breaker raises without a cause), else unknown."""
    return False if exc.__cause__ is None else None


class AsyncConsistency:
    """The models of ``manager`` by key prefix (``spec``); see the module docstring."""

    def __init__(
        self,
        manager: Any,  # the AsyncCacheManager (not imported: it imports this module)
        spec: Models,
        session_key: bytes | None = None,
    ) -> None:
        if session_key is not None and not isinstance(session_key, bytes):
            raise ConfigurationError("session_key is bytes (the same in every process)")
        self.manager = manager
        self.models = spec
        self.session_key = session_key
        below = dict(manager._below)
        slot = REMOTE if REMOTE in below else STORE
        self.authority = (slot, below[slot]) if slot in below else None
        if spec.uses - {EVENTUAL} and self.authority is None:
            raise ConfigurationError(
                "the strong, session and monotonic models need a tier below L1 (remote= or"
                " store=): L1 alone is one process's copy"
            )
        # Keys of a model never go into the manager's L1, on any path (a promotion, a
        # fill, a write): routed to the tiers below first, before the user's rules.
        routes = [Route("remote", prefix=p) for p, model in spec.rules if model != EVENTUAL]
        manager.router = Router((*routes, *manager.router.rules), manager.router.default)
        local = manager.local
        size = local.maxsize if local is not None and local.maxsize else 0
        # The version of each L1 copy of a session/monotonic key, with the very object
        # put into L1: a copy is known by identity (a value L1 got any other way, or
        # after a drop and a refill, is not the one stamped: its version is unknown).
        self.stamps = Stamps(max(size, _READER_KEYS))
        self.seen = Tracked(max(size, _READER_KEYS))  # this reader's monotonic keys
        # The manager's own (eventual) methods, before the manager points its get, set
        # and delete here.
        self.eventual_get: Callable[..., Awaitable[Any]] = manager.get
        self.eventual_set: Callable[..., Awaitable[WriteReport]] = manager.set
        self.eventual_delete: Callable[[str], Awaitable[bool]] = manager.delete
        self.eventual_get_many: Callable[..., Awaitable[dict[str, Any]]] = manager.get_many
        self.eventual_set_many: Callable[..., Awaitable[WriteReport]] = manager.set_many
        self.eventual_get_or_load: Callable[..., Awaitable[Any]] = manager.get_or_load

    # -- dispatch (the manager's get, set and delete) ---------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """``manager.get`` under the models."""
        model = self.models.model(key)
        if model == EVENTUAL:
            return await self.eventual_get(key, default)
        if model == STRONG:
            return await self.strong_get(key, default)
        floors = (self.seen,) if model == MONOTONIC else ()
        return await self.versioned_get(key, default, floors)

    async def set(
        self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> WriteReport:
        """``manager.set`` under the models."""
        model = self.models.model(key)
        if model == EVENTUAL:
            return await self.eventual_set(key, value, ttl, tags)
        if model == STRONG:
            return await self.strong_set(key, value, ttl, tags)
        floors = (self.seen,) if model == MONOTONIC else ()
        return await self.versioned_set(key, value, ttl, tags, floors)

    async def delete(self, key: str) -> bool:
        """``manager.delete`` under the models."""
        model = self.models.model(key)
        if model == EVENTUAL:
            return await self.eventual_delete(key)
        if model == STRONG:
            return await self.strong_delete(key)
        floors = (self.seen,) if model == MONOTONIC else ()
        return await self.versioned_delete(key, floors)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """``manager.get_many`` under the models: the keys of a model one at a time."""
        wanted = list(dict.fromkeys(keys))
        model = self.models.model
        found = await self.eventual_get_many([k for k in wanted if model(k) == EVENTUAL])
        for key in wanted:
            if model(key) != EVENTUAL:
                value = await self.get(key, _MISS)
                if value is not _MISS:
                    found[key] = value
        return {k: found[k] for k in wanted if k in found}

    async def set_many(
        self, items: Mapping[str, Any], ttl: float | None = None, tags: Iterable[str] = ()
    ) -> WriteReport:
        """``manager.set_many`` under the models: the keys of a model one at a time (the
        first failure raises, as ``set`` does)."""
        model = self.models.model
        report = await self.eventual_set_many(
            {k: v for k, v in items.items() if model(k) == EVENTUAL}, ttl, tags
        )
        for key, value in items.items():
            if model(key) != EVENTUAL:
                await self.set(key, value, ttl, tags)
        return report

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | None = None,
        **options: Any,
    ) -> Any:
        """``manager.get_or_load`` under the models: a key of a model is read with
        ``get`` and, when absent, loaded and written with ``set`` (the options of the
        eventual path, single-flight, grace periods and leases, apply to eventual keys
        only)."""
        if self.models.model(key) == EVENTUAL:
            return await self.eventual_get_or_load(key, loader, ttl, **options)
        value = await self.get(key, _MISS)
        if value is not _MISS:
            return value
        value = await loader()
        if value is not None:
            await self.set(key, value, ttl, options.get("tags", ()))
        return value

    # -- strong -------------------------------------------------------------------------

    def _drop_copies(self, key: str) -> None:
        local = self.manager.local
        if local is not None:
            local.pop(key, None)
        self.stamps.pop(key)

    async def strong_get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` as the authority holds it now (one round trip)."""
        m = self.manager
        assert self.authority is not None
        slot, tier = self.authority
        try:
            frame = await tier.get(key)
        except (TierError, EntryTooLarge) as exc:
            m._read_failed("get", slot, exc, {})
            raise ConsistencyUnavailable("get", key, str(exc), False) from exc
        if frame is None:
            m._count(m._misses[slot])
            return default
        env = m._open(slot, key, frame)
        if env is None:
            return default
        m._count(m._hits[slot])
        return env.value

    async def strong_set(
        self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> WriteReport:
        """Write ``value`` to the authority only (one round trip; two with tags)."""
        m = self.manager
        assert self.authority is not None
        slot, tier = self.authority
        if ttl is None and m._on_write is not None:
            ttl = m._on_write.ttl_for(key)  # the TTL rules (novacache.invalidation)
        ttl = m._ttl(ttl)
        wanted = check_tags(tags)
        frame = m.codec.encode(key, seal(value, ttl, m.clock()))
        self._drop_copies(key)
        if wanted:
            failed: dict[str, TierError] = {}
            await m._index(wanted, [key], ttl, failed, {})
            for error in failed.values():
                raise ConsistencyUnavailable("set", key, str(error), False) from error
        try:
            await getattr(tier, "set_once", tier.set)(key, frame, ttl)
        except TierError as exc:
            m.stats.add("write_errors")
            m._report("set", slot, exc)
            raise ConsistencyUnavailable("set", key, str(exc), _applied(exc)) from exc
        return WriteReport((slot,), {})

    async def strong_delete(self, key: str) -> bool:
        """Delete ``key`` at the authority only (one round trip)."""
        m = self.manager
        assert self.authority is not None
        slot, tier = self.authority
        self._drop_copies(key)
        try:
            return bool(await getattr(tier, "delete_once", tier.delete)(key))
        except TierError as exc:
            m.stats.add("write_errors")
            m._report("delete", slot, exc)
            raise ConsistencyUnavailable("delete", key, str(exc), _applied(exc)) from exc

    # -- versioned (session, monotonic) -------------------------------------------------

    def _saw(self, key: str, version: Version, floors: Iterable[Tracked]) -> None:
        # (the version read was merged into this process's clock as it was decoded)
        for tracked in floors:
            tracked.saw(key, version)

    async def versioned_get(self, key: str, default: Any, floors: Iterable[Tracked]) -> Any:
        """The value of ``key`` at a version at least the highest in ``floors`` (see
        the module docstring): the version of the entry's envelope, or of the delete's
        tombstone (then ``default``: absent at that version)."""
        m = self.manager
        floors = tuple(floors)
        seen = [v for v in (t.floor(key) for t in floors) if v is not None]
        floor = max(seen) if seen else None
        local = m.local
        if local is not None:
            value = local.get(key, _MISS)
            stamp = self.stamps.get(key) if value is not _MISS else None
            if stamp is not None and stamp[0] is value and (floor is None or stamp[1] >= floor):
                self._saw(key, stamp[1], floors)
                return value
        gen = m._generation(key)
        found: tuple[Any, Version, Any] | None = None
        failure: BaseException | None = None
        for i, (slot, tier) in enumerate(m._below):
            try:
                frame = await tier.get(key)
            except (TierError, EntryTooLarge) as exc:
                m._read_failed("get", slot, exc, {})
                if i == 0:
                    failure = exc
                continue
            if frame is None:
                m._count(m._misses[slot])
                continue
            env = m._open(slot, key, frame)
            if env is None:
                deleted = read_tombstone(frame)  # (None: corrupt or expired, a miss)
                if deleted is not None and (floor is None or deleted >= floor or i == 0):
                    found = (_MISS, deleted, None)  # absent at the delete's version
                    break
                continue
            m._count(m._hits[slot])
            version = env.version
            if floor is None or version >= floor or i == 0:
                # At least as new as seen, or the authority's present value (older than
                # seen when a concurrent write with an older version replaced it).
                found = (env.value, version, env)
                break
            # An older version in a tier below the authority: never served.
        if found is None:
            if failure is not None and floor is not None:
                # The authority did not answer and no other tier has what was seen.
                raise ConsistencyUnavailable("get", key, str(failure), False) from failure
            return default
        value, version, env = found
        self._saw(key, version, floors)
        if value is _MISS:
            return default
        if local is not None and m._to_l1(key, value, m._l1_ttl(env), gen):
            self.stamps.put(key, value, version)
        return value

    async def versioned_set(
        self,
        key: str,
        value: Any,
        ttl: float | None,
        tags: Iterable[str],
        floors: Iterable[Tracked],
    ) -> WriteReport:
        """Write ``value`` at a version newer than any the writer saw of ``key``: the
        version its envelope is sealed with."""
        m = self.manager
        floors = tuple(floors)
        for tracked in floors:
            floor = tracked.floor(key)
            if floor is not None:
                hlc.observe(floor.stamp)
        if ttl is None and m._on_write is not None:
            ttl = m._on_write.ttl_for(key)  # the TTL rules (novacache.invalidation)
        lifetime = m._ttl(ttl)  # checked before anything is written
        stamp = hlc.tick(m.clock())
        version = Version(stamp, hlc.writer())
        self.stamps.pop(key)
        # (routed below L1 only: the manager's L1 is filled below, with the stamp)
        report: WriteReport = await m._set(key, value, ttl, tags, None, stamp=stamp)
        for tracked in floors:
            tracked.saw(key, version)
        if m.local is not None and m._to_l1(key, value, math.inf if lifetime is None else lifetime):
            self.stamps.put(key, value, version)
        return report

    async def versioned_delete(self, key: str, floors: Iterable[Tracked]) -> bool:
        """Delete ``key`` (tombstones of a new version); the readers in ``floors`` never
        read a value older than the delete again."""
        m = self.manager
        floors = tuple(floors)
        version = Version(hlc.tick(m.clock()), hlc.writer())
        self.stamps.pop(key)
        found, report = await m._delete_many([key], None, version)
        m._finish("delete", report)
        for tracked in floors:
            tracked.saw(key, version)
        return bool(found > 0)

    # -- sessions -----------------------------------------------------------------------

    def session(self, token: str | None = None) -> AsyncSession:
        """A session (resumed from ``token`` when given)."""
        return AsyncSession(self, token)


class AsyncSession:
    """Read-your-writes and monotonic reads for the keys of the ``session`` and
    ``monotonic`` models (``strong`` keys read and write as ever; for ``eventual``
    keys a session promises nothing more).

    ``token`` is a compact text of the versions this session saw (at most
    :data:`~novacache.consistency.spec.MAX_TRACKED` keys: the least recently updated
    is forgotten first), signed with the manager's ``session_key`` (validated, not
    signed, without one); ``manager.session(token)`` resumes it in any process."""

    def __init__(self, consistency: AsyncConsistency, token: str | None = None) -> None:
        self._c = consistency
        self.versions = Tracked()
        if token is not None:
            for key, version in decode_token(token, consistency.session_key).items():
                self.versions.saw(key, version)
                hlc.observe(version.stamp)  # a write in this session is newer

    @property
    def token(self) -> str:
        """The session's token, to resume it elsewhere (``manager.session(token)``)."""
        return encode_token(self.versions.versions, self._c.session_key)

    def _floors(self, key: str) -> tuple[str, tuple[Tracked, ...]]:
        model = self._c.models.model(key)
        if model == MONOTONIC:
            return model, (self.versions, self._c.seen)
        return model, (self.versions,)

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``: never older than what this session wrote or read."""
        model, floors = self._floors(key)
        if model == EVENTUAL:
            return await self._c.eventual_get(key, default)
        if model == STRONG:
            return await self._c.strong_get(key, default)
        return await self._c.versioned_get(key, default, floors)

    async def set(
        self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> WriteReport:
        """Write ``value``; this session reads it (or a newer value) from now on."""
        model, floors = self._floors(key)
        if model == EVENTUAL:
            return await self._c.eventual_set(key, value, ttl, tags)
        if model == STRONG:
            return await self._c.strong_set(key, value, ttl, tags)
        return await self._c.versioned_set(key, value, ttl, tags, floors)

    async def delete(self, key: str) -> bool:
        """Delete ``key``; this session never reads a value older than the delete."""
        model, floors = self._floors(key)
        if model == EVENTUAL:
            return await self._c.eventual_delete(key)
        if model == STRONG:
            return await self._c.strong_delete(key)
        return await self._c.versioned_delete(key, floors)

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None
