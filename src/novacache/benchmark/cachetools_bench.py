"""The ``cachetools`` rows of ``novacache bench``: the drop-in beside cachetools itself.

Self-contained: :func:`run` returns plain dicts, one per (row, implementation), with
``ns`` (median over interleaved rounds of the mean time per operation, the Python loop
included) and ``ratio`` to the row's reference measured in the same rounds: ``dict``
for ``c[k]`` and inserts, the compiled floor for ``.get``, ``functools.lru_cache`` for
``cached``. Every cache holds ``n`` int keys read in insertion order; TTLs are long
enough never to expire during the run.

Implementations: ``novacache.cachetools`` as imported (``auto``: compiled fast path
where it applies), and ``cachetools`` 8.0.2 when installed.
"""

from __future__ import annotations

import functools
import gc
import importlib
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ROWS", "format_rows", "run"]

#: Row id -> (title, reference implementation, target ratio for novacache).
ROWS: dict[str, tuple[str, str, float]] = {
    "lru-hit": ("LRUCache c[k] hit", "dict", 1.5),
    "lru-get": ("LRUCache .get(k) hit", "floor", 1.2),
    "ttl-hit": ("TTLCache c[k] hit", "dict", 2.0),
    "ttl-get": ("TTLCache .get(k) hit", "floor", 1.5),
    "lru-set-new": ("LRUCache set new key, full", "dict", 3.0),
    "cached-hit": ("cached(LRUCache(1024)) hit, whole call", "functools", 1.5),
}

_HIT = "def run(c, keys):\n    for k in keys:\n        c[k]\n"
_GET = "def run(c, keys):\n    for k in keys:\n        c.get(k)\n"
_SET = "def run(c, keys):\n    for k in keys:\n        c[k] = k\n"
_CALL = "def run(c, keys):\n    for k in keys:\n        c(k)\n"


def _loop(source: str) -> Callable[[Any, list[int]], None]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<novacache bench: cachetools>", "exec"), namespace)
    fn: Callable[[Any, list[int]], None] = namespace["run"]
    return fn


def _modules() -> dict[str, Any]:
    found: dict[str, Any] = {"novacache": importlib.import_module("novacache.cachetools")}
    try:
        found["cachetools"] = importlib.import_module("cachetools")
    except ImportError:
        pass
    return found


def _floor() -> Any:
    try:
        from .._floor import FloorMapping  # type: ignore[import-not-found]
    except ImportError:
        return None
    return FloorMapping()


def _filled(container: Any, keys: list[int]) -> Any:
    for k in keys:
        container[k] = k
    return container


def _cases(n: int) -> dict[str, dict[str, Callable[[], float]]]:
    """row -> implementation -> a function timing one round (ns per operation)."""
    keys = list(range(n))
    fresh = list(range(n, 2 * n))
    hit, get, put, call = _loop(_HIT), _loop(_GET), _loop(_SET), _loop(_CALL)

    def timed(fn: Callable[[Any, list[int]], None], obj: Any, ks: list[int]) -> Callable[[], float]:
        def one() -> float:
            start = time.perf_counter_ns()
            fn(obj, ks)
            return (time.perf_counter_ns() - start) / len(ks)

        return one

    def set_new(make: Callable[[], Any]) -> Callable[[], float]:
        def one() -> float:
            cache = _filled(make(), keys)
            start = time.perf_counter_ns()
            put(cache, fresh)
            return (time.perf_counter_ns() - start) / len(fresh)

        return one

    reference = _filled({}, keys)
    floor = _floor()
    cases: dict[str, dict[str, Callable[[], float]]] = {row: {} for row in ROWS}
    cases["lru-hit"]["dict"] = timed(hit, reference, keys)
    cases["ttl-hit"]["dict"] = timed(hit, reference, keys)
    cases["lru-set-new"]["dict"] = set_new(dict)
    if floor is not None:
        _filled(floor, keys)
        cases["lru-get"]["floor"] = timed(get, floor, keys)
        cases["ttl-get"]["floor"] = timed(get, floor, keys)

    def ident(x: Any) -> Any:
        return x

    calls = keys[: min(n, 1000)] * max(1, n // 1000)
    lru_cached = functools.lru_cache(maxsize=1024)(ident)
    for k in calls[:1000]:
        lru_cached(k)
    cases["cached-hit"]["functools"] = timed(call, lru_cached, calls)
    for name, module in _modules().items():
        lru = _filled(module.LRUCache(n), keys)
        ttl = _filled(module.TTLCache(n, ttl=1e9), keys)
        cases["lru-hit"][name] = timed(hit, lru, keys)
        cases["lru-get"][name] = timed(get, lru, keys)
        cases["ttl-hit"][name] = timed(hit, ttl, keys)
        cases["ttl-get"][name] = timed(get, ttl, keys)
        cases["lru-set-new"][name] = set_new(functools.partial(module.LRUCache, n))
        wrapped = module.cached(module.LRUCache(1024))(ident)
        for k in calls[:1000]:
            wrapped(k)
        cases["cached-hit"][name] = timed(call, wrapped, calls)
    return cases


def run(quick: bool, n: int | None = None, rounds: int | None = None) -> list[dict[str, Any]]:
    """Measure every row; implementations interleaved round by round, gc off."""
    n = n or (1_000 if quick else 10_000)
    rounds = rounds or (3 if quick else 9)
    cases = _cases(n)
    samples: dict[tuple[str, str], list[float]] = {}
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for row, impls in cases.items():
                for name, one in impls.items():
                    samples.setdefault((row, name), []).append(one())
    finally:
        if enabled:
            gc.enable()
    out: list[dict[str, Any]] = []
    for row, (title, ref, target) in ROWS.items():
        ref_ns = statistics.median(samples[(row, ref)]) if (row, ref) in samples else None
        for name in cases[row]:
            ns = statistics.median(samples[(row, name)])
            out.append(
                {
                    "section": "cachetools",
                    "row": row,
                    "title": title,
                    "impl": name,
                    "ns": ns,
                    "reference": ref,
                    "ratio": None if ref_ns is None else ns / ref_ns,
                    "target": target if name == "novacache" else None,
                    "n": n,
                    "rounds": rounds,
                }
            )
    return out


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table."""
    lines = [f"{'row':<40}{'impl':<12}{'ns/op':>9}  {'ratio':<18}{'target':>8}"]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"x{r['ratio']:.2f} {r['reference']}"
        target = "" if r["target"] is None else f"<= {r['target']:.1f}"
        lines.append(f"{r['title']:<40}{r['impl']:<12}{r['ns']:>9.1f}  {ratio:<18}{target:>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(format_rows(run(quick="--quick" in sys.argv)))
