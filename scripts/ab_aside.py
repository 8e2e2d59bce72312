"""Two builds of the compiled core in one process, timed pass by pass: the cache-aside loop.

``novacache bench --only aside`` times one build; two builds compared that way differ by
the noise between processes (the layout of the trace's key objects, the machine's
other work), often more than a change moves. This loads the ``_core`` extension of
each tree side by side (each its own module object: its own types and static state)
and alternates them pass by pass over the bench's trace (its default options' Zipf 0.9
trace, ``runner.aside_trace_spec``), a fresh cache per pass as the bench builds it (or,
with ``--warm``, one warmed by 100,000 requests first). It prints, per size and tree,
the fastest pass and the median of the passes, ns a request, for LRU and tinylfu, and
tinylfu / LRU. The rest of novacache is imported from the first tree.

    python scripts/ab_aside.py --tree /path/before --tree /path/after --passes 25
"""

from __future__ import annotations

import argparse
import gc
import importlib.machinery
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any


def load_core(tree: Path) -> ModuleType:
    """The ``novacache._core`` extension built in ``tree`` (``setup.py build_ext
    --inplace``), loaded as a module object of its own."""
    found = sorted((tree / "src" / "novacache").glob("_core.*.so")) + sorted(
        (tree / "src" / "novacache").glob("_core.*.pyd")
    )
    if not found:
        raise SystemExit(f"no compiled _core in {tree}/src/novacache: build it first")
    path = str(found[0])
    loader = importlib.machinery.ExtensionFileLoader("novacache._core", path)
    spec = importlib.util.spec_from_file_location("novacache._core", path, loader=loader)
    if spec is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def aside(cache: Any, keys: list[int]) -> None:
    get = cache.get
    for k in keys:
        if get(k) is None:
            cache[k] = 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="a built checkout")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--passes", type=int, default=15)
    parser.add_argument("--warm", action="store_true", help="warm each cache first")
    args = parser.parse_args(argv)
    trees = [Path(t).resolve() for t in args.tree]
    sys.path.insert(0, str(trees[0] / "src"))
    from novacache.benchmark.runner import BenchOptions, aside_trace_spec
    from novacache.benchmark.traces.generate import generate

    cores = {str(t): load_core(t) for t in trees}
    sizes = [int(s) for s in args.sizes.split(",")]
    keys = generate(aside_trace_spec(BenchOptions())).tolist()
    samples: dict[tuple[str, int, str], list[float]] = {}
    gc.disable()
    for p in range(args.passes):
        for n in sizes:
            order = list(cores.items()) if p % 2 == 0 else list(reversed(cores.items()))
            for name, core in order:
                for policy in ("lru", "tinylfu"):
                    cache = core.LocalCache(maxsize=n, policy=policy)
                    if args.warm:
                        aside(cache, keys[:100_000])
                    t0 = time.perf_counter_ns()
                    aside(cache, keys)
                    ns = (time.perf_counter_ns() - t0) / len(keys)
                    samples.setdefault((name, n, policy), []).append(ns)
                    del cache
        print(f"pass {p + 1}/{args.passes}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    print(f"{'entries':>8}  {'tree':40}  {'LRU min/median':>16}  {'tinylfu min/median':>19}  ratio")
    for n in sizes:
        for name in cores:
            lru, tl = samples[(name, n, "lru")], samples[(name, n, "tinylfu")]
            print(
                f"{n:>8,}  {name[-40:]:40}  {min(lru):7.1f} {statistics.median(lru):7.1f}"
                f"  {min(tl):9.1f} {statistics.median(tl):8.1f}"
                f"  {min(tl) / min(lru):.3f} / {statistics.median(tl) / statistics.median(lru):.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
