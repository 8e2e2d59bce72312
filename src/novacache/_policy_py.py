"""The reference of the ``"tinylfu"`` eviction policy: every decision, in plain Python.

This module is the specification that the compiled core (and the pure twin of
``LocalCache``) must copy decision for decision: the same trace gives the same hits,
misses and evictions. It holds no values, only keys and weights, so it doubles as a
trace simulator (:meth:`TinyLFUPolicy.access`). ``docs/policies.md`` explains the
design and the measurements; the rules are restated in each method's docstring.

The policy is W-TinyLFU (Einziger, Friedman, Manes 2017) with two changes measured to
matter on shifting popularity (see docs/policies.md):

* a **ghost** of recently rejected candidates: a key refused by the frequency filter
  and requested again soon after goes straight to the main space;
* an **adaptive protected segment**, sized the way ARC sizes its lists: a hit on an
  entry demoted from the protected segment grows it, a hit in the ghost shrinks it,
  each step weighted by the ratio of the two populations.

* a **window sized by a shadow LRU** (caches of 1,024 entries or more): an exact LRU
  over a hash-sampled slice of the keys (SHARDS-style) is compared with the cache on
  the same lookups; when LRU hits more, the window (1% at first) grows toward 99%,
  when the cache hits more it shrinks back. Caffeine's hill climber (the window resized
  on sampled hit rates alone) was measured and left out: it did not help shifting
  popularity and its sampling noise cost hits on small caches.

Structures (all sized from the capacity; ``n`` = capacity in entries):

* window (FIFO), probation (FIFO with lazy promotion), protected (CLOCK): disjoint;
  every entry is in one. A hit moves nothing: it adds one to the entry's *count*
  (hits since the entry was placed, up to 7). The count reaches the sketch when the
  entry is looked at (it leaves the window, is promoted, gets a second chance in
  protected, is weighed as a victim or leaves), and decides the moves then: a
  counted probation entry at the front is promoted instead of evicted, a counted
  protected entry at the front goes to the back instead of being demoted (lazy
  promotion, as S3-FIFO and SIEVE; docs/policies.md, phase 5).
* count-min sketch: 4-bit counters in 64-byte blocks of 128, a key's 4 counters in
  one block (one cache line per lookup in C); blocks = the power of two ``>= n / 8``:
  ``8 * n`` bytes. Conservative increment (only the counters equal to the minimum
  grow, up to 15); after ``10 * n`` increments every counter is halved (aging).
* ghost: one bucket per sketch block (C keeps it in the 64 bytes after the block's
  counters), a FIFO of at most ``k = min(15, ceil(max(16, n * 125 // 100) / blocks))``
  32-bit fingerprints of rejected candidates (duplicates are not re-added; ``k`` is 7
  to 10 for ``n`` from 100 to 100,000); a key's bucket is its sketch block. Rebuilt
  empty with the sketch.
* per entry: the queue it is in (2 bits), a ``demoted`` flag (1 bit) and the count
  (3 bits; C keeps two more flags in the same byte).
* shadow (``n >= 1024``): an LRU of at most 1,024 mixed hashes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "ADMIT_RANDOM_THRESHOLD",
    "LRUPolicy",
    "PolicyCounters",
    "TinyLFUPolicy",
    "fmix64",
    "simulate",
]

_M64 = (1 << 64) - 1
_M32 = 0xFFFFFFFF

#: A rejected candidate whose frequency is at least this is admitted with probability
#: 1/128 anyway (Caffeine's defence against an attacker who keeps victims' counters
#: high with colliding keys). The coin is a seeded xorshift32, so it is deterministic.
ADMIT_RANDOM_THRESHOLD = 6
_RNG_SEED = 0x2545F491

_WINDOW_PERCENT = 1  # minimum window = max(1, capacity * 1 // 100)
_WINDOW_MAX_PERCENT = 99
_SHADOW_MIN_ENTRIES = 1024  # smaller caches keep the minimum window
_SHADOW_MIN_SHIFT = 4  # at most 1 key in 16 is sampled
_SHADOW_MAX_CAP = 1024  # the shadow emulates the cache on at most this many entries
_SHADOW_PERIOD = 4  # sampled lookups per decision, per shadow entry
_SHADOW_MARGIN = 20  # per mille of the period's lookups: the difference that counts
_SHADOW_STEP = 5  # percent of the capacity the window moves by
_PROTECTED_INITIAL = 80  # percent of the main space
_PROTECTED_MIN = 5
_PROTECTED_MAX = 90
_DOWN_NUM, _DOWN_DEN = 13, 10  # a ghost hit moves the target 1.3x as far as a demoted hit
_Q = 256  # the protected target is kept in 1/256 units of weight
_COUNT_MAX = 7  # the hits an entry counts before they reach the sketch
_SAMPLE_FACTOR = 10  # sketch aging period: 10 increments per entry of capacity
_GHOST_PERCENT = 125  # the ghost's buckets keep about this percent of n fingerprints
_GHOST_BUCKET_MAX = 15  # fingerprints per bucket at most (C: 15 uint32 and a count)

_WINDOW, _PROBATION, _PROTECTED = 0, 1, 2


def fmix64(h: int) -> int:
    """MurmurHash3's 64-bit finaliser on ``h`` taken modulo 2**64 (C: ``uint64_t``)."""
    h &= _M64
    h = ((h ^ (h >> 33)) * 0xFF51AFD7ED558CCD) & _M64
    h = ((h ^ (h >> 33)) * 0xC4CEB9FE1A85EC53) & _M64
    return h ^ (h >> 33)


def _pow2_at_least(n: int) -> int:
    w = 1
    while w < n:
        w <<= 1
    return w


class _Node:
    """What the policy keeps per entry: queue, weight, ``demoted`` flag, mixed hash."""

    __slots__ = ("count", "demoted", "h", "queue", "weight")

    def __init__(self, queue: int, weight: int, h: int) -> None:
        self.queue = queue
        self.weight = weight
        self.demoted = False
        self.h = h
        self.count = 0


@dataclass
class PolicyCounters:
    """What a simulation counts (requests = hits + misses)."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    rejections: int = 0
    ghost_hits: int = 0
    demoted_hits: int = 0

    @property
    def miss_ratio(self) -> float:
        total = self.hits + self.misses
        return self.misses / total if total else 0.0


def _ghost_fp(h: int) -> int:
    """The ghost's fingerprint of mixed hash ``h``: its high 32 bits, 0 taken as 1 (C
    marks an empty slot of a bucket with 0)."""
    return (h >> 32) or 1


class _Sketch:
    """Count-min sketch of 4-bit counters in 64-byte blocks, conservative increment,
    halving; and the ghost, one bucket per block.

    A key's four counters share one block (one CPU cache line in C): 128 counters, the
    ``i``-th quarter of the block is row ``i``. The block is ``h mod blocks`` (low bits
    of the mixed hash); row ``i``'s counter is bits ``32 + 5*i`` .. ``36 + 5*i`` of
    ``h``. Blocks = the power of two ``>= entries / 8`` (at least 4): 16 counters,
    8 bytes, per entry.

    The ghost: block ``b``'s bucket holds the fingerprints (:func:`_ghost_fp`) of the
    rejected candidates whose block is ``b``, oldest first, at most ``ghost_k`` =
    ``min(15, ceil(max(16, entries * 125 // 100) / blocks))``; ``ghost_n`` counts them
    all. In C the bucket is the 64 bytes after the block's counters (a 128-byte slab,
    one cache-line pair), so a new sketch is a new, empty ghost.
    """

    __slots__ = ("adds", "block_mask", "ghost", "ghost_k", "ghost_n", "sample", "table")

    def __init__(self, entries: int) -> None:
        blocks = max(4, _pow2_at_least((max(1, entries) + 7) // 8))
        # One byte per counter here; C packs two per byte (values never exceed 15).
        self.table = bytearray(128 * blocks)
        self.block_mask = blocks - 1
        self.sample = max(16, _SAMPLE_FACTOR * entries)
        self.adds = 0
        ghost_max = max(16, entries * _GHOST_PERCENT // 100)
        self.ghost: list[list[int]] = [[] for _ in range(blocks)]
        self.ghost_k = min(_GHOST_BUCKET_MAX, -(-ghost_max // blocks))
        self.ghost_n = 0

    def ghost_take(self, h: int) -> bool:
        """A ghost hit: ``True``, and ``h``'s fingerprint leaves its bucket (the newer
        ones move up), when it is there."""
        bucket = self.ghost[h & self.block_mask]
        fp = _ghost_fp(h)
        if fp not in bucket:
            return False
        bucket.remove(fp)
        self.ghost_n -= 1
        return True

    def ghost_add(self, h: int) -> None:
        """A rejected candidate: its fingerprint, unless it is there, to the end of its
        bucket; a bucket holding ``ghost_k`` drops its oldest first."""
        bucket = self.ghost[h & self.block_mask]
        fp = _ghost_fp(h)
        if fp in bucket:
            return
        if len(bucket) >= self.ghost_k:
            del bucket[0]
        else:
            self.ghost_n += 1
        bucket.append(fp)

    def _slots(self, h: int) -> tuple[int, int, int, int]:
        base = (h & self.block_mask) << 7
        c = h >> 32
        return (
            base + (c & 31),
            base + 32 + ((c >> 5) & 31),
            base + 64 + ((c >> 10) & 31),
            base + 96 + ((c >> 15) & 31),
        )

    def frequency(self, h: int) -> int:
        """The estimate: the minimum of the key's 4 counters (0..15)."""
        a, b, c, d = self._slots(h)
        t = self.table
        return min(t[a], t[b], t[c], t[d])

    def increment(self, h: int) -> None:
        """Add one to the counters that equal the minimum, unless it is 15; count the
        increment, and halve every counter once ``sample`` increments were counted."""
        a, b, c, d = self._slots(h)
        t = self.table
        low = min(t[a], t[b], t[c], t[d])
        if low >= 15:
            return
        if t[a] == low:
            t[a] = low + 1
        if t[b] == low:
            t[b] = low + 1
        if t[c] == low:
            t[c] = low + 1
        if t[d] == low:
            t[d] = low + 1
        self.adds += 1
        if self.adds >= self.sample:
            self.age()

    def add(self, h: int, n: int) -> None:
        """``n`` increments at once: every counter below ``min(low + n, 15)`` rises to
        it (``low`` the minimum); the increments counted are the ones below 15."""
        a, b, c, d = self._slots(h)
        t = self.table
        low = min(t[a], t[b], t[c], t[d])
        top = min(low + n, 15)
        if top <= low:
            return
        for i in (a, b, c, d):
            if t[i] < top:
                t[i] = top
        self.adds += top - low
        if self.adds >= self.sample:
            self.age()

    def age(self) -> None:
        """Halve every counter; ``adds`` becomes ``(adds - odd // 4) // 2`` where ``odd``
        counts the counters that were odd (the increments the halving truncated). The
        ghost stays."""
        t = self.table
        odd = sum(v & 1 for v in t)
        t[:] = bytes(v >> 1 for v in t)
        self.adds = (self.adds - (odd >> 2)) >> 1


class TinyLFUPolicy:
    """Adaptive W-TinyLFU over keys with weights; ``capacity`` is the most total weight.

    ``entries`` is the number of entries the sketch and ghost are sized for: the
    capacity when every weight is 1 (the default), else an estimate (a cache bounded by
    bytes; the sketch then grows when more entries than that are resident).

    Use :meth:`access` to replay a trace (lookup, insert on a miss), or the primitives
    the cache calls: :meth:`hit` / :meth:`insert` / :meth:`update` / :meth:`remove`.
    """

    def __init__(self, capacity: int, *, entries: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._entries_hint = capacity if entries is None else max(1, entries)
        self._sketch = _Sketch(self._entries_hint)
        self._nodes: dict[Hashable, _Node] = {}
        self._queues: tuple[OrderedDict[Hashable, None], ...] = (
            OrderedDict(),
            OrderedDict(),
            OrderedDict(),
        )
        self._weights = [0, 0, 0]
        self.window_max = max(1, capacity * _WINDOW_PERCENT // 100)
        main = capacity - self.window_max
        self._protected_q = main * _Q * _PROTECTED_INITIAL // 100
        self._demoted = 0  # resident entries with the demoted flag
        self._rng = _RNG_SEED
        self.counters = PolicyCounters()
        self._window_min = self.window_max
        # The shadow: an exact LRU over a hash-sampled subset of the keys, sized like the
        # cache scaled by the sampling rate (SHARDS), fed every lookup of a sampled key.
        n = self._entries_hint
        self._shadow_limit = 0  # a key is sampled iff (h >> 56) < limit; 0: no shadow
        self._shadow_cap = 0
        if n >= _SHADOW_MIN_ENTRIES:
            shift = _SHADOW_MIN_SHIFT
            while shift < 8 and (n >> shift) > _SHADOW_MAX_CAP:
                shift += 1
            self._shadow_limit = 256 >> shift
            self._shadow_cap = n >> shift
        self._shadow: OrderedDict[int, None] = OrderedDict()
        self._shadow_lookups = self._shadow_hits = self._sampled_hits = 0

    # ----------------------------------------------------------------- introspection
    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, key: object) -> bool:
        return key in self._nodes

    def __iter__(self) -> Iterator[Hashable]:
        return self.keys()

    @property
    def weight(self) -> int:
        """Total weight of the resident entries."""
        return sum(self._weights)

    @property
    def protected_max(self) -> int:
        """The protected segment's current target weight (adapted)."""
        return self._protected_q // _Q

    def queue_of(self, key: Hashable) -> str:
        """``"window"``, ``"probation"`` or ``"protected"`` (KeyError when absent)."""
        return ("window", "probation", "protected")[self._nodes[key].queue]

    def keys(self) -> Iterator[Hashable]:
        """Resident keys: window, probation, protected, each least recent first."""
        for q in self._queues:
            yield from q

    def frequency(self, key: Hashable) -> int:
        """The sketch's estimate for ``key`` (0..15), counting a resident key's hits
        that have not reached the sketch yet (what the next eviction will see)."""
        node = self._nodes.get(key)
        low = self._sketch.frequency(fmix64(hash(key)))
        return low if node is None else min(15, low + node.count)

    def check(self) -> None:
        """Assert the invariants (tests): queues and weights agree, weight <= capacity."""
        seen = 0
        for qi, q in enumerate(self._queues):
            total = 0
            for k in q:
                node = self._nodes[k]
                assert node.queue == qi
                total += node.weight
                seen += 1
            assert total == self._weights[qi]
        assert seen == len(self._nodes)
        assert self.weight <= self.capacity
        assert self._demoted == sum(1 for n in self._nodes.values() if n.demoted)
        assert all(not self._nodes[k].demoted for k in self._queues[_WINDOW])
        sk = self._sketch
        assert all(len(b) <= sk.ghost_k and len(set(b)) == len(b) for b in sk.ghost)
        assert sum(len(b) for b in sk.ghost) == sk.ghost_n

    # -------------------------------------------------------------------- primitives
    def hit(self, key: Hashable) -> bool:
        """A lookup: ``True`` when ``key`` is resident (a hit), else False.

        Rules: the shadow sees the lookup first (when it samples the key). A hit moves
        nothing (:meth:`_touch`): a *demoted* entry loses its flag and grows the
        protected target (:meth:`_adapt`), and the entry's count grows by one unless
        it is 7; the sketch and the queues see the count later (:meth:`_flush`,
        :meth:`_settle`, :meth:`_demote_overflow`).
        """
        node = self._nodes.get(key)
        if self._shadow_limit:
            h = fmix64(hash(key)) if node is None else node.h
            if (h >> 56) < self._shadow_limit:
                self._shadow_lookup(h, node is not None)
        if node is None:
            return False
        self._touch(key, node)
        return True

    def lookup_miss(self, key_hash: int) -> None:
        """A lookup of a key that is not resident, given its ``hash()``: what
        :meth:`hit` does for such a key (the shadow may sample it), without the key."""
        if self._shadow_limit:
            h = fmix64(key_hash)
            if (h >> 56) < self._shadow_limit:
                self._shadow_lookup(h, False)

    def _touch(self, key: Hashable, node: _Node) -> None:
        if node.demoted:
            node.demoted = False
            self._demoted -= 1
            self.counters.demoted_hits += 1
            self._adapt(node.weight, grow=True)
        if node.count < _COUNT_MAX:
            node.count += 1

    def _flush(self, node: _Node) -> None:
        """The entry's count goes to the sketch (:meth:`_Sketch.add`) and restarts at 0:
        when it leaves the window, is promoted, gets a second chance in protected, is
        weighed as a victim or a candidate (:meth:`_freq`), or leaves the cache."""
        if node.count:
            self._sketch.add(node.h, node.count)
            node.count = 0

    def _freq(self, node: _Node) -> int:
        self._flush(node)
        return self._sketch.frequency(node.h)

    def _promote(self, key: Hashable, node: _Node) -> None:
        # Hit since it was placed, so not demoted (a hit clears the flag).
        self._flush(node)
        self._move(key, node, _PROTECTED)

    def _settle(self, pending: set[Hashable]) -> None:
        """Lazy promotion: while the first probation entry that is not pending has a
        count (it was hit since it was placed), it goes to the protected MRU end
        (:meth:`_promote`); so the first victim is an entry that was not hit.
        Protected's overflow is demoted at the end of the eviction."""
        prob = self._queues[_PROBATION]
        while True:
            for k in prob:
                if k not in pending:
                    break
            else:
                return
            node = self._nodes[k]
            if not node.count:
                return
            self._promote(k, node)

    def insert(self, key: Hashable, weight: int = 1) -> list[Hashable]:
        """Add a key that is not resident; return the keys evicted (maybe ``key``).

        Rules: the sketch counts the insert. If the key's fingerprint is in its ghost
        bucket, it leaves the bucket, shrinks the protected target (:meth:`_adapt`), the entry
        goes to the probation MRU end and protected LRU entries are demoted while the
        protected weight exceeds the new target; otherwise it goes to the window MRU
        end. Then :meth:`_evict`.
        """
        if key in self._nodes:
            raise KeyError(f"{key!r} is resident: use update()")
        if weight < 0 or weight > self.capacity:
            raise ValueError(f"weight must be in [0, {self.capacity}]")
        h = fmix64(hash(key))
        self._sketch.increment(h)
        if self._sketch.ghost_take(h):
            self.counters.ghost_hits += 1
            self._adapt(weight, grow=False)
            node = _Node(_PROBATION, weight, h)
        else:
            node = _Node(_WINDOW, weight, h)
        self._nodes[key] = node
        self._queues[node.queue][key] = None
        self._weights[node.queue] += weight
        if node.queue == _PROBATION:
            self._demote_overflow()
        evicted = self._evict(key if node.queue == _PROBATION else None)
        self._grow_sketch_if_needed(len(self._nodes))
        return evicted

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        """A write to a resident key: a hit's moves (not a lookup: the shadow does not
        see it), then the new weight; evict."""
        node = self._nodes[key]
        if weight < 0 or weight > self.capacity:
            raise ValueError(f"weight must be in [0, {self.capacity}]")
        self._touch(key, node)
        self._weights[node.queue] += weight - node.weight
        node.weight = weight
        return self._evict(None)

    def remove(self, key: Hashable) -> bool:
        """Drop a key (delete, expiry): no ghost, no adaptation, no eviction."""
        node = self._nodes.pop(key, None)
        if node is None:
            return False
        self._flush(node)
        del self._queues[node.queue][key]
        self._weights[node.queue] -= node.weight
        if node.demoted:
            self._demoted -= 1
        return True

    def access(self, key: Hashable, weight: int = 1) -> bool:
        """Cache-aside replay of one request: a lookup, and an insert on a miss."""
        c = self.counters
        if self.hit(key):
            c.hits += 1
            return True
        c.misses += 1
        if weight <= self.capacity:
            self.insert(key, weight)
        return False

    def replay(self, keys: Iterable[Hashable]) -> PolicyCounters:
        """:meth:`access` every key (weight 1); return the counters."""
        access = self.access
        for k in keys:
            access(k)
        return self.counters

    # -------------------------------------------------------------------- internals
    def _grow_sketch_if_needed(self, resident: int) -> None:
        # Only a weight-bounded cache can hold more entries than the sketch was sized
        # for: then the sketch is rebuilt (empty) for twice as many, and with it the
        # ghost (its buckets are the sketch's blocks').
        if resident > self._entries_hint:
            self._entries_hint = _pow2_at_least(2 * resident)
            self._sketch = _Sketch(self._entries_hint)

    def _move(self, key: Hashable, node: _Node, to: int) -> None:
        del self._queues[node.queue][key]
        self._weights[node.queue] -= node.weight
        node.queue = to
        self._queues[to][key] = None
        self._weights[to] += node.weight

    def _demote_overflow(self) -> None:
        """While protected outweighs its target, its front entry (the oldest placed):
        with a count, flushed and to the protected back (a second chance, CLOCK);
        else to the probation MRU end with the demoted flag."""
        prot = self._queues[_PROTECTED]
        limit = self._protected_q // _Q
        while self._weights[_PROTECTED] > limit and prot:
            k = next(iter(prot))
            node = self._nodes[k]
            if node.count:
                self._flush(node)
                prot.move_to_end(k)
                continue
            self._move(k, node, _PROBATION)
            if not node.demoted:
                node.demoted = True
                self._demoted += 1

    def _adapt(self, weight: int, *, grow: bool) -> None:
        """Move the protected target, ARC style (integer arithmetic, 1/256 units).

        ``scale = min(256, entries // 2)`` (``entries`` = what the sketch is sized for,
        so a small cache takes fractional steps); ``G`` = ghost length, ``D`` = resident
        demoted entries. A demoted hit adds ``weight * scale * max(1, G / D)``; a ghost
        hit subtracts ``1.3 * weight * scale * max(1, D / G)``; the ratio is computed as
        ``x * G // D`` only when ``G > D`` (resp. ``D > G``). The target stays within
        5%..90% of the main space (capacity - window).
        """
        scale = max(1, min(_Q, self._entries_hint // 2))
        g = self._sketch.ghost_n
        d = self._demoted
        if grow:
            step = weight * scale
            if g > d:
                step = step * g // max(1, d)
            self._protected_q += step
        else:
            step = weight * scale * _DOWN_NUM // _DOWN_DEN
            if d > g:
                step = step * d // max(1, g)
            self._protected_q -= step
        self._clamp_protected()

    def _shadow_lookup(self, h: int, main_hit: bool) -> None:
        """Feed the shadow one sampled lookup; every ``4 * shadow_cap`` of them, move the
        window: grow it by 5% of the capacity when the shadow LRU hit more than the
        cache on the sampled lookups by over 2% of them, shrink it by as much (not
        below its minimum) when the cache hit more by over 2%."""
        sh = self._shadow
        if h in sh:
            sh.move_to_end(h)
            self._shadow_hits += 1
        else:
            sh[h] = None
            if len(sh) > self._shadow_cap:
                sh.popitem(last=False)
        self._sampled_hits += main_hit
        self._shadow_lookups += 1
        if self._shadow_lookups < _SHADOW_PERIOD * self._shadow_cap:
            return
        margin = self._shadow_lookups * _SHADOW_MARGIN // 1000
        step = max(1, self.capacity * _SHADOW_STEP // 100)
        if self._shadow_hits > self._sampled_hits + margin:
            self.window_max = min(
                max(1, self.capacity * _WINDOW_MAX_PERCENT // 100), self.window_max + step
            )
        elif self._sampled_hits > self._shadow_hits + margin:
            self.window_max = max(self._window_min, self.window_max - step)
        self._clamp_protected()
        self._shadow_lookups = self._shadow_hits = self._sampled_hits = 0

    def _clamp_protected(self) -> None:
        main = self.capacity - self.window_max
        lo = main * _Q * _PROTECTED_MIN // 100
        hi = main * _Q * _PROTECTED_MAX // 100
        self._protected_q = min(hi, max(lo, self._protected_q))

    def _admit_random(self) -> bool:
        x = self._rng
        x ^= (x << 13) & _M32
        x ^= x >> 17
        x ^= (x << 5) & _M32
        self._rng = x
        return (x & 127) == 0

    def _reject(self, key: Hashable, evicted: list[Hashable]) -> None:
        node = self._nodes[key]
        self.remove(key)
        evicted.append(key)
        self.counters.rejections += 1
        self._sketch.ghost_add(node.h)

    def _evict_one(self, key: Hashable, evicted: list[Hashable]) -> None:
        self.remove(key)
        evicted.append(key)
        self.counters.evictions += 1

    def _victims(self, pending: set[Hashable], excess: int) -> list[Hashable]:
        """Main entries to evict for ``excess`` weight, probation's front first, then
        protected's front, skipping pending candidates; fewer if main runs out."""
        out: list[Hashable] = []
        got = 0
        for qi in (_PROBATION, _PROTECTED):
            for k in self._queues[qi]:
                if got >= excess:
                    return out
                if k in pending:
                    continue
                out.append(k)
                got += self._nodes[k].weight
        return out

    def _evict(self, direct: Hashable | None) -> list[Hashable]:
        """Bring the total weight back to the capacity.

        1. While the window's weight exceeds its maximum, its oldest entry (a FIFO)
           is flushed and moves to the probation MRU end as a *candidate*. An insert
           that came through the ghost (``direct``) is no candidate: it is admitted,
           and is never a victim of its own insert.
        2. While the total weight exceeds the capacity: :meth:`_settle` (lazy
           promotion), then the newest candidate faces the victims, the main entries
           (probation's front first, then protected's, never a candidate) whose
           weights cover the excess. It is admitted when its frequency (after
           :meth:`_flush`: the victims' first, then its own) is above every
           victim's (or, if not, when it is at least ADMIT_RANDOM_THRESHOLD and the
           1/128 coin says so): the victims are evicted. Otherwise it is rejected:
           evicted, fingerprint to the ghost. With no candidate, victims are evicted;
           with no victim, the candidate is rejected; with neither, the window's
           oldest entry is evicted.
        3. Protected's overflow is demoted (:meth:`_demote_overflow`).
        """
        evicted: list[Hashable] = []
        window = self._queues[_WINDOW]
        pending: list[Hashable] = []
        while self._weights[_WINDOW] > self.window_max and window:
            k = next(iter(window))
            node = self._nodes[k]
            self._flush(node)
            self._move(k, node, _PROBATION)
            pending.append(k)
        pending_set = set(pending)
        if direct is not None:
            pending_set.add(direct)
        while self.weight > self.capacity:
            self._settle(pending_set)
            excess = self.weight - self.capacity
            cand = pending[-1] if pending else None
            victims = self._victims(pending_set, excess)
            if cand is None:
                if victims:
                    for v in victims:
                        self._evict_one(v, evicted)
                elif window:
                    self._evict_one(next(iter(window)), evicted)
                else:  # only ``direct`` is left, heavier than the rest: it goes
                    assert direct is not None
                    pending_set.discard(direct)
                    self._evict_one(direct, evicted)
                continue
            admit = False
            if victims:
                vf = max(self._freq(self._nodes[v]) for v in victims)
                cf = self._freq(self._nodes[cand])
                admit = cf > vf or (cf >= ADMIT_RANDOM_THRESHOLD and self._admit_random())
            if admit:
                for v in victims:
                    self._evict_one(v, evicted)
            else:
                pending.pop()
                pending_set.discard(cand)
                self._reject(cand, evicted)
        self._demote_overflow()
        return evicted


class LRUPolicy:
    """Exact LRU over keys with weights (``LocalCache``'s policy), for the same replays."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._q: OrderedDict[Hashable, int] = OrderedDict()
        self.weight = 0
        self.counters = PolicyCounters()

    def __len__(self) -> int:
        return len(self._q)

    def __contains__(self, key: object) -> bool:
        return key in self._q

    def access(self, key: Hashable, weight: int = 1) -> bool:
        """Lookup; on a miss insert at the MRU end and evict from the LRU end."""
        q = self._q
        if key in q:
            q.move_to_end(key)
            self.counters.hits += 1
            return True
        self.counters.misses += 1
        if weight > self.capacity:
            return False
        q[key] = weight
        self.weight += weight
        while self.weight > self.capacity:
            _, w = q.popitem(last=False)
            self.weight -= w
            self.counters.evictions += 1
        return False

    def replay(self, keys: Iterable[Hashable]) -> PolicyCounters:
        """:meth:`access` every key (weight 1); return the counters."""
        access = self.access
        for k in keys:
            access(k)
        return self.counters


def simulate(policy: str, capacity: int, keys: Iterable[Hashable]) -> PolicyCounters:
    """Replay ``keys`` through ``policy`` (``"lru"`` or ``"tinylfu"``) of ``capacity``."""
    if policy == "lru":
        return LRUPolicy(capacity).replay(keys)
    if policy == "tinylfu":
        return TinyLFUPolicy(capacity).replay(keys)
    raise ValueError(f"unknown policy {policy!r}; choose lru or tinylfu")
