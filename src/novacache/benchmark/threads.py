"""Two threads sharing one cache: 90 % ``c.get(k)``, 10 % ``c[k] = v``; operations/s.

The cache is filled to ``n`` entries (keys ``0..n-1``). Each thread runs its own
precomputed list of blocks of ten operations: nine ``c.get(k)`` on keys drawn uniformly
from ``0..n-1`` and one ``c[k] = k`` on a key drawn from ``0..2n-1`` (so half the sets
overwrite and half insert a new key and evict one, and some gets then miss). Both
threads start at a :class:`threading.Barrier`; throughput is all operations of both
threads divided by the wall time from the first start to the last finish. No lock is
held by the caller, and the interpreter's switch interval is left at its default.

An exception in either thread (an implementation that is not thread-safe may raise) is
reported instead of a number.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OPS_PER_BLOCK", "ThroughputCase", "run_interleaved"]

OPS_PER_BLOCK = 10

_WORKER = """
def worker(c, blocks, barrier, out, slot, _clock=_clock):
    barrier.wait()
    t0 = _clock()
    for k0, k1, k2, k3, k4, k5, k6, k7, k8, k9 in blocks:
        c.get(k0)
        c.get(k1)
        c.get(k2)
        c.get(k3)
        c.get(k4)
        c.get(k5)
        c.get(k6)
        c.get(k7)
        c.get(k8)
        c[k9] = k9
    out[slot] = (t0, _clock())
"""

Worker = Callable[[Any, Sequence[tuple[int, ...]], threading.Barrier, list[Any], int], None]


def _compile_worker() -> Worker:
    namespace: dict[str, Any] = {"_clock": time.perf_counter}
    exec(compile(_WORKER, "<novacache bench: threads>", "exec"), namespace)
    worker: Worker = namespace["worker"]
    return worker


def _blocks(n: int, count: int, rng: random.Random) -> list[tuple[int, ...]]:
    return [
        (*(rng.randrange(n) for _ in range(OPS_PER_BLOCK - 1)), rng.randrange(2 * n))
        for _ in range(count)
    ]


@dataclass
class ThroughputCase:
    """One implementation under the two-thread workload."""

    name: str
    make: Callable[[int], Any]
    n: int
    blocks_per_thread: int
    seed: int = 0
    samples: list[float] = field(default_factory=list)
    error: str | None = None

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        # Each thread gets its own worker code object, specialised for this cache type.
        self._workers = [_compile_worker(), _compile_worker()]
        self._blocks = [_blocks(self.n, self.blocks_per_thread, rng) for _ in range(2)]

    def run_once(self) -> None:
        """One timed burst; appends ops/s to ``samples`` or sets ``error``."""
        if self.error is not None:
            return
        cache = self.make(self.n)
        for k in range(self.n):
            cache[k] = k
        barrier = threading.Barrier(2)
        out: list[Any] = [None, None]
        errors: list[BaseException] = []

        def target(slot: int) -> None:
            try:
                self._workers[slot](cache, self._blocks[slot], barrier, out, slot)
            except BaseException as exc:  # reported, not raised: some peers are unsafe
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=target, args=(s,)) for s in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            exc = errors[0]
            self.error = f"raised {type(exc).__name__}: {exc}"[:80]
            return
        start = min(t0 for t0, _ in out)
        end = max(t1 for _, t1 in out)
        self.samples.append(2 * self.blocks_per_thread * OPS_PER_BLOCK / (end - start))

    @property
    def result(self) -> float | None:
        """Median ops/s, or ``None`` after an error."""
        if self.error is not None or not self.samples:
            return None
        return statistics.median(self.samples)


def run_interleaved(cases: Sequence[ThroughputCase], rounds: int) -> None:
    """Run every case ``rounds`` times, interleaved, after one uncounted warm-up."""
    for r in range(rounds + 1):
        shift = r % len(cases) if cases else 0
        for case in list(cases[shift:]) + list(cases[:shift]):
            kept = len(case.samples)
            case.run_once()
            if r == 0:
                del case.samples[kept:]
