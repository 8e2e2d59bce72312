"""The reference of the "tinylfu" policy (``novacache._policy_py``): its invariants and
the behaviours the design promises (docs/policies.md)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacache._policy_py import (
    ADMIT_RANDOM_THRESHOLD,
    LRUPolicy,
    TinyLFUPolicy,
    fmix64,
    simulate,
)
from novacache.benchmark.traces.generate import TraceSpec, generate


def test_fmix64_is_murmur3_finaliser() -> None:
    # Known values of MurmurHash3's fmix64 (C: uint64_t arithmetic).
    assert fmix64(0) == 0
    assert fmix64(1) == 0xB456BCFC34C2CB2C
    assert fmix64(-1) == fmix64(2**64 - 1)


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 40),
    ops=st.lists(
        st.tuples(st.sampled_from("ahur"), st.integers(0, 60), st.integers(0, 12)),
        max_size=400,
    ),
)
def test_invariants_hold_after_any_operations(
    capacity: int, ops: list[tuple[str, int, int]]
) -> None:
    p = TinyLFUPolicy(capacity, entries=8)
    for op, key, weight in ops:
        weight = min(weight, capacity)
        before = set(p.keys())
        if op == "a":
            p.access(key, weight)
        elif op == "h":
            assert p.hit(key) == (key in before)
        elif op == "u" and key in p:
            evicted = p.update(key, weight)
            assert set(evicted) <= before
        elif op == "r":
            assert p.remove(key) == (key in before)
        p.check()
        assert p.weight <= capacity
        for k in before - set(p.keys()):
            assert k not in p


def test_every_request_is_a_hit_or_a_miss() -> None:
    rng = random.Random(7)
    keys = [int(rng.paretovariate(1.0)) for _ in range(20_000)]
    c = simulate("tinylfu", 50, keys)
    assert c.hits + c.misses == len(keys)
    assert c.evictions + c.rejections <= c.misses
    with pytest.raises(ValueError, match="unknown policy"):
        simulate("clock", 50, keys)


def test_replays_are_deterministic() -> None:
    rng = random.Random(3)
    keys = [rng.randrange(500) for _ in range(10_000)]
    assert TinyLFUPolicy(40).replay(keys) == TinyLFUPolicy(40).replay(keys)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TinyLFUPolicy(0)
    with pytest.raises(ValueError):
        LRUPolicy(0)
    p = TinyLFUPolicy(10)
    with pytest.raises(ValueError):
        p.insert("big", 11)
    p.insert("k")
    with pytest.raises(KeyError):
        p.insert("k")
    with pytest.raises(ValueError):
        p.update("k", -1)
    assert not p.access("huge", 11)  # a miss, and nothing stored
    assert "huge" not in p


def warm(p: TinyLFUPolicy, keys: list[str], times: int) -> None:
    for _ in range(times):
        for k in keys:
            p.access(k)


def test_a_huge_entry_does_not_flush_hot_small_ones() -> None:
    p = TinyLFUPolicy(1_000, entries=200)
    hot = [f"hot{i}" for i in range(100)]
    for k in hot:
        p.insert(k, 9)
    warm(p, hot, 5)
    assert all(k in p for k in hot)
    evicted = p.insert("huge", 600)
    assert evicted == ["huge"]
    assert all(k in p for k in hot)
    p.check()


def test_a_huge_hot_entry_is_admitted_over_cold_ones() -> None:
    p = TinyLFUPolicy(1_000, entries=200)
    cold = [f"cold{i}" for i in range(100)]
    for k in cold:
        p.insert(k, 9)
    for _ in range(8):
        p.access("huge", 600)  # rejected each time, but its frequency grows
    assert "huge" in p
    assert p.weight <= 1_000
    p.check()


def test_one_time_scan_leaves_the_hot_set_resident() -> None:
    p = TinyLFUPolicy(200)
    hot = [f"h{i}" for i in range(150)]
    warm(p, hot, 4)
    for i in range(5_000):
        p.access(f"scan{i}")
    assert sum(k in p for k in hot) >= 140
    lru = LRUPolicy(200)
    for k in hot * 4:
        lru.access(k)
    for i in range(5_000):
        lru.access(f"scan{i}")
    assert sum(k in lru for k in hot) == 0


def test_rejected_key_requested_again_enters_main_through_the_ghost() -> None:
    p = TinyLFUPolicy(100)
    warm(p, [f"h{i}" for i in range(100)], 3)
    p.access("new")  # into the window
    for i in range(5):  # pushes "new" out of the 1-entry window: rejected
        p.access(f"filler{i}")
    assert "new" not in p
    ghost_hits = p.counters.ghost_hits
    p.access("new")
    assert p.counters.ghost_hits == ghost_hits + 1
    assert p.queue_of("new") == "probation"
    p.check()


def test_probation_hit_promotes_and_protected_overflow_is_demoted() -> None:
    p = TinyLFUPolicy(100)
    keys = [f"k{i}" for i in range(100)]
    warm(p, keys, 1)
    p.check()
    first = next(k for k in p if p.queue_of(k) == "probation")
    second = next(k for k in p if p.queue_of(k) == "probation" and k != first)
    # A hit only counts (lazy promotion): the entry moves when it reaches the front
    # of probation as the next eviction looks for a victim.
    p.access(first)
    assert p.queue_of(first) == "probation"
    assert p.frequency(first) == 2
    # An eviction: first (hit) is promoted, second (not hit) is the victim the new
    # key faces (and beats only with a higher frequency: here it is rejected).
    p.access("new")
    assert p.queue_of(first) == "protected"
    assert p.queue_of(second) == "probation"
    assert p.counters.rejections == 1
    warm(p, keys, 2)
    protected = [k for k in p if p.queue_of(k) == "protected"]
    assert len(protected) <= p.protected_max
    p.check()


def test_protected_target_adapts_within_bounds() -> None:
    # Popularity reshuffled every 20k requests: both signals fire.
    spec = TraceSpec("shift", "shift", 0.9, 120_000, 20_000, shift_every=20_000)
    ids = generate(spec, use_numpy=False)
    p = TinyLFUPolicy(1_000)
    main = 1_000 - p.window_max
    seen = {p.protected_max}
    for i in range(0, len(ids), 5_000):
        p.replay(ids[i : i + 5_000])
        seen.add(p.protected_max)
        assert main * 5 // 100 <= p.protected_max <= main * 90 // 100
    assert p.counters.ghost_hits > 0
    assert p.counters.demoted_hits > 0
    assert len(seen) > 1  # it moved
    p.check()


def test_frequencies_saturate_at_15_and_age_by_halving() -> None:
    p = TinyLFUPolicy(10)
    for _ in range(8):
        p.access("x")  # the insert reaches the sketch, the 7 hits wait on the entry
    p.access("y")  # x leaves the window: its hits reach the sketch
    assert p.frequency("x") == 8
    for _ in range(40):
        p.access("x")  # the entry counts 7 of them (it saturates), the sketch 15
    assert p.frequency("x") == 15
    # 10 * capacity counted increments halve every counter (x's included).
    for i in range(100):
        p.access(f"other{i}")
    assert p.frequency("x") == 7


def test_random_admission_threshold_is_caffeines() -> None:
    assert ADMIT_RANDOM_THRESHOLD == 6


def test_lru_policy_is_exact_lru_with_weights() -> None:
    p = LRUPolicy(10)
    for k in "abc":
        p.access(k, 3)
    p.access("a", 3)  # hit: a is now most recent
    p.access("d", 3)  # evicts b (least recent)
    assert "b" not in p
    assert all(k in p for k in "acd")
    assert p.weight == 9
    assert not p.access("huge", 11)
    assert len(p) == 3


def test_removal_is_not_a_rejection() -> None:
    # A delete or an expiry takes the entry out without a ghost record and without
    # moving the protected target: the key comes back through the window.
    p = TinyLFUPolicy(100)
    keys = [f"k{i}" for i in range(100)]
    warm(p, keys, 3)
    target = p.protected_max
    demoted = [k for k in p if p.queue_of(k) == "probation"]
    assert demoted
    for k in demoted:
        assert p.remove(k)
    p.check()
    assert p.protected_max == target
    assert not p.remove(demoted[0])
    p.access(demoted[0])
    assert p.queue_of(demoted[0]) == "window"
    assert p.counters.ghost_hits == 0
    p.check()


def test_a_weighted_cache_grows_its_sketch_when_more_entries_fit() -> None:
    p = TinyLFUPolicy(10_000, entries=4)
    for i in range(100):
        p.access(i, 1)
    assert len(p) == 100
    p.access(5, 1)
    assert p.frequency(5) >= 1
    p.check()


def test_window_grows_when_lru_would_hit_more_and_not_otherwise() -> None:
    # Popularity turning over every 2 cache sizes: the shadow LRU hits more than the
    # cache on the sampled keys, so the window grows; on stationary Zipf it stays put.
    fast = TraceSpec("fast", "shift", 0.9, 80_000, 20_000, shift_every=2_048)
    p = TinyLFUPolicy(1_024)
    p.replay(generate(fast, use_numpy=False))
    assert p.window_max > max(1, 1_024 // 100)
    assert p.window_max <= 1_024 * 99 // 100
    p.check()
    steady = TraceSpec("steady", "zipf", 0.9, 80_000, 20_000)
    q = TinyLFUPolicy(1_024)
    q.replay(generate(steady, use_numpy=False))
    assert q.window_max == max(1, 1_024 // 100)


def test_small_caches_keep_the_minimum_window() -> None:
    fast = TraceSpec("fast", "shift", 0.9, 40_000, 20_000, shift_every=2_000)
    p = TinyLFUPolicy(1_000)
    p.replay(generate(fast, use_numpy=False))
    assert p.window_max == 10


def _keys_of_block(block: int, mask: int, count: int, start: int = 0) -> list[int]:
    """Int keys (``hash(k) == k``) whose sketch block, and so ghost bucket, is ``block``."""
    out = []
    k = start
    while len(out) < count:
        if fmix64(k) & mask == block:
            out.append(k)
        k += 1
    return out


def test_a_ghost_bucket_keeps_its_newest_k_rejected_fingerprints() -> None:
    # 100 entries: 16 sketch blocks, buckets of k = ceil(125 / 16) = 8. Ten new keys of
    # one block are rejected in turn (each pushes the previous out of the window and
    # loses to the warmer victims): the bucket keeps the last 8, in order.
    p = TinyLFUPolicy(100)
    sk = p._sketch
    assert (sk.block_mask + 1, sk.ghost_k) == (16, 8)
    warm(p, [f"h{i}" for i in range(100)], 3)
    same = _keys_of_block(5, sk.block_mask, 10, start=10**6)
    for k in [*same, "filler"]:
        p.access(k)
    assert all(k not in p for k in same)
    bucket = sk.ghost[5]
    assert bucket == [(fmix64(k) >> 32) or 1 for k in same[2:]]
    p.check()
    # The two oldest were dropped: no ghost hit; a kept one comes back through it and
    # leaves its bucket (the newer ones move up).
    hits = p.counters.ghost_hits
    p.access(same[0])
    assert p.counters.ghost_hits == hits
    p.access(same[4])
    assert p.counters.ghost_hits == hits + 1
    assert p.queue_of(same[4]) == "probation"
    assert (fmix64(same[4]) >> 32) not in sk.ghost[5]
    p.check()


def test_rebuilding_the_sketch_empties_the_ghost() -> None:
    # A weight-bounded cache holding more entries than its sketch is sized for
    # rebuilds the sketch empty, and the ghost (beside it in C) with it.
    p = TinyLFUPolicy(8, entries=4)
    for i in range(8):
        p.access(i)
    for i in range(8):
        p.access(i)
    for i in range(100, 110):  # new keys that lose to warmer victims: rejected
        p.access(i)
    sk = p._sketch
    assert sk.ghost_n > 0
    assert fmix64(105) >> 32 in sk.ghost[fmix64(105) & sk.block_mask]
    for i in range(200, 240):  # weight 0: resident beyond the sketch's size
        p.access(i, 0)
    assert p._sketch is not sk
    assert p._sketch.ghost_n == 0
    hits = p.counters.ghost_hits
    p.access(105)
    assert p.counters.ghost_hits == hits
    p.check()
