"""What filling a cache costs, insert by insert: for each size, a ``LocalCache`` of that
many entries (``--policy``, tinylfu by default) is made, filled with random int keys
to its capacity and then a quarter beyond (evicting), and cleared. Printed per size
(best of ``--repeat`` runs): the time to make it, the inserts' mean ns in each stretch
of the fill (to half, to three quarters, to full, evicting; each insert timed, so with
the clock's own cost), the slowest single insert and where it came, the time of
``clear()``; and the resident memory (VmRSS, Linux) a cache of the largest size adds
while it holds 30% of its capacity, measured first.

The tinylfu sketch's changes are deferred until the first eviction and drained from
three quarters full (docs/policies.md, phase 9): these are the numbers that show what
that moves, and that no single insert pays for it all.

    python scripts/tinylfu_fill.py --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from pathlib import Path

from novacache._core import LocalCache
from novacache.benchmark.memory import vmrss_bytes


def fill(n: int, policy: str, repeat: int) -> dict[str, float | int]:
    """The best of ``repeat`` fills of a cache of ``n`` entries (see the module)."""
    keys = list(range(n + n // 4))
    random.Random(n).shuffle(keys)
    marks = [0, n // 2, 3 * n // 4, n, n + n // 4]
    best: dict[str, float | int] = {}
    clock = time.perf_counter
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = clock()
            cache = LocalCache(n, policy=policy)
            made = clock() - t0
            stretches = []
            worst, worst_at = 0.0, 0
            for q in range(4):
                start = clock()
                for i in range(marks[q], marks[q + 1]):
                    t = clock()
                    cache[keys[i]] = i
                    d = clock() - t
                    if d > worst:
                        worst, worst_at = d, i
                stretches.append((clock() - start) / (marks[q + 1] - marks[q]) * 1e9)
            t0 = clock()
            cache.clear()
            cleared = clock() - t0
            run: dict[str, float | int] = {
                "make_ms": made * 1e3,
                "to_half_ns": stretches[0],
                "to_three_quarters_ns": stretches[1],
                "to_full_ns": stretches[2],
                "evicting_ns": stretches[3],
                "worst_insert_ms": worst * 1e3,
                "clear_ms": cleared * 1e3,
            }
            if not best or run["worst_insert_ms"] < best["worst_insert_ms"]:
                best["worst_insert_ms"] = run["worst_insert_ms"]
                best["worst_insert_at"] = worst_at
            for k, v in run.items():
                if k != "worst_insert_ms":
                    best[k] = min(best.get(k, v), v)
    finally:
        gc.enable()
    return best


def resident(n: int, policy: str) -> float | None:
    """MB of resident memory a cache of ``n`` entries adds holding 0.3 n."""
    keys = list(range(10**7, 10**7 + 3 * n // 10))
    gc.collect()
    before = vmrss_bytes()
    cache = LocalCache(n, policy=policy)
    for k in keys:
        cache[k] = k
    after = vmrss_bytes()
    del cache
    if before is None or after is None:
        return None
    return (after - before) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--policy", default="tinylfu", choices=("lru", "tinylfu"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out: dict[str, object] = {"policy": args.policy, "sizes": {}}
    # First, in a process that has made no cache yet: memory freed by an earlier one
    # would be reused and not counted.
    mb = resident(max(sizes), args.policy)
    out["resident_mb_at_30_percent"] = mb
    print(
        f"{'entries':>10} {'make ms':>8} {'to 1/2':>7} {'to 3/4':>7} {'to full':>7}"
        f" {'evict':>7} {'worst insert':>20} {'clear ms':>8}   (inserts: mean ns)"
    )
    for n in sizes:
        r = fill(n, args.policy, args.repeat)
        out["sizes"][str(n)] = r  # type: ignore[index]
        print(
            f"{n:>10,} {r['make_ms']:8.2f} {r['to_half_ns']:7.0f}"
            f" {r['to_three_quarters_ns']:7.0f} {r['to_full_ns']:7.0f}"
            f" {r['evicting_ns']:7.0f} {r['worst_insert_ms']:8.2f} ms at"
            f" {r['worst_insert_at']:>9,} {r['clear_ms']:8.2f}"
        )
    if mb is not None:
        print(f"resident memory of a cache of {max(sizes):,} holding 30%: {mb:.1f} MB")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
