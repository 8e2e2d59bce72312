"""What an L1 in front of Redis costs a Redis-served get, split in two: keeping the values
(an L1 holds them) and the L1's own code.

``novacache bench --only manager`` compares ``CacheManager(local=LocalCache(...),
remote=RedisTier(...))`` with its L1 cleared before each pass (every get served by Redis,
then stored in L1) against a Redis-only manager. This script times three loops of
``get`` over the same 1,000 keys (7-field dict values, as the bench's), pinned as the
bench pins by default (client and its own redis-server on one CPU), in an order rotated
from pass to pass:

- ``remote``: a Redis-only manager;
- ``keep``: a Redis-only manager whose loop keeps every value it gets (in a list), as an
  L1 keeps them, without any L1 code;
- ``front``: a manager with an L1, cleared before each pass.

It prints each loop's median (us a get) and the median of the per-pass ratios with their
95% interval (``novacache.benchmark.stats.median_interval``): ``keep / remote`` is what
holding the values costs, ``front / keep`` what the L1's code adds.

    python scripts/l1_front_cost.py --passes 121
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from novacache import CacheManager, LocalCache
from novacache.benchmark.manager_cases import make_value
from novacache.benchmark.redis_server import RedisServer
from novacache.benchmark.stats import median_interval
from novacache.tiers import RedisTier

Loop = Callable[[Any, Sequence[str]], float]


def plain(manager: Any, keys: Sequence[str]) -> float:
    """Seconds for ``manager.get`` of every key, the values dropped."""
    get = manager.get
    t0 = time.perf_counter()
    for k in keys:
        get(k)
    return time.perf_counter() - t0


def keeping(kept: list[Any]) -> Loop:
    """A loop like :func:`plain` that appends every value to ``kept``."""

    def loop(manager: Any, keys: Sequence[str]) -> float:
        get = manager.get
        keep = kept.append
        t0 = time.perf_counter()
        for k in keys:
            keep(get(k))
        return time.perf_counter() - t0

    return loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=61)
    parser.add_argument("--keys", type=int, default=1000)
    args = parser.parse_args(argv)
    cpu = max(os.sched_getaffinity(0))
    server = RedisServer(cpu=cpu).start()
    try:
        os.sched_setaffinity(0, {cpu})
        prefix = f"l1cost{uuid.uuid4().hex[:6]}:"
        keys = [f"key-{i:05d}" for i in range(args.keys)]
        remote = CacheManager(remote=RedisTier(server.url, prefix=prefix))
        keep = CacheManager(remote=RedisTier(server.url, prefix=prefix))
        front = CacheManager(
            local=LocalCache(10 * args.keys), remote=RedisTier(server.url, prefix=prefix)
        )
        for i, k in enumerate(keys):
            remote.set(k, make_value(i), 300)
        kept: list[Any] = []
        cases: list[tuple[str, Any, Loop]] = [
            ("remote", remote, plain),
            ("keep", keep, keeping(kept)),
            ("front", front, plain),
        ]
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        gc.disable()
        for p in range(args.passes + 1):  # pass 0: a warm-up, not counted
            for name, manager, loop in cases[p % 3 :] + cases[: p % 3]:
                if manager.local is not None:
                    manager.local.clear()
                kept.clear()
                seconds = loop(manager, keys)
                if p:
                    times[name].append(seconds / len(keys) * 1e6)
        gc.enable()
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:<7} {median:8.2f} us a get (median of {len(values)} passes)")
        for a, b in (("keep", "remote"), ("front", "keep"), ("front", "remote")):
            ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
            lo, hi = median_interval(ratios)
            print(f"{a} / {b}: {statistics.median(ratios):.3f} (95% interval {lo:.3f}-{hi:.3f})")
        for manager in (remote, keep, front):
            manager.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
