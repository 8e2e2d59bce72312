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

With ``--instructions`` it counts instead: each loop runs in a child under ``valgrind
--tool=cachegrind`` (the client only; its redis-server runs outside), twice, with 2 and
with 6 passes, and the difference over the extra 4 passes is what one get costs:
instructions, instruction- and data-cache misses, then the functions whose instructions differ most
between the loops (the caches are valgrind's simulated ones; the same build and
machine give the same counts, give or take CPython's type attribute cache, whose
collisions depend on where objects landed).

    python scripts/l1_front_cost.py --passes 121
    python scripts/l1_front_cost.py --instructions
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from novacache import CacheManager, LocalCache
from novacache.benchmark.manager_cases import make_value
from novacache.benchmark.redis_server import RedisServer
from novacache.benchmark.stats import median_interval
from novacache.tiers import RedisTier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cachegrind_ops  # beside this file

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


MODES = ("remote", "keep", "front")
#: What --instructions reads from cachegrind's summary (cachegrind_ops' patterns).
_COUNTERS = {
    "instructions": cachegrind_ops.COUNTERS["instructions"],
    "I1 misses": r"I1\s+misses:\s+([\d,]+)",
    "D1 misses": cachegrind_ops.COUNTERS["D1 misses"],
}


def _child(mode: str, url: str, passes: int, n: int) -> None:
    """The loop of ``mode`` for ``passes`` passes, untimed (run under cachegrind)."""
    prefix = f"l1count{uuid.uuid4().hex[:6]}:"
    keys = [f"key-{i:05d}" for i in range(n)]
    local = LocalCache(10 * n) if mode == "front" else None
    manager = CacheManager(local=local, remote=RedisTier(url, prefix=prefix))
    for i, k in enumerate(keys):
        manager.set(k, make_value(i), 300)
    kept: list[Any] = []
    loop = keeping(kept) if mode == "keep" else plain
    gc.disable()
    for _ in range(passes):
        if manager.local is not None:
            manager.local.clear()
        kept.clear()
        loop(manager, keys)
    gc.enable()
    manager.close()


def _cachegrind(mode: str, url: str, passes: int, n: int, out: Path) -> dict[str, int]:
    """Run the child of ``mode`` under cachegrind; its totals (instructions, D1 misses),
    its per-function counts written to ``out``."""
    done = subprocess.run(
        [
            "valgrind", "--tool=cachegrind", "--cache-sim=yes",
            f"--cachegrind-out-file={out}", sys.executable, __file__,
            "--child", mode, "--url", url, "--passes", str(passes), "--keys", str(n),
        ],
        env=dict(os.environ, PYTHONHASHSEED="0"), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return cachegrind_ops.summary(done.stderr, _COUNTERS)


def _functions(path: Path) -> dict[str, int]:
    """Instructions by function in a cachegrind out file."""
    counts: dict[str, int] = collections.defaultdict(int)
    fn = "?"
    for line in path.read_text().splitlines():
        if line.startswith("fn="):
            fn = line[3:]
        elif line[:1].isdigit():
            counts[fn] += int(line.split()[1])
    return counts


def count(url: str, n: int) -> None:
    """Print what one get costs in each loop, by instruction and simulated D1 miss."""
    per: dict[str, dict[str, float]] = {}
    funcs: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            runs = {}
            for passes in (2, 6):
                out = Path(tmp) / f"{mode}.{passes}"
                print(f"cachegrind: {mode}, {passes} passes", file=sys.stderr)
                runs[passes] = (_cachegrind(mode, url, passes, n, out), _functions(out))
            gets = 4 * n
            per[mode] = {k: (runs[6][0][k] - runs[2][0][k]) / gets for k in runs[6][0]}
            names = set(runs[6][1]) | set(runs[2][1])
            funcs[mode] = {f: (runs[6][1].get(f, 0) - runs[2][1].get(f, 0)) / gets for f in names}
    for mode in MODES:
        print(
            f"{mode:<7} {per[mode]['instructions']:10,.0f} instructions a get,"
            f" {per[mode]['I1 misses']:7.1f} I1 misses, {per[mode]['D1 misses']:7.1f} D1 misses"
        )
    for a, b in (("keep", "remote"), ("front", "keep"), ("front", "remote")):
        extra = per[a]["instructions"] - per[b]["instructions"]
        print(
            f"{a} - {b}: {extra:+,.0f} instructions a get"
            f" ({extra / per[b]['instructions']:+.2%}),"
            f" {per[a]['I1 misses'] - per[b]['I1 misses']:+.1f} I1 misses,"
            f" {per[a]['D1 misses'] - per[b]['D1 misses']:+.1f} D1 misses"
        )
    for a, b in (("keep", "remote"), ("front", "keep")):
        diff = {f: funcs[a].get(f, 0.0) - funcs[b].get(f, 0.0) for f in funcs[a] | funcs[b]}
        top = sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:8]
        print(f"the functions that differ most, {a} - {b} (instructions a get):")
        for name, value in top:
            print(f"  {value:+8.1f}  {name[-90:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=61)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--instructions", action="store_true", help="count, under cachegrind")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.url, args.passes, args.keys)
        return 0
    if args.instructions:
        server = RedisServer().start()
        try:
            count(server.url, args.keys)
        finally:
            server.stop()
        return 0
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
