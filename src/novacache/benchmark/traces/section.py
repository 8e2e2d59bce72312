"""``novacache bench --traces``: miss ratio and ns/request of eviction policies on traces.

Every implementation replays each trace as user code does, cache-aside: ``get``, and
on a miss ``set`` (weight 1). The miss ratio is misses / requests; ns/request is the
wall time of that replay loop over the requests (the loop's own cost included, the
same for everyone; the pure-Python reference policy's time is that of pure Python).

Rows, per trace and cache size (a fraction of the trace's objects):

- ``novacache``: ``LocalCache(maxsize=n)`` (compiled; exact LRU).
- ``novacache-tinylfu``: ``LocalCache(maxsize=n, policy="tinylfu")`` (compiled).
- ``tinylfu (ref)``: :class:`novacache._policy_py.TinyLFUPolicy`, the pure-Python
  reference of the ``"tinylfu"`` policy (the same misses as the compiled one: the
  tests replay both).
- cachebox, lru-dict, cachetools (their LRU classes), theine 2 (adaptive W-TinyLFU on
  a Rust core) and moka-py (TinyLFU), each when installed.
- references, when ``libcachesim`` is installed: its LRU, ARC, LIRS, S3-FIFO, SIEVE,
  W-TinyLFU and Belady (the offline bound), on the same requests (written once to an
  oracleGeneral file in a temporary directory).

The cache-aside rows time ``if c.get(k) is None: c[k] = v`` over the first requests
of the Zipf 0.9 trace for ``LocalCache`` (LRU and tinylfu), cachebox, lru-dict and an unbounded
``dict`` at 1k/10k/100k entries, a fresh container per round, rounds interleaved,
median (:mod:`..timing`).
"""

from __future__ import annotations

import functools
import gc
import importlib
import math
import tempfile
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import timing
from ..peers import version_of
from .formats import Trace, read_trace, write_oracle_general
from .generate import STANDARD_SIZES, TraceSpec, generate, standard_specs

__all__ = [
    "REFERENCE_MIN_CAPACITY",
    "REFERENCE_POLICIES",
    "TraceOptions",
    "format_report",
    "plot",
    "run",
]

Progress = Callable[[str], None]

#: libCacheSim policies run as references: (label, class name).
REFERENCE_POLICIES = (
    ("LRU", "LRU"),
    ("ARC", "ARC"),
    ("LIRS", "LIRS"),
    ("S3-FIFO", "S3FIFO"),
    ("SIEVE", "Sieve"),
    ("W-TinyLFU", "WTinyLFU"),
    ("Belady", "Belady"),
)


#: libCacheSim ends the process on a configuration it refuses (S3-FIFO with an empty
#: small queue): no reference runs below this many entries.
REFERENCE_MIN_CAPACITY = 100


@dataclass(frozen=True)
class TraceOptions:
    """What the trace section replays."""

    n_requests: int = 2_000_000
    n_objects: int = 100_000
    sizes: tuple[float, ...] = STANDARD_SIZES
    #: Names of :func:`standard_specs` traces to run; ``None``: all of them.
    traces: tuple[str, ...] | None = None
    #: Trace files (libCacheSim oracleGeneral or csv), run beside the synthetic ones.
    files: tuple[Path, ...] = ()
    file_format: str | None = None
    #: Implementation names to keep (see :func:`replayers`); ``None``: all.
    impls: tuple[str, ...] | None = None
    references: bool = True
    aside_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    aside_requests: int = 500_000
    rounds: int = 5
    seed: int = 42

    @classmethod
    def quick(cls, **overrides: Any) -> TraceOptions:
        """Small traces and few rounds: a smoke test in seconds."""
        base: dict[str, Any] = {
            "n_requests": 30_000,
            "n_objects": 20_000,
            "aside_sizes": (1_000,),
            "aside_requests": 20_000,
            "rounds": 2,
        }
        base.update(overrides)
        return cls(**base)


@dataclass
class _Replayer:
    name: str
    label: str
    make: Callable[[int], Any] | None
    loop: Callable[[Any, Sequence[int]], int] | None = None
    status: str | None = None
    notes: dict[str, str] = field(default_factory=dict)


_ASIDE_SOURCE = """
def replay(c, keys, _clock=_clock):
    get = c.get
    misses = 0
    t0 = _clock()
    for k in keys:
        if get(k) is None:
            c[k] = k
            misses += 1
    return misses, _clock() - t0
"""

_TUPLE_SOURCE = """
def replay(c, keys, _clock=_clock):
    get = c.get
    put = c.set
    misses = 0
    t0 = _clock()
    for k in keys:
        if not get(k)[1]:
            put(k, k)
            misses += 1
    return misses, _clock() - t0
"""

_SET_SOURCE = """
def replay(c, keys, _clock=_clock):
    get = c.get
    put = c.set
    misses = 0
    t0 = _clock()
    for k in keys:
        if get(k) is None:
            put(k, k)
            misses += 1
    return misses, _clock() - t0
"""


def _compile(source: str) -> Callable[[Any, Sequence[int]], tuple[int, int]]:
    namespace: dict[str, Any] = {"_clock": time.perf_counter_ns}
    exec(compile(source, "<novacache bench --traces>", "exec"), namespace)
    fn: Callable[[Any, Sequence[int]], tuple[int, int]] = namespace["replay"]
    return fn


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def replayers() -> list[_Replayer]:
    """Every implementation the section knows, installed or not, in table order."""
    out: list[_Replayer] = []
    core = _import("novacache._core")
    if core is not None:
        out.append(_Replayer("novacache", "novacache LRU", lambda n: core.LocalCache(maxsize=n)))
        out.append(
            _Replayer(
                "novacache-tinylfu",
                "novacache tinylfu",
                lambda n: core.LocalCache(maxsize=n, policy="tinylfu"),
            )
        )
    else:
        out.append(_Replayer("novacache", "novacache LRU", None, status="n/a: not built"))
        out.append(
            _Replayer("novacache-tinylfu", "novacache tinylfu", None, status="n/a: not built")
        )
    out.append(_Replayer("tinylfu-ref", "tinylfu (pure ref)", None))
    peers: list[tuple[str, str, str, Callable[[Any, int], Any], str]] = [
        ("cachebox", "cachebox", "cachebox", lambda m, n: m.LRUCache(n), _ASIDE_SOURCE),
        ("lru-dict", "lru", "lru-dict", lambda m, n: m.LRU(n), _ASIDE_SOURCE),
        ("cachetools", "cachetools", "cachetools", lambda m, n: m.LRUCache(n), _ASIDE_SOURCE),
        ("theine", "theine", "theine", lambda m, n: m.Cache(n), _TUPLE_SOURCE),
        ("moka-py", "moka_py", "moka-py", lambda m, n: m.Moka(n), _SET_SOURCE),
    ]
    for name, module, dist, make, _ in peers:
        mod = _import(module)
        label = f"{name} {version_of(dist) or ''}".strip()
        if mod is None:
            out.append(_Replayer(name, label, None, status="not installed"))
        else:
            out.append(_Replayer(name, label, functools.partial(make, mod)))
    return out


_SOURCES = {
    "novacache": _ASIDE_SOURCE,
    "novacache-tinylfu": _ASIDE_SOURCE,
    "cachebox": _ASIDE_SOURCE,
    "lru-dict": _ASIDE_SOURCE,
    "cachetools": _ASIDE_SOURCE,
    "theine": _TUPLE_SOURCE,
    "moka-py": _SET_SOURCE,
}


def _replay(rep: _Replayer, capacity: int, ids: Sequence[int]) -> tuple[int, float]:
    """Misses and ns/request of one replay."""
    if rep.name == "tinylfu-ref":
        from ..._policy_py import TinyLFUPolicy

        policy = TinyLFUPolicy(capacity)
        t0 = time.perf_counter_ns()
        counters = policy.replay(ids)
        return counters.misses, (time.perf_counter_ns() - t0) / len(ids)
    assert rep.make is not None
    loop = _compile(_SOURCES[rep.name])
    cache = rep.make(capacity)
    enabled = gc.isenabled()
    gc.disable()
    try:
        misses, ns = loop(cache, ids)
    finally:
        if enabled:
            gc.enable()
    if rep.name == "theine":
        cache.close()
    return misses, ns / len(ids)


def _references(
    ids: array[int], sizes: Sequence[int], workdir: Path, progress: Progress
) -> list[dict[str, Any]]:
    lcs = _import("libcachesim")
    if lcs is None:
        return []
    path = workdir / "trace.oracleGeneral"
    write_oracle_general(path, ids)
    rows: list[dict[str, Any]] = []
    for capacity in sizes:
        if capacity < REFERENCE_MIN_CAPACITY:
            progress(f"  references at {capacity:,}: skipped (below {REFERENCE_MIN_CAPACITY})")
            continue
        for label, cls_name in REFERENCE_POLICIES:
            reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
            cache = getattr(lcs, cls_name)(capacity)
            t0 = time.perf_counter_ns()
            miss_ratio, _ = cache.process_trace(reader)
            ns = (time.perf_counter_ns() - t0) / len(ids)
            rows.append(
                {
                    "impl": f"libCacheSim {label}",
                    "capacity": capacity,
                    "miss_ratio": float(miss_ratio),
                    "ns_per_request": ns,
                    "kind": "reference",
                }
            )
        progress(f"  references at {capacity:,}: done")
    return rows


def _capacities(n_objects: int, sizes: Sequence[float]) -> list[int]:
    return sorted({max(1, math.floor(n_objects * f)) for f in sizes})


def _run_trace(
    name: str,
    description: str,
    ids: array[int],
    n_objects: int,
    options: TraceOptions,
    reps: list[_Replayer],
    progress: Progress,
) -> dict[str, Any]:
    caps = _capacities(n_objects, options.sizes)
    rows: list[dict[str, Any]] = []
    keys = ids.tolist()
    for capacity in caps:
        for rep in reps:
            if rep.status is not None:
                continue
            progress(f"  {name}: {rep.label} at {capacity:,} entries")
            misses, ns = _replay(rep, capacity, keys)
            rows.append(
                {
                    "impl": rep.label,
                    "name": rep.name,
                    "capacity": capacity,
                    "miss_ratio": misses / len(keys),
                    "ns_per_request": ns,
                    "kind": "replay",
                }
            )
    if options.references:
        with tempfile.TemporaryDirectory(prefix="novacache-traces-") as tmp:
            rows.extend(_references(ids, caps, Path(tmp), progress))
    return {
        "trace": name,
        "description": description,
        "requests": len(ids),
        "objects": n_objects,
        "capacities": caps,
        "rows": rows,
    }


def _cache_aside(options: TraceOptions, progress: Progress) -> list[dict[str, Any]]:
    spec = TraceSpec(
        "zipf-0.9",
        "zipf",
        0.9,
        n_requests=options.aside_requests,
        n_objects=max(options.n_objects, max(options.aside_sizes)),
        seed=options.seed,
    )
    keys = generate(spec).tolist()
    makers: list[tuple[str, Callable[[int], Any]]] = [("dict", lambda n: {})]
    core = _import("novacache._core")
    if core is not None:
        makers.append(("novacache", lambda n: core.LocalCache(maxsize=n)))
        makers.append(("novacache tinylfu", lambda n: core.LocalCache(maxsize=n, policy="tinylfu")))
    for mod_name, label, make in (
        ("cachebox", "cachebox", lambda m, n: m.LRUCache(n)),
        ("lru", "lru-dict", lambda m, n: m.LRU(n)),
    ):
        mod = _import(mod_name)
        if mod is not None:
            makers.append((label, functools.partial(make, mod)))
    rows: list[dict[str, Any]] = []
    for size in options.aside_sizes:
        progress(f"cache-aside loop at {size:,} entries ({len(keys):,} requests)")
        cases = [
            timing.Case(
                key=(label,),
                operation="aside",
                keys=keys,
                fresh=functools.partial(mk, size),
                values=(1, 2),
            )
            for label, mk in makers
        ]
        result = timing.run_interleaved(cases, options.rounds)
        base = result[("dict",)]
        box = result.get(("cachebox",))
        lru = result.get(("novacache",))
        for label, _ in makers:
            ns = result[(label,)]
            rows.append(
                {
                    "impl": label,
                    "entries": size,
                    "ns_per_request": ns,
                    "x_dict": ns / base,
                    "x_cachebox": ns / box if box else None,
                    "x_lru": ns / lru if lru else None,
                }
            )
    return rows


def run(options: TraceOptions, progress: Progress = lambda _m: None) -> dict[str, Any]:
    """Run the section; a JSON-ready document (``traces``, ``cache_aside``, ``method``)."""
    reps = replayers()
    if options.impls is not None:
        reps = [r for r in reps if r.name in options.impls]
    specs = standard_specs(options.n_requests, options.n_objects)
    specs = [TraceSpec(**{**s.__dict__, "seed": options.seed}) for s in specs]
    if options.traces is not None:
        specs = [s for s in specs if s.name in options.traces]
    traces: list[dict[str, Any]] = []
    for spec in specs:
        progress(f"trace {spec.name}: {spec.describe()}")
        ids = generate(spec)
        traces.append(
            _run_trace(spec.name, spec.describe(), ids, spec.n_objects, options, reps, progress)
        )
    for path in options.files:
        progress(f"trace file {path}")
        trace: Trace = read_trace(path, options.file_format)
        n_objects = len(set(trace.ids))
        traces.append(
            _run_trace(
                trace.name,
                f"{path} ({len(trace):,} requests, {n_objects:,} objects)",
                trace.ids,
                n_objects,
                options,
                reps,
                progress,
            )
        )
    aside = _cache_aside(options, progress) if options.aside_sizes else []
    skipped = {r.label: r.status for r in replayers() if r.status is not None}
    return {
        "method": {
            "replay": "cache-aside: get, then set on a miss; weight 1",
            "sizes": list(options.sizes),
            "seed": options.seed,
            "libcachesim": version_of("libcachesim") if options.references else None,
            "not_measured": skipped,
        },
        "traces": traces,
        "cache_aside": aside,
    }


def format_report(doc: dict[str, Any]) -> str:
    """The printed tables: per trace, miss ratio (and ns/request) by cache size."""
    lines: list[str] = []
    for tr in doc["traces"]:
        caps: list[int] = tr["capacities"]
        lines.append(f"\n{tr['trace']}: {tr['description']}")
        head = f"  {'miss ratio (ns/req)':<26}" + "".join(f"{c:>17,}" for c in caps)
        lines.append(head)
        by_impl: dict[str, dict[int, dict[str, Any]]] = {}
        for row in tr["rows"]:
            by_impl.setdefault(row["impl"], {})[row["capacity"]] = row
        for impl, cells in by_impl.items():
            out = f"  {impl:<26}"
            for c in caps:
                row = cells.get(c)
                if row is None:
                    out += f"{'-':>17}"
                else:
                    out += f"{row['miss_ratio']:>9.4f} ({row['ns_per_request']:>5.0f})"
            lines.append(out)
    if doc.get("cache_aside"):
        lines.append("\ncache-aside loop (get, set on a miss), Zipf 0.9: ns/request, ratios")
        for row in doc["cache_aside"]:
            box = row["x_cachebox"]
            lru = row.get("x_lru")
            lines.append(
                f"  {row['impl']:<18}{row['entries']:>9,} entries {row['ns_per_request']:>7.1f} ns"
                f"  x{row['x_dict']:.2f} dict"
                + (f"  x{box:.2f} cachebox" if box is not None else "")
                + (f"  x{lru:.2f} LRU" if lru is not None else "")
            )
    skipped = doc["method"].get("not_measured") or {}
    if skipped:
        lines.append("\nnot measured: " + ", ".join(f"{k} ({v})" for k, v in skipped.items()))
    return "\n".join(lines) + "\n"


_PLOTTED = ("novacache LRU", "novacache tinylfu", "theine", "moka-py")
_COLORS = (
    "tab:gray",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "tab:blue",
)


def plot(doc: dict[str, Any], path: Path) -> Path | None:
    """A PNG of miss ratio against cache size, one panel per trace; ``None`` when
    matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    traces = doc["traces"]
    if not traces:
        return None
    cols = min(3, len(traces))
    rows = (len(traces) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    for ax, tr in zip(axes.flat, traces, strict=False):
        series: dict[str, list[tuple[int, float]]] = {}
        for row in tr["rows"]:
            impl: str = row["impl"]
            if impl == "libCacheSim LRU" or (
                row["kind"] == "replay" and not impl.startswith(_PLOTTED)
            ):
                continue  # the other LRUs draw the same line as novacache's
            series.setdefault(impl, []).append((row["capacity"], row["miss_ratio"]))
        for i, (impl, points) in enumerate(series.items()):
            points.sort()
            style = "--" if impl.startswith("libCacheSim") else "-"
            width = 2.5 if impl.startswith("novacache tinylfu") else 1.2
            color = "black" if impl.endswith("Belady") else _COLORS[i % len(_COLORS)]
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                style,
                color=color,
                marker="o",
                markersize=3,
                linewidth=width,
                label=impl.replace("libCacheSim ", ""),
            )
        ax.set_xscale("log")
        ax.set_title(tr["trace"], fontsize=10)
        ax.set_xlabel("cache size (entries)")
        ax.set_ylabel("miss ratio")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(traces) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
