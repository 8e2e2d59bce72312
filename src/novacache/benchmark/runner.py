"""Which rows ``novacache bench`` has, and how each one is measured.

Every timed row runs each implementation over the same key lists, in two orders:
**insertion** (the order the cache was filled in) and **random** (the same keys
shuffled with a fixed seed). Each timed row also carries an *empty loop* entry (the
same loop with ``pass`` as its body, over the same keys) so the loop's own cost is
visible, and is compared with ``dict`` and with the compiled ``floor`` mapping measured
in the same run (the memoize row with ``functools.lru_cache``, the throughput row with
cachebox).
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import memory, threads
from .peers import LONG_TTL, Implementation, discover, version_of
from .results import BenchResults, Entry, Row
from .timing import STATEMENTS, Case, run_interleaved

if TYPE_CHECKING:
    from .traces.generate import TraceSpec

__all__ = ["ORDERS", "ROW_IDS", "BenchOptions", "cpu_model", "run"]

ORDERS = ("insertion", "random")

#: Row id -> title, in table order.
ROW_TITLES: dict[str, str] = {
    "hit-int": "c[k] hit, int keys",
    "hit-str": "c[k] hit, str keys",
    "hit-ttl": "c[k] hit, entry with a TTL (int keys)",
    "get-hit": "c.get(k) hit (int keys)",
    "get-miss": "c.get(k) miss (int keys)",
    "set-new": "c[k] = v, new key into a full cache (each set evicts one)",
    "overwrite": "c[k] = v, overwrite of an existing key",
    "memoize": "memoize hit, whole call f(k) of a one-argument function",
    "aside": "cache-aside loop over the Zipf 0.9 trace (c.get(k), c[k] = v on a miss)",
    "hit-big": "c[k] hit in random key order, big caches (int keys)",
    "memory": "container bytes per entry (child process, cache filled to n)",
    "threads": "two threads, 90% c.get(k) / 10% c[k] = v, no caller lock",
}
ROW_IDS: tuple[str, ...] = tuple(ROW_TITLES)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchOptions:
    """Knobs of one run (the CLI's options)."""

    size: int = 100_000
    # 11, not fewer: on a shared VM the random-order samples of one case were seen to
    # range 46-108 ns within a run, and the median of 7 still moved by 30%.
    rounds: int = 11
    rows: tuple[str, ...] = ROW_IDS
    seed: int = 1234
    memory_size: int | None = None
    thread_rounds: int = 7
    thread_blocks: int = 20_000
    impls: tuple[str, ...] | None = None
    #: Entries of the cache-aside row's caches, and requests per pass.
    aside_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    aside_requests: int = 500_000
    #: Entries of the big hit row (its caches are filled before it is timed: the 5M
    #: column takes about a minute and a few GB; quick runs use a small size).
    big_sizes: tuple[int, ...] = (1_000_000, 5_000_000)
    big_lookups: int = 1_000_000

    @classmethod
    def quick(cls, **overrides: Any) -> BenchOptions:
        """Small settings for a CI smoke run: seconds, and numbers that mean little."""
        settings: dict[str, Any] = {
            "size": 2_000,
            "rounds": 3,
            "memory_size": 50_000,
            "thread_rounds": 2,
            "thread_blocks": 1_000,
            "aside_sizes": (1_000,),
            "aside_requests": 20_000,
            "big_sizes": (20_000,),
            "big_lookups": 20_000,
        }
        settings.update(overrides)
        return cls(**settings)


def aside_trace_spec(options: BenchOptions) -> TraceSpec:
    """The trace of the cache-aside row: Zipf 0.9, ``aside_requests`` requests over
    100,000 objects (or as many as the largest cache holds), from the bench's seed."""
    from .traces.generate import TraceSpec

    return TraceSpec(
        "zipf-0.9",
        "zipf",
        0.9,
        n_requests=options.aside_requests,
        n_objects=max(100_000, max(options.aside_sizes)),
        seed=options.seed,
    )


def cpu_model() -> str:
    """The CPU model from ``/proc/cpuinfo`` (or :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _identity_function() -> Callable[[Any], Any]:
    """A new trivial one-argument function (one per implementation)."""

    def f(x: Any) -> Any:
        return x

    return f


class _KeySets:
    """The key lists of a run, built once, each in both orders."""

    def __init__(self, n: int, seed: int) -> None:
        rng = random.Random(seed)

        def orders(keys: list[Any]) -> dict[str, list[Any]]:
            shuffled = list(keys)
            rng.shuffle(shuffled)
            return {"insertion": keys, "random": shuffled}

        self.ints = orders(list(range(n)))
        self.strs = orders([f"key:{i}" for i in range(n)])
        self.absent = orders(list(range(n, 2 * n)))


def _fill(container: Any, keys: Sequence[Any]) -> Any:
    for k in keys:
        container[k] = k
    return container


class _Runner:
    def __init__(self, options: BenchOptions, progress: Progress) -> None:
        self.options = options
        self.progress = progress
        impls = discover()
        if options.impls is not None:
            impls = [i for i in impls if i.name in options.impls]
        self.impls = impls
        self.n = options.size
        self.keys = _KeySets(self.n, options.seed)

    def _with_role(self, role: str) -> list[Implementation]:
        return [i for i in self.impls if role in i.roles]

    # -- timed rows ------------------------------------------------------------------

    def _timed_row(
        self,
        row_id: str,
        refs: list[str],
        operation: str,
        keys: dict[str, list[Any]],
        candidates: list[tuple[Implementation, Callable[[], Any] | None, str | None]],
        *,
        fresh: bool = False,
        extra: Sequence[tuple[str, str, str, Any]] = (),
    ) -> Row:
        """Measure one row.

        ``candidates`` are ``(implementation, build, reason)``: ``build`` makes the
        container the loop runs over (filled) or is ``None``, and then ``reason`` (or
        the implementation's status) is printed instead of a number. ``extra`` are
        reference entries ``(name, label, operation, container)``, such as the empty
        loop; ``fresh`` rebuilds the container before every round.
        """
        row = Row(row_id, ROW_TITLES[row_id], "ns/op", list(ORDERS), refs)
        cases: list[Case] = []
        entries: dict[str, Entry] = {}
        for name, label, op, container in extra:
            entries[name] = Entry(name, label)
            for order in ORDERS:
                cases.append(Case((name, order), op, keys[order], container=container))
        for impl, build, reason in candidates:
            entry = Entry(impl.name, impl.label, note=impl.notes.get(row_id))
            entries[impl.name] = entry
            if build is None:
                entry.status = impl.status or reason
                entry.note = None
                continue
            container = build()
            wrong = _check(row_id, impl, container, keys["random"], self.n)
            if wrong is not None:
                entry.status = f"not measured: {wrong}"
                continue
            if fresh:
                del container
                for order in ORDERS:
                    cases.append(Case((impl.name, order), operation, keys[order], fresh=build))
            else:
                for order in ORDERS:
                    cases.append(
                        Case(
                            (impl.name, order),
                            operation,
                            keys[order],
                            container=container,
                            values=(object(), object()),
                        )
                    )
        medians = run_interleaved(cases, self.options.rounds)
        for case in cases:
            name, order = case.key
            entries[name].values[order] = medians[case.key]
            entries[name].samples[order] = list(case.samples)
        row.entries = list(entries.values())
        return row

    def _empty_loop(self) -> tuple[str, str, str, Any]:
        return ("loop", "empty loop", "empty", None)

    def _mapping_candidates(
        self, fill_keys: Sequence[Any]
    ) -> list[tuple[Implementation, Callable[[], Any] | None, str | None]]:
        out: list[tuple[Implementation, Callable[[], Any] | None, str | None]] = []
        for impl in self._with_role("mapping"):
            make = impl.make
            if make is None:
                out.append((impl, None, None))
            else:
                out.append((impl, _builder(make, self.n, fill_keys), None))
        return out

    def row_hit(self, row_id: str) -> Row:
        keys = self.keys.strs if row_id == "hit-str" else self.keys.ints
        return self._timed_row(
            row_id,
            ["dict", "floor"],
            "getitem",
            keys,
            self._mapping_candidates(keys["insertion"]),
            extra=[self._empty_loop()],
        )

    def row_hit_ttl(self) -> Row:
        keys = self.keys.ints
        candidates: list[tuple[Implementation, Callable[[], Any] | None, str | None]] = []
        for impl in self._with_role("mapping"):
            if impl.make_ttl is not None:
                build = _builder(
                    functools.partial(_with_ttl, impl.make_ttl), self.n, keys["insertion"]
                )
                candidates.append((impl, build, None))
            elif impl.make is not None and not impl.bounded:
                # Baselines without TTL: their plain hit, so the ratios mean "what the
                # deadline costs on top of the floor".
                candidates.append((impl, _builder(impl.make, self.n, keys["insertion"]), None))
            elif impl.make is not None:
                candidates.append((impl, None, "no TTL support"))
            else:
                candidates.append((impl, None, None))
        return self._timed_row(
            "hit-ttl", ["dict", "floor"], "getitem", keys, candidates, extra=[self._empty_loop()]
        )

    def row_get(self, row_id: str) -> Row:
        keys = self.keys.absent if row_id == "get-miss" else self.keys.ints
        return self._timed_row(
            row_id,
            ["dict", "floor"],
            "get",
            keys,
            self._mapping_candidates(self.keys.ints["insertion"]),
            extra=[self._empty_loop()],
        )

    def row_set_new(self) -> Row:
        return self._timed_row(
            "set-new",
            ["dict", "floor"],
            "setitem",
            self.keys.absent,
            self._mapping_candidates(self.keys.ints["insertion"]),
            fresh=True,
            extra=[self._empty_loop()],
        )

    def row_overwrite(self) -> Row:
        return self._timed_row(
            "overwrite",
            ["dict", "floor"],
            "setitem",
            self.keys.ints,
            self._mapping_candidates(self.keys.ints["insertion"]),
            extra=[self._empty_loop()],
        )

    def row_memoize(self) -> Row:
        keys = self.keys.ints
        candidates: list[tuple[Implementation, Callable[[], Any] | None, str | None]] = []
        for impl in self._with_role("memoize"):
            decorate = impl.memoize
            if decorate is None:
                candidates.append((impl, None, None))
                continue

            def build(decorate: Any = decorate) -> Any:
                f = decorate(_identity_function(), self.n)
                for k in keys["insertion"]:
                    f(k)
                return f

            candidates.append((impl, build, None))
        return self._timed_row(
            "memoize",
            ["functools"],
            "call",
            keys,
            candidates,
            extra=[self._empty_loop(), ("call", "bare call f(k)", "call", _identity_function())],
        )

    # -- rows over other sizes: the cache-aside loop, big caches ---------------------

    def _sized_row(
        self,
        row_id: str,
        refs: list[str],
        operation: str,
        sizes: Sequence[int],
        keys_for: Callable[[int], list[Any]],
        build_for: Callable[[Implementation, int], Callable[[], Any] | None],
        *,
        fresh: bool,
    ) -> Row:
        """One column per cache size; each size's cases are interleaved (rounds,
        medians) and built only while that size runs, so the big ones never coexist
        with another size's."""
        columns = [f"{n:,}" for n in sizes]
        row = Row(row_id, ROW_TITLES[row_id], "ns/op", columns, refs)
        impls = self._with_role("mapping")
        for impl in impls:
            entry = Entry(impl.name, impl.label, note=impl.notes.get(row_id))
            if impl.make is None:
                entry.status = impl.status
            row.entries.append(entry)
        for n, column in zip(sizes, columns, strict=True):
            self.progress(f"  {row_id}: {n:,} entries")
            keys = keys_for(n)
            cases: list[Case] = []
            for impl in impls:
                build = build_for(impl, n) if impl.make is not None else None
                if build is None:
                    skipped = row.entry(impl.name)
                    if skipped is not None and skipped.status is None:
                        skipped.status = "not run in this row (minutes per pass)"
                    continue
                if fresh:
                    case = Case((impl.name,), operation, keys, fresh=build, values=(1, 2))
                else:
                    case = Case((impl.name,), operation, keys, container=build())
                cases.append(case)
            medians = run_interleaved(cases, self.options.rounds)
            for case in cases:
                measured = row.entry(case.key[0])
                assert measured is not None
                measured.values[column] = medians[case.key]
                measured.samples[column] = list(case.samples)
            del cases
        return row

    def row_aside(self) -> Row:
        from .traces.generate import generate

        trace: list[Any] = []

        def keys_for(n: int) -> list[Any]:
            if not trace:
                trace.extend(generate(aside_trace_spec(self.options)).tolist())
            return trace

        def build_for(impl: Implementation, n: int) -> Callable[[], Any] | None:
            make = impl.make
            if make is None or impl.name in _SLOW:
                return None
            return functools.partial(make, n)

        return self._sized_row(
            "aside",
            ["dict", "cachebox", "novacache"],
            "aside",
            self.options.aside_sizes,
            keys_for,
            build_for,
            fresh=True,
        )

    def row_hit_big(self) -> Row:
        rng = random.Random(self.options.seed)

        def keys_for(n: int) -> list[Any]:
            return [rng.randrange(n) for _ in range(min(n, self.options.big_lookups))]

        def build_for(impl: Implementation, n: int) -> Callable[[], Any] | None:
            make = impl.make
            if make is None or impl.name in _SLOW:
                return None
            return _builder(make, n, range(n))

        return self._sized_row(
            "hit-big",
            ["dict", "floor"],
            "getitem",
            self.options.big_sizes,
            keys_for,
            build_for,
            fresh=False,
        )

    # -- memory and threads ----------------------------------------------------------

    def row_memory(self) -> Row:
        n = self.options.memory_size or self.n
        row = Row("memory", ROW_TITLES["memory"], "B/entry", ["tracemalloc", "RSS"], [])
        for impl in self._with_role("mapping"):
            entry = Entry(impl.name, impl.label)
            row.entries.append(entry)
            if impl.make is None:
                entry.status = impl.status
                continue
            result = memory.measure(impl.name, n)
            if result.error is not None:
                entry.status = result.error
                continue
            if result.tracemalloc is not None:
                entry.values["tracemalloc"] = result.tracemalloc
            if result.rss is not None:
                entry.values["RSS"] = result.rss
            if not impl.bounded:
                entry.note = "unbounded mapping"
        return row

    def row_threads(self) -> Row:
        row = Row(
            "threads",
            ROW_TITLES["threads"],
            "ops/s",
            ["both threads"],
            ["cachebox"],
            higher_is_better=True,
        )
        cases: list[threads.ThroughputCase] = []
        for impl in self._with_role("mapping"):
            entry = Entry(impl.name, impl.label, note=impl.notes.get("threads"))
            row.entries.append(entry)
            if impl.make is None:
                entry.status = impl.status
                entry.note = None
                continue
            cases.append(
                threads.ThroughputCase(
                    impl.name,
                    impl.make,
                    self.n,
                    self.options.thread_blocks,
                    seed=self.options.seed,
                )
            )
        threads.run_interleaved(cases, self.options.thread_rounds)
        for case in cases:
            measured = row.entry(case.name)
            assert measured is not None
            if case.result is None:
                measured.status = case.error or "no result"
            else:
                measured.values["both threads"] = case.result
                measured.samples["both threads"] = list(case.samples)
        return row

    def row(self, row_id: str) -> Row:
        if row_id in ("hit-int", "hit-str"):
            return self.row_hit(row_id)
        if row_id == "hit-ttl":
            return self.row_hit_ttl()
        if row_id in ("get-hit", "get-miss"):
            return self.row_get(row_id)
        if row_id == "set-new":
            return self.row_set_new()
        if row_id == "overwrite":
            return self.row_overwrite()
        if row_id == "memoize":
            return self.row_memoize()
        if row_id == "aside":
            return self.row_aside()
        if row_id == "hit-big":
            return self.row_hit_big()
        if row_id == "memory":
            return self.row_memory()
        if row_id == "threads":
            return self.row_threads()
        raise ValueError(f"unknown row {row_id!r}")


def _check(
    row_id: str, impl: Implementation, container: Any, keys: list[Any], n: int
) -> str | None:
    """Whether ``container`` does what the row times (once, untimed); what is wrong, or None.

    A number for a container that returns wrong values, or that does not evict, would
    be worse than no number. ``keys`` are the keys the row runs over; the container
    was filled with ``k -> k`` (or, for memoize, ``f(k)`` was called for every key).
    """
    sample = keys[:: max(1, len(keys) // 97)]
    if row_id == "memoize":
        ok = all(container(k) == k for k in sample)
        return None if ok else "f(k) returned a wrong value"
    if row_id in ("hit-int", "hit-str", "hit-ttl"):
        ok = all(container[k] == k for k in sample)
        return None if ok else "c[k] returned a wrong value"
    if row_id == "get-hit":
        ok = all(container.get(k) == k for k in sample)
        return None if ok else "c.get(k) returned a wrong value"
    if row_id == "get-miss":
        ok = all(container.get(k) is None for k in sample)
        return None if ok else "c.get(k) found an absent key"
    if row_id == "set-new":
        for k in keys:
            container[k] = k
        if impl.bounded and len(container) != n:
            return f"held {len(container)} entries after {len(keys)} sets, not {n}"
        if impl.name.endswith("tinylfu"):
            return None  # admission may refuse a new key: that is its job
        ok = all(container[k] == k for k in sample)
        return None if ok else "a new key was not stored"
    if row_id == "overwrite":
        marker = object()
        for k in sample:
            container[k] = marker
        ok = all(container[k] is marker for k in sample) and len(container) == n
        return None if ok else "an overwrite was not stored"
    return None


#: Too slow for the big and cache-aside rows (minutes per pass): not run there.
_SLOW = frozenset({"novacache-pure", "cachetools"})


def _with_ttl(make_ttl: Callable[[int, float], Any], n: int) -> Any:
    """A cache of size ``n`` whose entries get :data:`LONG_TTL` by default."""
    return make_ttl(n, LONG_TTL)


def _builder(make: Callable[[int], Any], n: int, keys: Sequence[Any]) -> Callable[[], Any]:
    """A function that makes a container of size ``n`` filled with ``keys``."""

    def build() -> Any:
        return _fill(make(n), keys)

    return build


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages at the start, where the OS has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _method(options: BenchOptions, impls: list[Implementation]) -> dict[str, Any]:
    novacache_core = next((i for i in impls if i.name == "novacache"), None)
    return {
        "size": options.size,
        "rounds": options.rounds,
        "warmup_rounds": 1,
        "memory_size": options.memory_size or options.size,
        "thread_rounds": options.thread_rounds,
        "thread_ops_per_thread": options.thread_blocks * threads.OPS_PER_BLOCK,
        "seed": options.seed,
        "orders": list(ORDERS),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "compiled_core": None if novacache_core is None else novacache_core.available,
        "statements": dict(STATEMENTS),
        "versions": {
            name: version_of(name) for name in ("novacache", "cachetools", "lru-dict", "cachebox")
        },
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average": _load_average(),
        "ttl_seconds": LONG_TTL,
    }


def run(options: BenchOptions, progress: Progress | None = None) -> BenchResults:
    """Measure the rows in ``options.rows``; ``progress`` is told what runs next."""
    say: Progress = progress or (lambda message: None)
    unknown = [r for r in options.rows if r not in ROW_TITLES]
    if unknown:
        raise ValueError(f"unknown rows: {', '.join(unknown)}; known: {', '.join(ROW_IDS)}")
    runner = _Runner(options, say)
    results = BenchResults(_method(options, runner.impls))
    for row_id in ROW_IDS:
        if row_id in options.rows:
            say(f"measuring {row_id}: {ROW_TITLES[row_id]}")
            results.rows.append(runner.row(row_id))
    return results
