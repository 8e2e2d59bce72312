"""The staleness window of the invalidation bus (issue 7 target: p99 <= 10 ms on loopback).

Process A (this one) and process B (``tests/manager/_peer.py``) each run a CacheManager
with its own L1 and an InvalidationBus on one Redis. For each sample B holds the key in
its L1; A takes ``time.monotonic()`` (one clock for every process on Linux) and
overwrites the key; B polls its L1 every 50 µs and reports when the key left it. The
window is the difference: A's write (Redis SET + publish) plus delivery to B.

    python benchmarks/test_manager_staleness.py [samples]        # measure, print p50/p99
    pytest benchmarks/test_manager_staleness.py --benchmark-disable  # smoke run (20 samples)

The timings are reported, never asserted (the smoke run checks every sample was seen).
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from manager import _peer
from novacache import LocalCache
from novacache.manager import CacheManager, InvalidationBus
from novacache.tiers import RedisTier
from tiers.redis_servers import require_redis, start_standalone, topology


def measure(url: str, samples: int) -> list[float]:
    """``samples`` staleness windows, in seconds."""
    ns = f"stale-{uuid.uuid4().hex[:8]}:"
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    peer = ctx.Process(target=_peer.serve, args=(theirs, url, ns), daemon=True)
    peer.start()
    windows: list[float] = []
    try:
        if not ours.poll(30) or ours.recv() is not True:
            raise RuntimeError("the peer's bus did not become healthy")
        remote = RedisTier(url, prefix=ns)
        bus = InvalidationBus(remote)
        with CacheManager(local=LocalCache(10_000), remote=remote, bus=bus) as a:
            deadline = time.monotonic() + 10
            while not bus.healthy and time.monotonic() < deadline:
                time.sleep(0.005)
            for i in range(samples):
                key = f"s:{i}"
                a.set(key, "old")
                ours.send(("load", key, bus.published))
                value, held = ours.recv()
                if (value, held) != ("old", True):
                    raise RuntimeError(f"the peer could not hold {key}: {value!r} {held}")
                ours.send(("watch", key))
                ours.recv()
                t0 = time.monotonic()
                a.set(key, "new")
                if not ours.poll(10):
                    raise RuntimeError("no answer from the peer")
                t1 = ours.recv()
                if t1 is None:
                    raise RuntimeError(f"{key} stayed in the peer's L1 for 5 s")
                windows.append(t1 - t0)
        ours.send(("stop",))
        ours.recv()
    finally:
        peer.join(10)
        if peer.is_alive():
            peer.kill()
    return windows


def summary(windows: list[float]) -> dict[str, float]:
    ordered = sorted(windows)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {
        "samples": len(ordered),
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": p99 * 1e3,
        "max_ms": ordered[-1] * 1e3,
    }


def test_staleness_window(benchmark: Any, tmp_path: Path) -> None:
    require_redis("redis-server")
    with topology(start_standalone, tmp_path) as server:
        samples = 20 if benchmark.disabled else 200
        windows = measure(server.url, samples)
    assert len(windows) == samples
    assert all(w > 0 for w in windows)
    stats = summary(windows)
    benchmark.extra_info.update(stats)
    print(f"\nstaleness window: {stats}")
    benchmark.group = "manager: staleness window (write in A -> gone from B's L1)"
    benchmark.pedantic(lambda: None, rounds=1)


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory() as tmp, topology(start_standalone, Path(tmp)) as server:
        stats = summary(measure(server.url, samples))
    print(
        f"staleness window over {stats['samples']:.0f} samples: p50 {stats['p50_ms']:.3f} ms,"
        f" p99 {stats['p99_ms']:.3f} ms, max {stats['max_ms']:.3f} ms (target p99 <= 10 ms)"
    )


if __name__ == "__main__":
    main()
