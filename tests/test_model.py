"""Stateful property test: each implementation against a tiny OrderedDict reference model
with fake time.

Three modes:

- ``bounded``: ``maxsize`` and ``maxbytes`` (weight = the int value), no TTL. Results,
  ``keys()`` order, ``len`` and every counter must match the model exactly.
- ``ttl``: no bound, per-entry TTLs and a default TTL, a weigher that only tracks
  ``currbytes``. Results, ``keys()`` order, hits and misses match exactly; ``len`` and
  ``currbytes`` match after ``expire()`` (expired entries are reclaimed lazily, so
  ``expirations`` is only bounded by the model before that).
- ``both``: bounds and TTLs. Which entries an insert evicts depends on what the
  implementation's incremental sweep finds, so the model checks what the contract fixes:
  returned values are the latest live ones, ``keys()`` keeps the model's recency order,
  the entry just set is never evicted, the bounds hold and every lookup is counted.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from _helpers import ABSENT, FakeTimer
from novacache.errors import EntryTooLarge

KEYS = st.integers(0, 7)
VALUES = st.integers(0, 7)
TTLS = st.sampled_from([None, 1.0, 2.0, 5.0, math.inf])
TICKS = st.sampled_from([0.5, 1.0, 2.0, 3.0])


def weigh(key: Any, value: Any) -> int:
    return int(value)


class Entry:
    __slots__ = ("expires", "value", "weight")

    def __init__(self, value: int, expires: float | None, weight: int) -> None:
        self.value = value
        self.expires = expires
        self.weight = weight


class CacheMachine(RuleBasedStateMachine):
    impl: ModuleType
    mode: str

    def __init__(self) -> None:
        super().__init__()
        self.timer = FakeTimer()
        self.od: OrderedDict[int, Entry] = OrderedDict()
        self.hits = self.misses = self.evictions = self.expired = 0
        self.maxsize: int | None = None
        self.maxbytes: int | None = None
        self.default_ttl: float | None = None
        self.cache: Any = None

    @initialize(maxsize=st.integers(1, 5), maxbytes=st.integers(5, 15), ttl=TTLS)
    def build(self, maxsize: int, maxbytes: int, ttl: float | None) -> None:
        if self.mode in ("bounded", "both"):
            self.maxsize, self.maxbytes = maxsize, maxbytes
        if self.mode in ("ttl", "both"):
            self.default_ttl = ttl
        self.cache = self.impl.LocalCache(
            self.maxsize,
            maxbytes=self.maxbytes,
            weigher=weigh,
            ttl=self.default_ttl,
            timer=self.timer,
        )

    # -- the model ---------------------------------------------------------------------

    @property
    def exact(self) -> bool:
        return self.mode != "both"

    def live(self, key: int) -> Entry | None:
        entry = self.od.get(key)
        if entry is None:
            return None
        assert entry.expires is None or self.timer.now < entry.expires  # eager model
        return entry

    def model_set(self, key: int, value: int, ttl: float | None) -> None:
        if ttl is None:
            ttl = self.default_ttl
        expires = None if ttl is None or math.isinf(ttl) else self.timer.now + ttl
        self.od.pop(key, None)
        self.od[key] = Entry(value, expires, value)
        if self.exact:
            while (self.maxsize is not None and len(self.od) > self.maxsize) or (
                self.maxbytes is not None and self.bytes() > self.maxbytes
            ):
                self.od.popitem(last=False)
                self.evictions += 1

    def bytes(self) -> int:
        return sum(e.weight for e in self.od.values())

    def too_large(self, value: int) -> bool:
        return self.maxbytes is not None and value > self.maxbytes

    def model_lookup(self, key: int, got: Any) -> None:
        """Check a counted lookup's result against the model and update it."""
        entry = self.live(key)
        if got is ABSENT:
            self.misses += 1
            if self.exact:
                assert entry is None, f"miss on live key {key}"
            self.od.pop(key, None)
        else:
            self.hits += 1
            assert entry is not None, f"hit on absent key {key}: {got}"
            assert got == entry.value
            self.od.move_to_end(key)

    # -- rules ---------------------------------------------------------------------------

    def _after_set(self, key: int, value: int) -> None:
        assert self.cache.peek(key, ABSENT) == value  # never evicts the one just set

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def set(self, key: int, value: int, ttl: float | None) -> None:
        if self.mode == "bounded":
            ttl = None
        if self.too_large(value):
            with pytest.raises(EntryTooLarge):
                self.cache.set(key, value, ttl=ttl)
            return
        self.cache.set(key, value, ttl=ttl)
        self.model_set(key, value, ttl)
        self._after_set(key, value)

    @rule(key=KEYS, value=VALUES)
    def setitem(self, key: int, value: int) -> None:
        if self.too_large(value):
            with pytest.raises(EntryTooLarge):
                self.cache[key] = value
            return
        self.cache[key] = value
        self.model_set(key, value, None)
        self._after_set(key, value)

    @rule(pairs=st.lists(st.tuples(KEYS, VALUES), max_size=4), ttl=TTLS)
    def set_many(self, pairs: list[tuple[int, int]], ttl: float | None) -> None:
        if self.mode == "bounded":
            ttl = None
        if any(self.too_large(v) for _, v in pairs):
            with pytest.raises(EntryTooLarge):
                self.cache.set_many(pairs, ttl=ttl)
            return
        self.cache.set_many(pairs, ttl=ttl)
        for k, v in pairs:
            self.model_set(k, v, ttl)

    @rule(key=KEYS)
    def get(self, key: int) -> None:
        self.model_lookup(key, self.cache.get(key, ABSENT))

    @rule(key=KEYS)
    def getitem(self, key: int) -> None:
        try:
            got = self.cache[key]
        except KeyError as exc:
            got, args = ABSENT, exc.args
            assert args == (key,)
        self.model_lookup(key, got)

    @rule(keys=st.lists(KEYS, max_size=5))
    def get_many(self, keys: list[int]) -> None:
        before = {k: self.cache.peek(k, ABSENT) for k in keys}
        got = self.cache.get_many(keys)
        for k in keys:
            self.model_lookup(k, got.get(k, ABSENT) if k in got else ABSENT)
        assert set(got) == {k for k, v in before.items() if v is not ABSENT}

    @rule(key=KEYS, value=st.integers(0, 4))
    def setdefault(self, key: int, value: int) -> None:
        before = self.cache.peek(key, ABSENT)
        got = self.cache.setdefault(key, value)
        entry = self.live(key)
        if self.exact:
            assert (before is ABSENT) == (entry is None)
        if before is ABSENT:
            self.misses += 1
            assert got == value
            self.model_set(key, value, None)
        else:
            self.hits += 1
            assert entry is not None
            assert got == before == entry.value
            self.od.move_to_end(key)

    @rule(key=KEYS)
    def peek(self, key: int) -> None:
        got = self.cache.peek(key, ABSENT)
        entry = self.live(key)
        if got is not ABSENT:
            assert entry is not None
            assert got == entry.value
        elif self.exact:
            assert entry is None

    @rule(key=KEYS)
    def contains(self, key: int) -> None:
        present = key in self.cache
        entry = self.live(key)
        if self.exact:
            assert present == (entry is not None)
        elif present:
            assert entry is not None

    @rule(key=KEYS)
    def delitem(self, key: int) -> None:
        try:
            del self.cache[key]
        except KeyError as exc:
            args = exc.args
            assert args == (key,)
            if self.exact:
                assert self.live(key) is None
        else:
            assert self.live(key) is not None
        self.od.pop(key, None)

    @rule(key=KEYS, with_default=st.booleans())
    def pop(self, key: int, with_default: bool) -> None:
        entry = self.live(key)
        if with_default:
            got = self.cache.pop(key, ABSENT)
        else:
            try:
                got = self.cache.pop(key)
            except KeyError as exc:
                got, args = ABSENT, exc.args
                assert args == (key,)
        if got is ABSENT:
            if self.exact:
                assert entry is None
        else:
            assert entry is not None
            assert got == entry.value
        self.od.pop(key, None)

    @rule()
    def popitem(self) -> None:
        keys = self.cache.keys()
        try:
            key, value = self.cache.popitem()
        except KeyError:
            assert keys == []
            if self.exact:
                assert not self.od
            return
        assert keys
        assert key == keys[0]
        entry = self.live(key)
        assert entry is not None
        assert value == entry.value
        if self.exact:
            assert key == next(iter(self.od))
        del self.od[key]

    @rule(keys=st.lists(KEYS, max_size=4))
    def delete_many(self, keys: list[int]) -> None:
        n = self.cache.delete_many(keys)
        live = {k for k in keys if self.live(k) is not None}
        if self.exact:
            assert n == len(live)
        else:
            assert n <= len(live)
        for k in keys:
            self.od.pop(k, None)

    @rule(seconds=TICKS)
    def tick(self, seconds: float) -> None:
        self.timer.tick(seconds)
        for key, entry in list(self.od.items()):
            if entry.expires is not None and self.timer.now >= entry.expires:
                del self.od[key]
                self.expired += 1

    @rule()
    def expire(self) -> None:
        before = self.cache.stats.expirations
        n = self.cache.expire()
        assert n >= 0
        assert self.cache.stats.expirations == before + n
        if self.exact:
            assert len(self.cache) == len(self.od)
            assert self.cache.currbytes == self.bytes()
        assert len(self.cache) == len(self.cache.keys())

    @precondition(lambda self: self.cache is not None)
    @rule()
    def clear(self) -> None:
        self.cache.clear()
        self.od.clear()
        assert len(self.cache) == 0
        assert self.cache.currbytes == 0

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def agrees_with_model(self) -> None:
        c = self.cache
        if c is None:
            return
        keys = c.keys()
        items = c.items()
        assert [k for k, _ in items] == keys
        stats = c.stats
        assert (stats.hits, stats.misses) == (self.hits, self.misses)
        if self.maxsize is not None:
            assert len(c) <= self.maxsize
        if self.maxbytes is not None:
            assert c.currbytes <= self.maxbytes
        assert len(keys) <= len(c)
        if self.exact:
            assert items == [(k, e.value) for k, e in self.od.items()]
            assert stats.evictions == self.evictions
            assert stats.expirations <= self.expired
        if self.mode == "bounded":
            assert len(c) == len(self.od)
            assert c.currbytes == self.bytes()
            assert stats.expirations == 0
        if self.mode == "ttl":
            assert len(c) >= len(self.od)
        if self.mode == "both":
            # a subsequence of the model's recency order, with the model's values
            for k, v in items:
                entry = self.live(k)
                assert entry is not None, f"impl lists {k}, absent from the model"
                assert v == entry.value
            present = set(keys)
            assert keys == [k for k in self.od if k in present]
            for k in [k for k in self.od if k not in present]:  # evicted by the impl
                del self.od[k]
                self.evictions += 1
            assert stats.evictions + stats.expirations >= self.evictions


@pytest.mark.parametrize("mode", ["bounded", "ttl", "both"])
def test_against_model(impl: ModuleType, mode: str) -> None:
    machine = type(f"CacheMachine_{mode}", (CacheMachine,), {"impl": impl, "mode": mode})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=100,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
