"""What the synchronous and the asyncio managers share: configuration, the envelope on
read, routing and encoding on write, L1 updates and failure reporting (no I/O here)."""

from __future__ import annotations

import inspect
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from .._local import LocalCache
from ..codec import Codec
from ..coherence import STRIPES as BUS_STRIPES
from ..coherence import InvalidationBus
from ..consistency import hlc
from ..consistency.resolve import DELETED, Resolution, Resolver, Versioned, resolver
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
from .envelope import TOMBSTONE_TTL, Envelope, open_envelope, read_tombstone, seal
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
# What a read saw in each tier below L1 it asked, by slot: the frame (a tombstone or an
# entry it could not use included) or None (absent). A write-back stores over exactly
# that, or not at all (the tiers' set_if): see docs/consistency.md.
Seen: TypeAlias = "dict[str, bytes | None]"

#: Keys per tier whose failed writes are remembered for repair (beyond: the tier is
#: cleared when it answers again; counted as ``repair_overflows``).
REPAIR_LIMIT = 100_000
#: The last keys written through the remote tier, repaired when it fails: writes it
#: confirmed shortly before a crash may be missing from its append-only file.
RECENT_WRITES = 20_000
#: Seconds between two replays of the repair logs (the background repairer).
REPAIR_INTERVAL = 0.1
#: Stripes of the per-key count of this process's writes (the bus's: see _wseq).
STRIPES = BUS_STRIPES
# consistency models by name: "eventual" is the manager's own; the others are applied by
# manager/_async/consistency.py, which replaces the methods of a manager that names one
MODELS = ("eventual", "strong", "session", "monotonic")


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


class _Consistency:
    """The manager's consistency state (see ``ManagerBase.__init__``)."""

    __slots__ = (
        "lock",
        "logs",
        "lost_at",
        "models",
        "outage",
        "probed",
        "repair_probe",
        "repairer",
        "resolve",
        "tombstone_ttl",
    )

    def __init__(
        self,
        resolve: Resolver,
        tombstone_ttl: float,
        models: tuple[tuple[str, str], ...],
        repair_probe: float | None,
        slots: list[str],
    ) -> None:
        life = check_ttl(tombstone_ttl)
        if life is None:
            raise ConfigurationError("tombstone_ttl must be a finite number of seconds > 0")
        if repair_probe is not None and (
            isinstance(repair_probe, bool)
            or not isinstance(repair_probe, (int, float))
            or not 0 < repair_probe < math.inf
        ):
            raise ConfigurationError("repair_probe must be None or a number of seconds > 0")
        self.resolve = resolve
        self.tombstone_ttl: float = life
        self.models = models
        self.repair_probe = repair_probe
        # Per tier below: the keys whose write failed there (key -> None, in order), to
        # remove from that tier when it answers again; None: the log overflowed.
        self.logs: dict[str, dict[str, None] | None] = {slot: {} for slot in slots}
        self.lock = threading.Lock()
        self.outage: set[str] = set()  # tiers that failed as unreachable, not repaired
        self.probed: dict[str, float] = {}  # when the repairer last pinged each
        self.lost_at: dict[str, float] = {}  # the bus's clock when each failed
        self.repairer: Any = None  # the background repairer (thread or task), if running


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
        resolve: Resolution = "highest_version",
        tombstone_ttl: float = TOMBSTONE_TTL,
        consistency: Mapping[str, str] | None = None,
        repair_probe: float | None = 1.0,
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
        self._router: Router = router if router is not None else Router()
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
        # -- consistency (docs/consistency.md) --
        # Writes and deletes of this process that reached the tiers, counted in STRIPES
        # stripes by the key's hash: a read below notes its key's stripe when it
        # begins, and its fill of L1 is skipped when a write of a key of that stripe
        # (or an invalidation from the bus) came meanwhile.
        self._wseq: list[int] = [0] * STRIPES
        # The last keys written (repaired when the remote tier fails: see _suspect).
        self._recent: deque[str] | None = deque(maxlen=RECENT_WRITES) if remote else None
        # The rest in one attribute: an instance with more than 30 attributes loses
        # CPython's shared-key dict, and every attribute read (the L1 hit's self._l1
        # included) pays for it.
        self._c = _Consistency(
            resolver(resolve),
            tombstone_ttl,
            self._check_models(consistency),
            repair_probe,
            [slot for slot, _ in self._below],
        )
        self._fill: tuple[list[int], float | None] | None = None
        self._plan_fill()

    @property
    def router(self) -> Router:
        """Which tiers a key is written to and read from (see ``Router``)."""
        return self._router

    @router.setter
    def router(self, router: Router) -> None:
        self._router = router
        self._plan_fill()

    def _plan_fill(self) -> None:
        """``self._fill``: what the compiled L1 fill after a read below needs, in one
        attribute (the stripes of this process's writes and L1's TTL cap), or ``None``
        when route rules may keep a key out of L1 (the general path then asks the
        router). Recomputed whenever ``router`` is replaced."""
        self._fill = (self._wseq, self._l1_cap) if self._router.everywhere else None

    @property
    def tombstone_ttl(self) -> float:
        """Seconds a delete's tombstone stays in L2 and L3 (see docs/consistency.md)."""
        return self._c.tombstone_ttl

    @property
    def repair_probe(self) -> float | None:
        """Seconds between the repairer's pings of a tier that failed (``None``: none)."""
        return self._c.repair_probe

    @staticmethod
    def _check_models(consistency: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
        """The per-prefix consistency models, longest prefix first (the hook where the
        models other than ``eventual`` plug in: :data:`MODELS`)."""
        if consistency is None:
            return ()
        if not isinstance(consistency, Mapping):
            raise ConfigurationError("consistency must map key prefixes to model names")
        out = []
        for prefix, model in consistency.items():
            if not isinstance(prefix, str) or model not in MODELS:
                raise ConfigurationError(
                    f"consistency model of {prefix!r} is one of {', '.join(MODELS)}, not {model!r}"
                )
            out.append((prefix, model))
        return tuple(sorted(out, key=lambda pm: -len(pm[0])))

    def model_for(self, key: str) -> str:
        """The consistency model of ``key``: that of the longest prefix given in
        ``consistency=`` that ``key`` starts with, else ``"eventual"``."""
        for prefix, model in self._c.models:
            if key.startswith(prefix):
                return model
        return "eventual"

    def __repr__(self) -> str:
        names = [f"local={self.local!r}"]
        names += [
            f"{slot}={getattr(tier, 'name', type(tier).__name__)!r}" for slot, tier in self._below
        ]
        return f"{type(self).__name__}({', '.join(names)})"

    # -- failures ---------------------------------------------------------------------

    def _report(self, op: str, slot: str, exc: BaseException) -> None:
        if (
            isinstance(exc, (TierUnavailable, TierTimeout))
            and slot in self._c.logs
            and slot not in self._c.outage
        ):
            self._suspect(slot)
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
        when it is corrupt, expired or a delete's tombstone."""
        try:
            envelope = open_envelope(self.codec.decode(key, frame), self.clock)
        except (CodecError, ValueError):
            deleted = read_tombstone(frame)
            if deleted is not None:
                hlc.observe(deleted.stamp)
                self.stats.count(slot, "tombstones")
            else:
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
        if gen is not None and gen != self._generation(key):
            local.pop(key, None)  # a write or an invalidation since the read began
            self.stats.add("l1_skipped")
            return False
        if bus is not None and not bus.healthy:
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
        if (
            env.fresh is not None
            or self.bus is not None
            or gen != self._wseq[hash(key) & (STRIPES - 1)]
        ):
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

    def _generation(self, key: str) -> int:
        """What a read of ``key`` below L1 notes before it begins, to fill L1 only when
        it has not changed since: this process's writes of keys of its stripe plus the
        invalidations the bus applied."""
        bus = self.bus
        h = hash(key) & (STRIPES - 1)
        return self._wseq[h] + (bus.stripes[h] + bus.epoch if bus is not None else 0)

    def _wrote(self, keys: Iterable[str] | None) -> None:
        """Count writes of ``keys`` (``None``: of every key) for the L1 fill gate."""
        wseq = self._wseq
        if keys is None:
            for i in range(STRIPES):
                wseq[i] += 1
            return
        for key in keys:
            wseq[hash(key) & (STRIPES - 1)] += 1

    # -- consistency: write-backs, repairs, resolution ----------------------------------

    def _newer_delete(self, env: Envelope, seen: Seen | None) -> bool:
        """Whether a tier above holds a delete's tombstone that wins over ``env`` (read
        below it): then the key was deleted after that entry was written."""
        if not seen:
            return False
        for slot, frame in seen.items():
            deleted = read_tombstone(frame) if frame is not None else None
            if deleted is None:
                continue
            here = Versioned(env.value, env.version, "below", env.remaining)
            if self._winner(Versioned(DELETED, deleted, slot), here).value is DELETED:
                return True
        return False

    def _winner(self, a: Versioned, b: Versioned) -> Versioned:
        """The copy the ``resolve=`` rule keeps (``a`` when a user rule fails)."""
        try:
            won = self._c.resolve(a, b)
        except Exception:
            self.stats.add("resolve_errors")
            return a
        if won is not a and won is not b:
            self.stats.add("resolve_errors")
            return a
        return won

    def _suspect(self, slot: str) -> None:
        """Tier ``slot`` failed as unreachable: remember to repair, once it answers
        again, the keys written through it just before (a server that crashed may come
        back from its append-only file without them) and start the repairer."""
        with self._c.lock:
            if slot in self._c.outage:
                return
            self._c.outage.add(slot)
            self._c.probed[slot] = time.monotonic()
            self._c.lost_at[slot] = self.bus.now() if self.bus is not None else 0.0
            recent = self._recent if slot == REMOTE else None
            if recent:
                self._log_failed_locked(slot, list(recent))
        self._start_repairer()

    def _log_failed(self, slot: str, keys: Iterable[str]) -> None:
        """Remember that a write of ``keys`` failed on tier ``slot`` (see repair)."""
        with self._c.lock:
            self._log_failed_locked(slot, keys)
        self._start_repairer()

    def _log_failed_locked(self, slot: str, keys: Iterable[str]) -> None:
        log = self._c.logs.get(slot, {})
        if log is None:
            return  # overflowed: the whole tier is cleared on recovery
        for key in keys:
            log.pop(key, None)
            log[key] = None
        if len(log) > REPAIR_LIMIT:
            self._c.logs[slot] = None
            self.stats.add("repair_overflows")

    def _take_repairs(self, slot: str) -> list[str] | None:
        """A snapshot of the keys to repair on ``slot`` (``None``: clear the tier)."""
        with self._c.lock:
            log = self._c.logs.get(slot, {})
            return None if log is None else list(log)

    def _repaired(self, slot: str, keys: list[str] | None) -> None:
        """``keys`` (``None``: all) are repaired on ``slot``; keys whose write failed
        again meanwhile stay logged only if they were re-added after the snapshot (they
        are moved to the end: a re-add during the repair is replayed next round)."""
        with self._c.lock:
            if keys is None:
                self._c.logs[slot] = {}
            else:
                log = self._c.logs.get(slot)
                if log is not None:
                    for key in keys:
                        log.pop(key, None)
            if not self._c.logs.get(slot):
                self._c.outage.discard(slot)

    def _answers(self, slot: str, tier: Any) -> bool:
        """Whether tier ``slot`` has shown it answers again: its circuit breaker has a
        success on record since its last failure (a call of this process went through),
        or, for Redis, a heartbeat of the invalidation bus on the same server went round
        since the failure (then the breaker is closed at once, not after its cooldown). The
        repairer waits for that instead of paying timeouts of its own against a server
        that is still frozen; a tier without a breaker is simply tried."""
        breaker = getattr(tier, "breaker", None)
        if breaker is None or breaker.idle:
            return True
        bus = self.bus
        since = self._c.lost_at.get(slot, 0.0)
        if slot == REMOTE and bus is not None and self._bus_on_remote() and bus.heard_since(since):
            # The bus's heartbeat went round this very server since it was lost: it
            # answers, so its breaker need not wait for its cooldown to let us repair.
            breaker.reset()
            return True
        return False

    def _probe_due(self, slot: str) -> bool:
        """Whether the repairer may ping tier ``slot`` now (``repair_probe`` seconds
        after the failure and after its last ping), though no call of this process went
        through: so a process that writes nothing more still repairs what it left."""
        if self._c.repair_probe is None:
            return False
        now = time.monotonic()
        if now - self._c.probed.get(slot, 0.0) < self._c.repair_probe:
            return False
        self._c.probed[slot] = now
        return True

    def _pending_repairs(self) -> bool:
        return any(log is None or log for log in self._c.logs.values())

    def _start_repairer(self) -> None:
        """Start the background repairer (subclasses: a thread or a task)."""

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
        self,
        key: str,
        value: Any,
        ttl: float | None,
        now: float,
        fresh: Freshness = None,
        stamp: int | None = None,
    ) -> tuple[frozenset[str], bytes | None]:
        """The tier slots a write of ``key`` goes to, and its frame (``None`` when no tier
        below takes it: then nothing is encoded), sealed with version stamp ``stamp``
        (``None``: a new one)."""
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
            frame = self.codec.encode(key, seal(value, ttl, now, stamp=stamp))
        else:
            stale, delta, beta = fresh
            frame = self.codec.encode(
                key, seal(value, ttl, now, stale=stale, delta=delta, beta=beta, stamp=stamp)
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
        error = down.get(REMOTE)
        if self.bus is None or error is None:
            return None
        return error if self._bus_on_remote() else None

    def _bus_on_remote(self) -> bool:
        """Whether the invalidation bus runs on the Redis server of the remote tier."""
        bus, remote = self.bus, self.remote
        if bus is None or remote is None:
            return False
        config = getattr(remote, "config", None)
        same = config is not None and getattr(bus.tier, "config", None) == config
        return bus.tier is remote or same

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
