"""The default clock against real time.

The logic of expiry is tested with injected fake timers elsewhere; this checks the
clock each implementation uses when no timer is given. The compiled core reads
CLOCK_MONOTONIC_COARSE and consults CLOCK_MONOTONIC only near a deadline; the twin reads
time.monotonic. On Linux both share time.monotonic()'s base, so an entry set between
``before`` and ``after`` has its deadline in ``[before + ttl, after + ttl]``: it must be
live whenever a read ends before ``before + ttl`` and gone whenever a read starts after
``after + ttl``. The loop polls (no sleep) until every entry has been seen both ways.
"""

from __future__ import annotations

import sys
import time
from types import ModuleType

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the clock bases agree on Linux"
)


def test_default_clock_is_never_late_nor_early(impl: ModuleType) -> None:
    cache = impl.LocalCache()
    bounds = {}
    for i in range(40):
        ttl = 0.002 + 0.0007 * i  # 2 ms .. 29 ms: most deadlines fall between coarse ticks
        before = time.monotonic()
        cache.set(i, i, ttl=ttl)
        after = time.monotonic()
        bounds[i] = (before + ttl, after + ttl)
    seen_live: set[int] = set()
    seen_gone: set[int] = set()
    stop = time.monotonic() + 2.0
    while len(seen_gone) < len(bounds) and time.monotonic() < stop:
        for key, (earliest, latest) in bounds.items():
            start = time.monotonic()
            value = cache.peek(key)
            end = time.monotonic()
            if start >= latest:
                assert value is None, f"entry {key} returned {start - latest:.6f} s late"
                seen_gone.add(key)
            elif end < earliest:
                assert value == key, f"entry {key} expired {earliest - end:.6f} s early"
                seen_live.add(key)
    assert seen_gone == set(bounds)
    assert seen_live
