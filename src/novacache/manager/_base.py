"""What the synchronous and the asyncio managers share: configuration, the envelope on
read, routing and encoding on write, L1 updates and failure reporting (no I/O here)."""

from __future__ import annotations

import inspect
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from .._local import LocalCache
from ..codec import Codec
from ..coherence import InvalidationBus
from ..errors import (
    CodecError,
    ConfigurationError,
    EntryTooLarge,
    PartialWrite,
    TierError,
    TierTimeout,
    TierUnavailable,
)
from ..tiers._checks import MAX_TTL
from . import _kit
from .envelope import Envelope, open_envelope, seal
from .router import LOCAL, REMOTE, STORE, Router
from .stats import ManagerStats, WriteReport
from .tags import AnyTagIndex, indexes_for

__all__ = [
    "MISS",
    "Down",
    "ErrorHook",
    "ManagerBase",
    "WritePolicy",
    "check_ttl",
    "through_tier",
]

TierT = TypeVar("TierT")
WritePolicy = Literal["raise", "report"]
ErrorHook = Callable[[str, str, BaseException], None]

MISS: Any = object()
BELOW = frozenset((REMOTE, STORE))
EVERY_TIER = frozenset((LOCAL, REMOTE, STORE))
_Fields = tuple[tuple[str, ...], dict[str, TierError]]
_ReportNew = Callable[[type[WriteReport], _Fields], WriteReport]
#: WriteReport(written, failed) without the NamedTuple's Python-level __new__.
new_report: _ReportNew = tuple.__new__
Hits = Mapping[str, tuple[bytes, Envelope]]


# (grace seconds after ttl, loader seconds, XFetch beta) of an entry, or None
Freshness: TypeAlias = "tuple[float | None, float, float] | None"

# The tiers that failed as unreachable (TierUnavailable, TierTimeout) so far in one call
# of the manager, by slot: the rest of that call does not try them again, so one call
# pays at most one timeout per tier (see ``docs/manager.md``).
Down: TypeAlias = "dict[str, TierError]"


def note_down(down: Down | None, slot: str, exc: BaseException) -> None:
    """Remember ``slot`` as unreachable for the rest of the call when ``exc`` says so."""
    if down is not None and isinstance(exc, (TierUnavailable, TierTimeout)):
        down.setdefault(slot, exc)


def through_tier(index: object) -> bool:
    """Whether a tag index works through its tier's own connections (the Redis index
    sets do; the SQLite and PostgreSQL tag tables have their own): only then does its
    failure say the tier is unreachable, and the tier's failure say it is."""
    return getattr(index, "tier", None) is not None


def as_tier_error(slot: str, exc: BaseException) -> TierError:
    """A tier's failure as a ``TierError`` for a :class:`WriteReport` (an oversized entry
    the tier refused is one too)."""
    if isinstance(exc, TierError):
        return exc
    return TierError(f"{slot} refused the entry: {exc}")


def xfetch_margin(delta: float, beta: float) -> float:
    """XFetch's random head start: ``delta * beta * -ln(U)``, U uniform in (0, 1]
    (Vattani, Chierichetti, Lowenstein: "Optimal probabilistic cache stampede
    prevention", VLDB 2015)."""
    if not beta or not delta:
        return 0.0
    e = -math.log(1.0 - random.random())
    return delta * beta * e if e else 0.0  # (inf * 0 would be NaN)


def wants_refresh(env: Envelope) -> bool:
    """Whether an entry read below is stale, or XFetch picks this read to refresh it."""
    if env.fresh is None:
        return False
    return env.fresh - xfetch_margin(env.delta, env.beta) <= 0


def check_ttl(ttl: float | None) -> float | None:
    """``ttl`` as the manager keeps it: ``None`` (no expiry) or a finite real > 0.

    ``math.inf`` and any TTL above ``MAX_TTL`` (100 years) mean no expiry, as in every
    tier; 0, negative, NaN and non-numbers raise ``ValueError``.
    """
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise ValueError(f"ttl must be a real > 0, math.inf or None, not {ttl!r}")
    if ttl > MAX_TTL:
        return None
    return float(ttl)


def one_ttl(ttl: float | None, default_ttl: float | None) -> float | None:
    """The manager's TTL from its two spellings (``ttl``, and ``default_ttl``, the older
    name): at most one may be given, or both with the same value."""
    if ttl is None:
        return default_ttl
    if default_ttl is not None and default_ttl != ttl:
        raise ConfigurationError(
            f"ttl={ttl!r} and default_ttl={default_ttl!r} name the same setting: give one"
        )
    return ttl


def check_freshness(
    stale_ttl: float | None, beta: float | None, lease: float | None
) -> tuple[float | None, float | None, float | None]:
    """The options of ``get_or_load`` beyond ``ttl``, checked: each ``None`` or a real
    number (never a ``bool``) that is not NaN nor infinite; ``stale_ttl`` and ``lease``
    > 0 (seconds; above ``MAX_TTL``, 100 years, they count as ``MAX_TTL``), ``beta`` >= 0
    and < 1e300. ``ValueError`` otherwise, before any loader runs."""
    out: list[float | None] = []
    for name, x, seconds in (("stale_ttl", stale_ttl, True), ("beta", beta, False),
                             ("lease", lease, True)):  # fmt: skip
        if x is None:
            out.append(None)
            continue
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(f"{name} must be a number, not {x!r}")
        if seconds:
            if not 0 < x < math.inf:  # an int beyond the floats compares fine
                raise ValueError(f"{name} must be a finite number of seconds > 0, not {x!r}")
            out.append(MAX_TTL if x > MAX_TTL else float(x))
        else:
            if not 0 <= x < 1e300:
                raise ValueError(f"{name} must be a finite number >= 0, not {x!r}")
            out.append(float(x))
    return out[0], out[1], out[2]


_TIER_METHODS = ("get", "set", "get_many", "set_many", "delete_many", "close")


def check_tier_kind(slot: str, tier: object, want_async: bool) -> None:
    """``ConfigurationError`` unless ``tier`` is a tier of the kind the manager awaits
    (asyncio) or calls (synchronous): a synchronous manager given an asyncio tier would
    report writes that never happened, and the reverse would fail at the first await."""
    get = getattr(tier, "get", None)
    if not all(callable(getattr(tier, name, None)) for name in _TIER_METHODS):
        raise ConfigurationError(
            f"{slot}= must be a cache tier (RedisTier, SQLiteTier, PostgresTier, ...),"
            f" not {type(tier).__name__}"
        )
    if inspect.iscoroutinefunction(get) == want_async:
        return
    name = type(tier).__name__
    if want_async:
        raise ConfigurationError(
            f"{slot}={name} is a synchronous tier: give AsyncCacheManager its asyncio form"
            f" (e.g. Async{name}), or use CacheManager"
        )
    plain = name.removeprefix("Async") if name.startswith("Async") else f"the sync form of {name}"
    raise ConfigurationError(
        f"{slot}={name} is an asyncio tier: give CacheManager {plain}, or use AsyncCacheManager"
    )


class ManagerBase(Generic[TierT]):
    """Configuration and the I/O-free steps of both managers (see ``CacheManager``)."""

    #: Whether the tiers are awaited (the asyncio manager) or called.
    _async_tiers = False
    #: The consistency models (novacache.consistency) when ``consistency=`` names one.
    #: Note that it is set on the instance only then: an instance without it keeps the
    #: attribute dictionary the hit path has always read.
    consistency: Any = None

    def __init__(
        self,
        local: LocalCache | None,
        remote: TierT | None,
        store: TierT | None,
        codec: Codec | None,
        router: Router | None,
        default_ttl: float | None,
        on_write_error: WritePolicy,
        on_error: ErrorHook | None,
        clock: Callable[[], float],
    ) -> None:
        if on_write_error not in ("raise", "report"):
            raise ConfigurationError("on_write_error is 'raise' or 'report'")
        if router is not None and not isinstance(router, Router):
            raise ConfigurationError("router must be a novacache.manager.Router")
        for slot, tier in ((REMOTE, remote), (STORE, store)):
            if tier is not None:
                check_tier_kind(slot, tier, self._async_tiers)
        self.local = local
        self.remote = remote
        self.store = store
        self.codec: Codec = codec if codec is not None else Codec()
        self.router = router if router is not None else Router()
        self.default_ttl = check_ttl(default_ttl)
        self.on_write_error: WritePolicy = on_write_error
        self.on_error = on_error
        self.clock = clock if clock is not None else time.time
        self.stats = ManagerStats()
        # The read path counts with these directly (one call per count).
        self._count = self.stats.counters.add
        self._hits = {slot: self.stats.index(slot, "hits") for slot in (REMOTE, STORE)}
        self._misses = {slot: self.stats.index(slot, "misses") for slot in (REMOTE, STORE)}
        self._below: tuple[tuple[str, TierT], ...] = tuple(
            (slot, tier) for slot, tier in ((REMOTE, remote), (STORE, store)) if tier is not None
        )
        # ``self._l1[key]`` is a hit or a KeyError (an empty dict when there is no L1)
        self._l1: Any = local if local is not None else {}
        # L1's own default TTL bounds how long a value read below stays in L1.
        self._l1_cap: float | None = local.ttl if local is not None else None
        self._closed = False
        self._tag_indexes: tuple[AnyTagIndex, ...] | None = None
        self.bus: InvalidationBus | None = None
        # The invalidation engine bound to this manager (novacache.invalidation), whose
        # hooks the write and load paths call when it is set (one test each otherwise).
        self._on_write: Any = None
        self.invalidation: Any = None

    def __repr__(self) -> str:
        names = [f"local={self.local!r}"]
        names += [
            f"{slot}={getattr(tier, 'name', type(tier).__name__)!r}" for slot, tier in self._below
        ]
        return f"{type(self).__name__}({', '.join(names)})"

    # -- failures ---------------------------------------------------------------------

    def _report(self, op: str, slot: str, exc: BaseException) -> None:
        hook = self.on_error
        if hook is not None:
            try:
                hook(op, slot, exc)
            except Exception:  # a reporting hook must never break a cache call
                self.stats.add("hook_errors")

    def _read_failed(self, op: str, slot: str, exc: BaseException, down: Down) -> None:
        """A read of tier ``slot`` failed: a miss of that tier, counted and reported (and
        the tier skipped for the rest of the call when it is unreachable)."""
        note_down(down, slot, exc)
        self.stats.count(slot, "read_errors")
        self._report(op, slot, exc)

    def _finish(
        self, op: str, report: WriteReport, policy: WritePolicy | None = None
    ) -> WriteReport:
        if report.failed:
            self.stats.add("write_errors", len(report.failed))
            if (policy or self.on_write_error) == "raise":
                raise PartialWrite(op, report.failed, report.written)
        return report

    # -- reading ----------------------------------------------------------------------

    def _open(self, slot: str, key: str, frame: bytes) -> Envelope | None:
        """The value and remaining life of a frame read from ``slot``; ``None`` (counted)
        when it is corrupt or expired."""
        try:
            envelope = open_envelope(self.codec.decode(key, frame), self.clock)
        except (CodecError, ValueError):
            self.stats.count(slot, "corrupt")
            return None
        if envelope is None:
            self.stats.count(slot, "expired")
            return None
        return envelope

    def _l1_ttl(self, env: Envelope) -> float | None:
        """The L1 lifetime of a value read below: never past its hard deadline nor past
        L1's own default TTL (a bound on how long L1 may lag behind), and for an entry
        with a freshness deadline, only while it is fresh, less XFetch's random early
        margin. ``0.0``: do not put it into L1 (stale, or to be refreshed now)."""
        assert self.local is not None
        remaining = env.remaining
        if env.fresh is not None:
            remaining = max(env.fresh - xfetch_margin(env.delta, env.beta), 0.0)
        cap = self.local.ttl
        if remaining is None:
            return cap
        return remaining if cap is None else min(remaining, cap)

    def _to_l1(self, key: str, value: Any, ttl: float | None, gen: int | None = None) -> bool:
        """Put ``value`` into L1; with an invalidation bus, only while it is healthy and,
        for a value read below, only when no invalidation arrived since the read began
        (``gen``). When it is not put, an older L1 value of the key is dropped."""
        local = self.local
        if local is None:
            return False
        if ttl is not None and ttl <= 0:
            local.pop(key, None)
            return False
        bus = self.bus
        if bus is not None and (not bus.healthy or (gen is not None and bus.generation != gen)):
            local.pop(key, None)
            self.stats.add("l1_skipped")
            return False
        try:
            local.set(key, value, ttl=ttl)
        except EntryTooLarge:
            local.pop(key, None)
            self.stats.add("l1_refused")
            return False
        return True

    #: Put a value read from the first tier below into L1 (``_fill_l1_any``; compiled
    #: where built, with its common case in C: see .._kit).
    _fill_l1 = _kit.fill_l1

    def _fill_l1_any(self, key: str, size: int, env: Envelope, gen: int) -> None:
        """Put a value read from the first tier below into L1 (what :meth:`_promote`
        does when no tier above it is to be written): the same rules as ``_to_l1`` with
        ``_l1_ttl``, in one call for the common case (no route rules, no freshness
        deadline, no bus)."""
        local = self.local
        if local is None:
            return
        if not self.router.everywhere and LOCAL not in self.router.tiers(key, size):
            return
        if env.fresh is not None or self.bus is not None:
            self._to_l1(key, env.value, self._l1_ttl(env), gen)
            return
        ttl = env.remaining
        cap = self._l1_cap
        if ttl is None or (cap is not None and cap < ttl):
            ttl = cap
        try:
            local.set(key, env.value, ttl=ttl)
        except EntryTooLarge:
            local.pop(key, None)
            self.stats.add("l1_refused")

    def _bus_generation(self) -> int:
        bus = self.bus
        return bus.generation if bus is not None else 0

    def _promotion_batches(
        self, slot: str, hits: Hits
    ) -> list[tuple[dict[str, bytes], float | None]]:
        """The ``set_many`` calls that promote ``hits`` to tier ``slot``: one for the
        entries without expiry and one for the others, with the longest remaining life
        among them (the envelope's own deadline still ends each entry on time)."""
        route = self.router.tiers
        forever: dict[str, bytes] = {}
        finite: dict[str, bytes] = {}
        longest = 0.0
        for key, (frame, env) in hits.items():
            remaining = env.remaining
            if slot not in route(key, len(frame)):
                continue
            if remaining is None:
                forever[key] = frame
            else:
                finite[key] = frame
                longest = max(longest, remaining)
        return [(batch, ttl) for batch, ttl in ((forever, None), (finite, longest)) if batch]

    # -- writing ----------------------------------------------------------------------

    def _encode_and_route(
        self, key: str, value: Any, ttl: float | None, now: float, fresh: Freshness = None
    ) -> tuple[frozenset[str], bytes | None]:
        """The tier slots a write of ``key`` goes to, and its frame (``None`` when no tier
        below takes it: then nothing is encoded)."""
        router = self.router
        if router.everywhere:  # no rules: every tier, and nothing to ask the router
            slots: frozenset[str] | None = EVERY_TIER
            if not self._below:
                return EVERY_TIER, None
        else:
            slots = None if router.sizes_matter else router.tiers(key, None)
            if not self._below or (slots is not None and not slots & BELOW):
                return (slots if slots is not None else router.tiers(key, None)), None
        if fresh is None:
            frame = self.codec.encode(key, seal(value, ttl, now))
        else:
            stale, delta, beta = fresh
            frame = self.codec.encode(
                key, seal(value, ttl, now, stale=stale, delta=delta, beta=beta)
            )
        if slots is None:
            slots = router.tiers(key, len(frame))
        return slots, frame

    def _indexes(self) -> tuple[AnyTagIndex, ...]:
        """The tag indexes, built on first use (see :mod:`.tags`)."""
        if self._tag_indexes is None:
            self._tag_indexes = indexes_for(self.remote, self.store, self.clock)
        return self._tag_indexes

    def _close_indexes(self) -> None:
        for index in self._tag_indexes or ():
            close = getattr(index, "close", None)
            if close is not None:
                close()

    def _bus_down(self, down: Down) -> TierError | None:
        """The error of the Redis tier when it was unreachable earlier in this call and
        the bus publishes to the same server (then the bus is not tried either)."""
        bus, remote = self.bus, self.remote
        error = down.get(REMOTE)
        if bus is None or error is None:
            return None
        config = getattr(remote, "config", None)
        same = config is not None and getattr(bus.tier, "config", None) == config
        return error if bus.tier is remote or same else None

    def _write_ttls(self, ttl: float | None, fresh: Freshness) -> tuple[float | None, float]:
        """The TTL a write gives the tiers below (past ``ttl`` by the grace period) and
        L1 (fresh only, less XFetch's margin; ``math.inf``: no expiry)."""
        if ttl is None:
            return None, math.inf
        if fresh is None:
            return ttl, ttl
        stale, delta, beta = fresh
        return ttl + (stale or 0.0), max(ttl - xfetch_margin(delta, beta), 0.0)

    def _ttl(self, ttl: float | None) -> float | None:
        return self.default_ttl if ttl is None else check_ttl(ttl)
