"""The cache-aside loop (``c.get(k)``, ``c[k] = v`` on a miss) over the Zipf 0.9 trace,
and hits in random key order on big caches (1M and 5M entries: marked ``big``, run
only with ``--l1-big``; a smoke run stays fast).

The same loops as ``novacache bench``'s rows ``aside`` and ``hit-big``. Targets (issue
20): the LRU loop <= 1.0x cachebox and <= 1.1x dict; tinylfu's <= 1.15x LRU's; a big
hit <= 1.15x dict for every policy.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from l1_support import available, fill
from novacache.benchmark.timing import compile_loop
from novacache.benchmark.traces.generate import TraceSpec, generate

PEERS = ["dict", "novacache", "novacache-tinylfu", "cachebox"]
_TRACE: list[int] = []


def _trace() -> list[int]:
    if not _TRACE:
        spec = TraceSpec("zipf-0.9", "zipf", 0.9, n_requests=500_000, n_objects=100_000, seed=1234)
        _TRACE.extend(generate(spec).tolist())
    return _TRACE


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("size", [1_000, 10_000, 100_000])
def test_cache_aside(benchmark: Any, size: int, name: str) -> None:
    impl = available(name)
    make = impl.make
    assert make is not None
    keys = _trace() if not benchmark.disabled else _trace()[:5_000]
    loop = compile_loop("aside")

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (make(size), keys, 1), {}  # a fresh, empty cache every round

    benchmark.group = f"cache-aside loop, Zipf 0.9, {size:,} entries"
    benchmark.extra_info["ops"] = len(keys)
    rounds = 1 if benchmark.disabled else 5
    benchmark.pedantic(loop, setup=setup, rounds=rounds, warmup_rounds=0 if rounds == 1 else 1)


@pytest.mark.big
@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("size", [1_000_000, 5_000_000])
def test_hit_big(benchmark: Any, size: int, name: str) -> None:
    impl = available(name)
    assert impl.make is not None
    cache = fill(impl.make(size), list(range(size)))
    rng = random.Random(1234)
    keys = [rng.randrange(size) for _ in range(1_000_000)]
    benchmark.group = f"c[k] hit, random order, {size:,} entries"
    benchmark.extra_info["ops"] = len(keys)
    benchmark(compile_loop("getitem"), cache, keys, None)
