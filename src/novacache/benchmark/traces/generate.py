"""Seeded synthetic request traces: Zipf, Zipf with one-time scans, loops, shifting popularity.

A trace is a sequence of object ids (positive integers). Every trace is a pure function of
its :class:`TraceSpec`: the same spec gives the same ids with or without numpy, on any
machine. That is why the random numbers come from SplitMix64 over a counter (vectorised
with numpy when it is installed, plain integers otherwise) and the Zipf table is built in
plain Python floats either way (numpy's vectorised ``pow`` could round differently).

Kinds (``TraceSpec.kind``):

``zipf``
    Independent draws from a Zipf(``alpha``) popularity over ``n_objects`` objects; the
    rank-to-id map is a seeded permutation, so popular ids are not the small ones.
``scan``
    ``zipf``, and ``scan_fraction`` of the requests are one-time scans: every block of
    ``scan_length / scan_fraction`` requests ends with ``scan_length`` requests for ids
    never seen before nor after (a batch job, a crawler).
``shift``
    ``zipf`` whose rank-to-id permutation is drawn anew every ``shift_every`` requests:
    the popular objects change at once (a new day, a new release).
``loop``
    Half of the requests cycle over ``loop_size`` ids in order (a loop larger than a
    small cache, the pattern that defeats LRU), interleaved with ``zipf`` draws.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "STANDARD_SIZES",
    "TraceSpec",
    "generate",
    "standard_specs",
    "zipf_cdf",
]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_KINDS = ("zipf", "scan", "shift", "loop")

#: Cache sizes of the standard table, as fractions of ``n_objects``.
STANDARD_SIZES = (0.001, 0.01, 0.1)


@dataclass(frozen=True)
class TraceSpec:
    """Everything that determines a synthetic trace (it is regenerated from this)."""

    name: str
    kind: str = "zipf"
    alpha: float = 0.9
    n_requests: int = 2_000_000
    n_objects: int = 100_000
    seed: int = 42
    scan_fraction: float = 0.2
    scan_length: int = 1000
    shift_every: int = 200_000
    loop_size: int = 5000

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}, not {self.kind!r}")
        if self.n_requests < 1 or self.n_objects < 1:
            raise ValueError("n_requests and n_objects must be >= 1")
        if not 0.0 < self.scan_fraction < 1.0:
            raise ValueError("scan_fraction must be in (0, 1)")
        if self.scan_length < 1 or self.shift_every < 1 or self.loop_size < 1:
            raise ValueError("scan_length, shift_every and loop_size must be >= 1")
        if self.alpha < 0.0:
            raise ValueError("alpha must be >= 0")

    def scaled(self, n_requests: int, n_objects: int) -> TraceSpec:
        """The same workload at another length and object count (periods scale too)."""
        f = n_requests / self.n_requests
        return replace(
            self,
            n_requests=n_requests,
            n_objects=n_objects,
            shift_every=max(1, round(self.shift_every * f)),
            loop_size=max(1, round(self.loop_size * n_objects / self.n_objects)),
            scan_length=max(1, round(self.scan_length * n_objects / self.n_objects)),
        )

    def describe(self) -> str:
        """One line for tables and plots."""
        base = f"Zipf {self.alpha:g}"
        if self.kind == "scan":
            base += f" + {self.scan_fraction:.0%} one-time scans"
        elif self.kind == "shift":
            base += f", popularity reshuffled every {self.shift_every:,}"
        elif self.kind == "loop":
            base += f" + 50% loop over {self.loop_size:,}"
        return f"{base} ({self.n_requests:,} requests, {self.n_objects:,} objects)"


def standard_specs(n_requests: int = 2_000_000, n_objects: int = 100_000) -> list[TraceSpec]:
    """The traces of the issue's table, plus Zipf 1.1 and a loop (2M x 100k by default)."""
    specs = [
        TraceSpec("zipf-0.9", "zipf", 0.9),
        TraceSpec("zipf-0.7", "zipf", 0.7),
        TraceSpec("zipf-1.1", "zipf", 1.1),
        TraceSpec("scan", "scan", 0.9),
        TraceSpec("shift", "shift", 0.9),
        TraceSpec("loop", "loop", 0.9),
    ]
    return [s.scaled(n_requests, n_objects) for s in specs]


def _np() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is in the bench extra
        return None
    return numpy


def _splitmix_py(seed: int, start: int, n: int) -> list[int]:
    out = []
    for i in range(start, start + n):
        z = (seed + (i + 1) * _GOLDEN) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        out.append(z ^ (z >> 31))
    return out


def _splitmix_np(np: Any, seed: int, start: int, n: int) -> Any:
    i = np.arange(start + 1, start + n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed & _MASK) + i * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _stream_seed(seed: int, stream: int) -> int:
    # Independent streams per purpose (draws, permutation k, ...): hash the pair.
    return _splitmix_py((seed * 1_000_003 + stream) & _MASK, 0, 1)[0]


def zipf_cdf(n_objects: int, alpha: float) -> list[float]:
    """Cumulative Zipf(``alpha``) weights of ranks 1..n, normalised to end at 1.0."""
    weights = [1.0 / (r**alpha) for r in range(1, n_objects + 1)]
    cdf = list(itertools.accumulate(weights))
    total = cdf[-1]
    return [c / total for c in cdf]


def _uniforms(seed: int, n: int, np: Any) -> Any:
    scale = 1.0 / (1 << 53)
    if np is not None:
        return (_splitmix_np(np, seed, 0, n) >> np.uint64(11)).astype(np.float64) * scale
    return [(x >> 11) * scale for x in _splitmix_py(seed, 0, n)]


def _ranks(cdf: list[float], u: Any, np: Any) -> Any:
    last = len(cdf) - 1
    if np is not None:
        return np.minimum(np.searchsorted(np.asarray(cdf), u, side="right"), last)
    return [min(bisect.bisect_right(cdf, x), last) for x in u]


def _permutation(seed: int, n: int, np: Any) -> Any:
    """A seeded permutation of ``1..n`` (ids are 1-based)."""
    if np is not None:
        keys = _splitmix_np(np, seed, 0, n)
        return np.argsort(keys, kind="stable").astype(np.uint64) + np.uint64(1)
    keys = _splitmix_py(seed, 0, n)
    return array("Q", (i + 1 for i in sorted(range(n), key=keys.__getitem__)))


def generate(spec: TraceSpec, *, use_numpy: bool | None = None) -> array[int]:
    """The ids of ``spec``'s trace, as an ``array('Q')`` of ``n_requests`` positive ints.

    ``use_numpy=None`` uses numpy when installed; the ids are the same either way.
    """
    np = _np() if use_numpy is not False else None
    if use_numpy and np is None:
        raise RuntimeError("numpy is not installed")
    n, m = spec.n_requests, spec.n_objects
    cdf = zipf_cdf(m, spec.alpha)
    if spec.kind == "scan":
        block = max(spec.scan_length + 1, round(spec.scan_length / spec.scan_fraction))
        n_zipf = sum(min(block - spec.scan_length, n - b) for b in range(0, n, block))
    elif spec.kind == "loop":
        n_zipf = n - (n + 1) // 2
    else:
        n_zipf = n
    ranks = _ranks(cdf, _uniforms(_stream_seed(spec.seed, 0), n_zipf, np), np)
    if spec.kind == "shift":
        parts = []
        for k, start in enumerate(range(0, n, spec.shift_every)):
            perm = _permutation(_stream_seed(spec.seed, k + 1), m, np)
            chunk = ranks[start : start + spec.shift_every]
            parts.append(perm[chunk] if np is not None else [perm[r] for r in chunk])
        if np is not None:
            return array("Q", np.concatenate(parts).astype(np.uint64).tobytes())
        return array("Q", itertools.chain.from_iterable(parts))
    perm = _permutation(_stream_seed(spec.seed, 1), m, np)
    ids: Sequence[int]
    ids = perm[ranks].tolist() if np is not None else [perm[r] for r in ranks]
    if spec.kind == "zipf":
        return array("Q", ids)
    out = array("Q")
    if spec.kind == "scan":
        fresh = m + 1
        pos = 0
        for b in range(0, n, block):
            take = min(block - spec.scan_length, n - b)
            out.extend(ids[pos : pos + take])
            pos += take
            scan = min(spec.scan_length, n - b - take)
            out.extend(range(fresh, fresh + scan))
            fresh += scan
        return out
    # loop: even positions cycle over the loop ids (m+1 .. m+loop_size), odd ones are Zipf.
    it = iter(ids)
    for i in range(n):
        out.append(m + 1 + (i // 2) % spec.loop_size if i % 2 == 0 else next(it))
    return out
