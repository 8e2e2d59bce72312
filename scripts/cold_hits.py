"""Hits in random key order on caches whose memory starts cold, timed stretch by stretch.

``novacache bench``'s random-order hit row runs each cache's pass after the other
implementations' passes, so each pass starts with much of its table out of the CPU
caches, and how much depends on what ran before. This script makes that the same for
every kind of cache: before each pass it reads a buffer larger than the last-level
cache (``--scrub-mb``), then it times the pass in ``--chunks`` equal stretches. Three
caches of ``--size`` int keys, filled in order, each holding the same key objects:

- ``lru``: ``LocalCache(n)``: a hit appends a record to the recency log; every ``n``
  hits or so the log is compacted, which rewrites every entry's log position (a
  sweep of the whole entry array, prefetched);
- ``tinylfu``: ``LocalCache(n, policy="tinylfu")``: a hit adds one to a byte per entry;
- ``noref``: ``LocalCache(n)`` in the cachetools drop-in's mode where a hit does not
  refresh (the same table, no recency work on a hit).

``--offset`` hits are made (untimed) before the first pass, which moves the point of
each pass at which the LRU log is compacted. Printed: per cache, the median over the
rounds of each stretch (ns a hit) and of the whole pass, and the median of the
per-round ratios to ``lru``.

    python scripts/cold_hits.py --size 100000 --rounds 30
    python scripts/cold_hits.py --size 100000 --rounds 30 --offset 50000
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from novacache import _core
from novacache._core import LocalCache


def _noref(n: int) -> LocalCache:
    cache = LocalCache(n)
    _core._cachetools_mode(cache, False)
    return cache


MAKERS: dict[str, Callable[[int], LocalCache]] = {
    "lru": LocalCache,
    "tinylfu": lambda n: LocalCache(n, policy="tinylfu"),
    "noref": _noref,
}


@dataclass
class Result:
    """One cache's medians over the rounds: each stretch's and the pass's ns a hit, and
    the per-round ratio of its pass to ``lru``'s."""

    stretches_ns: list[float]
    pass_ns: float
    ratio_to_lru: float


def measure(
    n: int, rounds: int, chunks: int, scrub_mb: int, offset: int, seed: int
) -> dict[str, Result]:
    """For each cache of :data:`MAKERS`: its stretches' and passes' ns a hit, by round."""
    keys = list(range(n))
    order = list(keys)
    random.Random(seed).shuffle(order)
    caches = {}
    for name, make in MAKERS.items():
        cache = make(n)
        for k in keys:
            cache[k] = k
        for k in order[:offset]:
            cache[k]
        caches[name] = cache
    size = -(-n // chunks)
    parts = [order[i : i + size] for i in range(0, n, size)]
    scrub = bytes(scrub_mb << 20)
    clock = time.perf_counter_ns
    stretches: dict[str, list[list[float]]] = {name: [[] for _ in parts] for name in caches}
    passes: dict[str, list[float]] = {name: [] for name in caches}
    names = list(caches)
    gc.disable()
    try:
        for r in range(rounds + 1):  # round 0: a warm-up, not counted
            for name in names[r % len(names) :] + names[: r % len(names)]:
                cache = caches[name]
                scrub.count(b"x")  # read it all: the caches hold none of the table now
                total = 0
                for j, part in enumerate(parts):
                    t0 = clock()
                    for k in part:
                        cache[k]
                    elapsed = clock() - t0
                    total += elapsed
                    if r:
                        stretches[name][j].append(elapsed / len(part))
                if r:
                    passes[name].append(total / n)
    finally:
        gc.enable()
    out: dict[str, Result] = {}
    for name in names:
        ratios = [a / b for a, b in zip(passes[name], passes["lru"], strict=True)]
        out[name] = Result(
            [statistics.median(s) for s in stretches[name]],
            statistics.median(passes[name]),
            statistics.median(ratios),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--scrub-mb", type=int, default=64, help="MiB read before each pass")
    parser.add_argument("--offset", type=int, default=0, help="untimed hits made first")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    out = measure(args.size, args.rounds, args.chunks, args.scrub_mb, args.offset, args.seed)
    stretch = -(-args.size // args.chunks)  # as measure() cuts the pass
    print(f"ns a hit, median of {args.rounds} rounds, by stretch of {stretch:,}")
    for name, r in out.items():
        cells = " ".join(f"{v:5.0f}" for v in r.stretches_ns)
        print(f"{name:<8} {cells}   pass {r.pass_ns:6.1f}   / lru {r.ratio_to_lru:.3f}")
    if args.json:
        options = vars(args) | {"json": str(args.json)}
        caches = {name: asdict(r) for name, r in out.items()}
        args.json.write_text(json.dumps({"options": options, "caches": caches}, indent=2))


if __name__ == "__main__":
    main()
