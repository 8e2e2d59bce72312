"""LocalCache(policy="tinylfu"): both twins make the reference's decisions
(``novacache._policy_py.TinyLFUPolicy``) and keep LocalCache's contract (weights, TTL,
pickling, memoize, the manager's L1). The policy's own behaviours are tested on the
reference (tests/test_policy_ref.py); here, that the caches follow it."""

from __future__ import annotations

import copy
import pickle
import random
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _helpers import FakeTimer
from _isolate import run_isolated
from novacache._policy_py import TinyLFUPolicy
from novacache.benchmark.traces.generate import TraceSpec, generate
from novacache.errors import ConfigurationError

TRACES = [
    TraceSpec("zipf-0.9", "zipf", 0.9, n_requests=40_000, n_objects=6_000, seed=3),
    TraceSpec("zipf-0.7", "zipf", 0.7, n_requests=40_000, n_objects=6_000, seed=4),
    TraceSpec("scan", "scan", 0.9, n_requests=40_000, n_objects=6_000, scan_length=60),
    TraceSpec("shift", "shift", 0.9, n_requests=40_000, n_objects=6_000, shift_every=6_000),
    TraceSpec("loop", "loop", 0.9, n_requests=40_000, n_objects=6_000, loop_size=300),
]


def _weigh(key: Any, value: Any) -> int:
    return int(value)


@pytest.mark.parametrize("spec", TRACES, ids=lambda s: s.name)
@pytest.mark.parametrize("size", [7, 60, 600, 2_000])
def test_cache_aside_misses_are_the_references(
    impl: ModuleType, spec: TraceSpec, size: int
) -> None:
    # Miss for miss: the same request hits in the cache and in the reference. 2,000
    # entries sample the shadow (>= 1,024), so the window adapts too.
    keys = list(generate(spec))
    ref = TinyLFUPolicy(size)
    cache = impl.LocalCache(size, policy="tinylfu")
    get = cache.get
    for i, key in enumerate(keys):
        hit = get(key) is not None
        if not hit:
            cache[key] = key + 1  # never None
        assert hit == ref.access(key), (i, key)
    assert cache.stats.misses == ref.counters.misses
    assert cache.stats.hits == ref.counters.hits
    assert cache.keys() == list(ref.keys())
    assert len(cache) == len(ref) <= size


#: Traces, their length and a size on which the compiled cache left the reference when
#: the frequency it remembers for a victim (weighed again at the next insert if the
#: candidate is rejected; see _sk_frequency_memo) outlived a change to the counters of
#: its block: another key's increment (at request 545 of the first), a flush of an
#: entry's hits (13,537 of the second). Halving the counters is caught by many.
STALE_FREQUENCY_CASES = [
    (TraceSpec("zipf-0.7", "zipf", 0.7, n_requests=20_000, n_objects=2_000, seed=5), 1_000, 50),
    (TraceSpec("zipf-1.1", "zipf", 1.1, n_requests=20_000, n_objects=2_000, seed=1), 14_000, 3),
]


def _replay_beside_the_reference(
    impl: ModuleType, keys: list[Any], size: int, *, order_every: int = 0
) -> tuple[Any, TinyLFUPolicy]:
    """Replay ``keys`` cache-aside on a tinylfu LocalCache of ``size`` and on the
    reference, asserting that each request hits in both or in neither (and, every
    ``order_every`` requests, that the resident keys stand in the same order)."""
    ref = TinyLFUPolicy(size)
    cache = impl.LocalCache(size, policy="tinylfu")
    for i, key in enumerate(keys):
        hit = cache.get(key) is not None
        if not hit:
            cache[key] = 1
        assert hit == ref.access(key), (i, key)
        if order_every and i % order_every == 0:
            assert cache.keys() == list(ref.keys()), i
    return cache, ref


@pytest.mark.parametrize(("spec", "length", "size"), STALE_FREQUENCY_CASES)
def test_a_victim_weighed_again_is_weighed_by_its_counters_as_they_are(
    impl: ModuleType, spec: TraceSpec, length: int, size: int
) -> None:
    cache, ref = _replay_beside_the_reference(impl, generate(spec).tolist()[:length], size)
    assert cache.keys() == list(ref.keys())


@pytest.mark.parametrize("spec", TRACES[:2] + TRACES[3:4], ids=lambda s: s.name)
@pytest.mark.parametrize("size", [2, 40, 1_100])
def test_the_order_of_the_queues_is_the_references_all_along(
    impl: ModuleType, spec: TraceSpec, size: int
) -> None:
    # The resident keys in order (window, probation, protected), compared every few
    # requests: an insert's candidate and victim, a ghost hit's place in probation
    # (before the entries its demotions move there) and the promotions must all match
    # the reference's at every moment, not only at the end.
    keys = list(generate(spec))[:12_000]
    _, ref = _replay_beside_the_reference(impl, keys, size, order_every=5)
    assert ref.counters.ghost_hits > 0
    assert ref.counters.demoted_hits > 0


@pytest.mark.parametrize("size", [3, 20, 200])
def test_rejected_keys_coming_back_follow_the_reference(impl: ModuleType, size: int) -> None:
    # Batches of new keys (rejected: their fingerprints go to the ghost) read again
    # while their fingerprints are there (ghost hits: members leave the ghost out of
    # order), between reads of hot keys: the ghost's membership, and so every
    # decision, must stay the reference's through its churn.
    rng = random.Random(size)
    ref = TinyLFUPolicy(size)
    cache = impl.LocalCache(size, policy="tinylfu")
    hot = list(range(size))
    fresh = 10**6
    for _ in range(400):
        batch = list(range(fresh, fresh + 12))
        fresh += 12
        hits = [rng.choice(hot) for _ in range(20)]
        for key in hits + batch + hits[:10] + batch[::-1] + batch[:5]:
            hit = cache.get(key) is not None
            if not hit:
                cache[key] = 1
            assert hit == ref.access(key), key
        assert cache.keys() == list(ref.keys())
    assert ref.counters.ghost_hits > 1_000


#: An int key whose mixed hash is 0x100000A00: fingerprint 1, sketch block 0 for any
#: cache of up to 2,560 entries. Key 0's mixed hash is 0: fingerprint 0, block 0.
_FP_ONE_BLOCK_ZERO = 828_709_296_853_710_377


def check_fingerprint_0(impl: ModuleType) -> None:
    """The body of ``test_fingerprint_0_is_kept_as_1_in_both_twins`` (run in a child)."""
    # An empty slot of a ghost bucket is 0 in C, so a fingerprint of 0 is stored as 1:
    # key 0, rejected, leaves 1 in bucket 0, and a key never seen whose fingerprint is
    # 1 and whose block is 0 then comes in through the ghost, in both twins as in the
    # reference; key 0, back, finds its record taken.
    from novacache._policy_py import fmix64

    assert fmix64(0) == 0
    assert fmix64(_FP_ONE_BLOCK_ZERO) == 0x100000A00
    ref = TinyLFUPolicy(100)
    cache = impl.LocalCache(100, policy="tinylfu")
    hot = list(range(1_000, 1_100))
    for key in [*hot, *hot, *hot, 0, 7_000, 7_001, _FP_ONE_BLOCK_ZERO, 0]:
        hit = cache.get(key) is not None
        if not hit:
            cache[key] = 1
        assert hit == ref.access(key), key
        assert cache.keys() == list(ref.keys()), key
        if key == _FP_ONE_BLOCK_ZERO:
            assert ref.queue_of(key) == "probation"  # a ghost hit
            assert ref.counters.ghost_hits == 1
    assert ref.queue_of(0) == "window"
    assert ref.counters.ghost_hits == 1


def test_fingerprint_0_is_kept_as_1_in_both_twins(impl: ModuleType) -> None:
    # In a child process: a C core that stored the fingerprint 0 as is wrote out of
    # its bucket's bounds and crashed the interpreter, which would end the whole run.
    run_isolated(
        f"""
        import importlib
        import test_policy_cache as t
        t.check_fingerprint_0(importlib.import_module({impl.__name__!r}))
        """
    ).check()


@settings(max_examples=40, deadline=None)
@given(
    by_weight=st.booleans(),
    capacity=st.sampled_from([1, 3, 20, 150]),
    ops=st.lists(
        st.tuples(st.sampled_from("gssdpk"), st.integers(0, 40), st.integers(0, 60)),
        max_size=300,
    ),
)
def test_any_operations_follow_the_reference(
    impl: ModuleType, by_weight: bool, capacity: int, ops: list[tuple[str, int, int]]
) -> None:
    # Lookups, writes (new keys and overwrites, any weight), deletes, pops and
    # popitems: the resident keys, in order, are the reference's after every step.
    if by_weight:
        ref = TinyLFUPolicy(capacity, entries=min(capacity, 1024))
        cache = impl.LocalCache(maxbytes=capacity, weigher=_weigh, policy="tinylfu")
    else:
        ref = TinyLFUPolicy(capacity)
        cache = impl.LocalCache(capacity, policy="tinylfu")
    for op, key, weight in ops:
        w = min(weight, capacity) if by_weight else 1
        if op == "g":
            assert (cache.get(key) is not None) == ref.hit(key)
        elif op == "s":
            cache[key] = w
            if key in ref:
                ref.update(key, w)
            else:
                ref.insert(key, w)
        elif op == "d":
            assert cache.delete_many([key]) == int(ref.remove(key))
        elif op == "p":
            assert (cache.pop(key, None) is not None) == ref.remove(key)
        elif len(ref):
            first = next(iter(ref.keys()))
            assert cache.popitem()[0] == first
            ref.remove(first)
        assert cache.keys() == list(ref.keys())
        ref.check()
    assert (cache.currbytes if by_weight else len(cache)) == ref.weight


@pytest.mark.parametrize("capacity", [50, 2_000])
def test_runs_of_hits_are_applied_before_anything_that_follows(
    impl: ModuleType, timer: FakeTimer, capacity: int
) -> None:
    # A hit only counts on its entry (up to 7); the count reaches the sketch and the
    # queues later (lazy promotion): runs of up to 200 hits on resident keys, then an
    # operation that must see every one of them (a miss, an insert, an overwrite, a
    # delete or a pop of a key just hit, popitem, the order of keys(), pickling, an
    # expiry found by a lookup). The resident keys, in order, are the reference's
    # after each. 2,000 entries sample the shadow, which sees hits and misses in
    # their order.
    rng = random.Random(capacity)
    cache = impl.LocalCache(capacity, timer=timer, policy="tinylfu")
    ref = TinyLFUPolicy(capacity)
    fresh = iter(range(10**6, 2 * 10**6))
    for _ in range(capacity * 3):
        key = int(rng.paretovariate(0.7)) % (capacity * 2)
        if cache.get(key) is None:
            cache[key] = 1
        if not ref.hit(key):
            ref.insert(key)
    ops = ["miss", "insert", "overwrite", "delete", "pop", "popitem", "keys", "pickle", "expire"]
    for step in range(200):
        while len(ref) < capacity * 3 // 4:  # deletes and pops outnumber the inserts
            key = next(fresh)
            cache[key] = 1
            ref.insert(key)
        resident = list(ref.keys())
        run = [rng.choice(resident) for _ in range(rng.randrange(200))]
        for key in run:
            value = cache[key] if step % 2 else cache.get(key)
            assert value == 1
            assert ref.hit(key)
        op = ops[step % len(ops)]
        target = run[-1] if run else resident[0]
        if op == "miss":
            key = next(fresh)
            assert cache.get(key) is None
            assert not ref.hit(key)
        elif op == "insert":
            key = next(fresh)
            cache[key] = 1
            ref.insert(key)
        elif op == "overwrite":
            cache[target] = 1
            ref.update(target, 1)
        elif op == "delete":
            del cache[target]
            ref.remove(target)
        elif op == "pop":
            assert cache.pop(target) == 1
            ref.remove(target)
        elif op == "popitem":
            first = next(iter(ref.keys()))
            assert cache.popitem() == (first, 1)
            ref.remove(first)
        elif op == "pickle":
            assert sorted(pickle.loads(pickle.dumps(cache)).keys()) == sorted(ref.keys())
        elif op == "expire":
            cache.set(target, 1, ttl=1)  # an overwrite, then more hits, then it expires
            ref.update(target, 1)
            for _ in range(100):
                key = rng.choice(resident)
                if key in ref:
                    assert cache.get(key) == 1
                    assert ref.hit(key)
            timer.tick(2)
            assert cache.get(target) is None  # found expired: removed, a counted miss
            ref.remove(target)
            assert not ref.hit(target)
        assert cache.keys() == list(ref.keys()), (step, op)
    ref.check()


@pytest.mark.parametrize("capacity", [100, 3_000])
def test_a_cache_that_fills_slowly_decides_as_the_reference(
    impl: ModuleType, capacity: int
) -> None:
    # Until its first eviction the compiled cache logs its sketch's changes instead of
    # applying them (a ring of 8 records a sketch block, its oldest applied when it is
    # full), drains the log from three quarters full, and applies what is left when
    # full; decisions must not change. Here the ring wraps many times (hits, deletes
    # and re-inserts of keys that fit in half the cache: every delete and every
    # re-insert is a change), then the cache fills and evicts: each request hits in
    # both or in neither, and the resident keys stand in the same order.
    rng = random.Random(capacity)
    cache = impl.LocalCache(capacity, policy="tinylfu")
    ref = TinyLFUPolicy(capacity)

    def access(key: int) -> None:
        hit = cache.get(key) is not None
        if not hit:
            cache[key] = 1
        assert hit == ref.access(key), key

    for _ in range(capacity * 20):
        key = rng.randrange(capacity // 2)
        if rng.random() < 0.2 and key in ref:
            del cache[key]
            assert ref.remove(key)
        else:
            access(key)
    assert ref.counters.evictions == 0
    assert cache.keys() == list(ref.keys())
    for step in range(capacity * 10):
        access(int(capacity * 3 * rng.random() ** 2))  # skewed to the small keys
        if step % 50 == 0:
            assert cache.keys() == list(ref.keys()), step
    assert ref.counters.evictions + ref.counters.rejections > capacity
    assert cache.keys() == list(ref.keys())


def test_the_twins_agree_on_a_weighted_trace() -> None:
    # A byte-bounded cache with many more entries than its first sketch is sized for
    # (1,024): the sketch and the ghost grow in both twins at the same points.
    from novacache import _core, _local_py

    rng = random.Random(5)
    caches = [
        m.LocalCache(maxbytes=40_000, weigher=_weigh, policy="tinylfu") for m in (_core, _local_py)
    ]
    for _ in range(40_000):
        key = int(rng.paretovariate(0.6)) % 20_000
        weight = rng.choice([0, 1, 2, 5, 40, 900])
        hits = [c.get(key) is not None for c in caches]
        assert hits[0] == hits[1]
        if not hits[0]:
            for c in caches:
                c[key] = weight
    assert caches[0].keys() == caches[1].keys()
    assert caches[0].stats == caches[1].stats


def test_a_huge_entry_does_not_flush_hot_small_ones(impl: ModuleType) -> None:
    cache = impl.LocalCache(maxbytes=10_000, weigher=_weigh, policy="tinylfu")
    hot = list(range(100))
    for k in hot:
        cache[k] = 90
    for _ in range(5):
        for k in hot:
            assert cache.get(k) == 90
    cache["huge"] = 6_000  # fits maxbytes, but only by evicting hot entries
    assert "huge" not in cache
    assert all(k in cache for k in hot)
    assert cache.currbytes == 9_000
    lru = impl.LocalCache(maxbytes=10_000, weigher=_weigh)
    for k in hot:
        lru[k] = 90
    lru["huge"] = 6_000
    assert "huge" in lru
    assert sum(k in lru for k in hot) < 50


def test_lru_stays_the_default_and_exact(impl: ModuleType) -> None:
    cache = impl.LocalCache(3)
    assert cache.policy == "lru"
    for k in "abc":
        cache[k] = k
    cache.get("a")
    cache["d"] = "d"
    assert cache.keys() == ["c", "a", "d"]
    assert impl.LocalCache(3, policy="lru").policy == "lru"


def test_bad_policy_arguments(impl: ModuleType) -> None:
    with pytest.raises(ConfigurationError, match="unknown policy"):
        impl.LocalCache(10, policy="lfu")
    with pytest.raises(TypeError, match="policy must be a str"):
        impl.LocalCache(10, policy=None)
    with pytest.raises(ConfigurationError, match="exactly one bound"):
        impl.LocalCache(policy="tinylfu")
    with pytest.raises(ConfigurationError, match="exactly one bound"):
        impl.LocalCache(10, maxbytes=100, policy="tinylfu")
    with pytest.raises(ConfigurationError, match="2\\*\\*40"):
        impl.LocalCache(maxbytes=2**40 + 1, policy="tinylfu")
    assert impl.LocalCache(maxbytes=2**40, policy="tinylfu").policy == "tinylfu"
    with pytest.raises(ConfigurationError, match="exactly one bound"):
        impl.memoize(None, policy="tinylfu")
    with pytest.raises(ConfigurationError, match="unknown policy"):
        impl.memoize(0, policy="arc")


def test_ttl_expiry_under_the_policy(impl: ModuleType, timer: FakeTimer) -> None:
    cache = impl.LocalCache(50, ttl=10, timer=timer, policy="tinylfu")
    for k in range(50):
        cache[k] = k
    cache.set("short", 1, ttl=1)
    timer.tick(2)
    assert cache.get("short") is None
    assert cache.stats.expirations == 1
    timer.tick(10)
    assert cache.get(3) is None
    remaining = len(cache)
    assert cache.expire() == remaining > 0
    assert len(cache) == 0
    evictions = cache.stats.evictions
    for k in range(60):
        cache[k] = k
    assert len(cache) == 50
    assert cache.stats.evictions - evictions == 10


def test_pickle_and_copy_keep_the_policy_and_the_entries(impl: ModuleType) -> None:
    cache = impl.LocalCache(100, policy="tinylfu")
    for k in range(300):
        cache[k % 130] = k
        cache.get(k % 17)
    for clone in (pickle.loads(pickle.dumps(cache)), copy.copy(cache)):
        assert clone.policy == "tinylfu"
        assert clone.maxsize == 100
        assert sorted(clone.items()) == sorted(cache.items())
    weighted = impl.LocalCache(maxbytes=1_000, weigher=_weigh, policy="tinylfu")
    weighted["a"] = 10
    clone = pickle.loads(pickle.dumps(weighted))
    assert (clone.policy, clone.maxbytes, clone.items()) == ("tinylfu", 1_000, [("a", 10)])


def test_clear_starts_the_policy_afresh(impl: ModuleType) -> None:
    cache = impl.LocalCache(20, policy="tinylfu")
    ref = TinyLFUPolicy(20)
    for k in range(200):
        if cache.get(k % 31) is None:
            cache[k % 31] = 1
    cache.clear()
    assert len(cache) == 0
    assert cache.keys() == []
    for k in range(300):
        key = (k * 7) % 45
        hit = cache.get(key) is not None
        if not hit:
            cache[key] = 1
        assert hit == ref.access(key)


def test_memoize_with_the_policy(impl: ModuleType) -> None:
    calls: list[int] = []

    @impl.memoize(maxsize=30, policy="tinylfu")
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    ref = TinyLFUPolicy(30)
    rng = random.Random(2)
    keys = [int(rng.paretovariate(0.9)) % 90 for _ in range(2_000)]
    for x in keys:
        assert square(x) == x * x
        ref.access(x)
    info = square.cache_info()
    assert info.misses == len(calls) == ref.counters.misses
    assert info.currsize <= 30


def test_stats_count_rejections_as_evictions(impl: ModuleType) -> None:
    cache = impl.LocalCache(10, policy="tinylfu")
    for k in range(10):
        cache[k] = k
    for _ in range(3):
        for k in range(10):
            cache.get(k)
    for k in range(100, 140):
        cache[k] = k  # cold: each is rejected (or displaces a cold entry)
    stats = cache.stats
    assert stats.currsize == len(cache) == 10
    assert stats.evictions == 40
    assert sum(k in cache for k in range(10)) >= 9


def test_the_managers_l1_can_run_the_policy(tmp_path: Any) -> None:
    from novacache import CacheManager, LocalCache
    from novacache.tiers.sqlite import SQLiteTier

    l1 = LocalCache(50, policy="tinylfu")
    with CacheManager(local=l1, store=SQLiteTier(tmp_path / "s.db")) as m:
        for k in range(200):
            m.set(f"k{k}", k)
        for _ in range(3):
            for k in range(20):
                assert m.get(f"k{k}") == k
        assert 0 < len(l1) <= 50
        assert all(f"k{k}" in l1 for k in range(20))
        assert m.get("k150") == 150
