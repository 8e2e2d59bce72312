"""The timer: one compiled loop per implementation and operation, interleaved rounds.

Each measurement times a plain Python loop over a whole key list, the way ``timeit``
does: the loop is a function compiled from source *once per case* (so CPython's
specialising interpreter adapts each loop to one container type and never has to
de-specialise it for another), the clock is read once before and once after the loop,
and the garbage collector is disabled while the loop runs. The statement inside the
loop has the same shape for every implementation, for example ``c[k]`` or
``c.get(k)`` (the bound method is looked up inside the loop, for everyone, as user
code does).

Rounds are interleaved: round ``r`` runs every case once (in an order rotated from one
round to the next), so a slow phase of a shared machine hits every implementation
alike. The first round is a warm-up and is discarded. The result of a case is the
median of its rounds, in nanoseconds per operation.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["STATEMENTS", "Case", "compile_loop", "run_interleaved"]

#: The loop bodies, by operation: ``c`` is the container (or the memoized function),
#: ``k`` the key, ``v`` the value to store.
STATEMENTS: dict[str, str] = {
    "empty": "pass",
    "getitem": "c[k]",
    "get": "c.get(k)",
    "setitem": "c[k] = v",
    "call": "c(k)",
    # The cache-aside loop of ``bench --traces``: a lookup, and a store on a miss.
    "aside": "if c.get(k) is None: c[k] = v",
}

_TEMPLATE = """
def loop(c, keys, v, _clock=_clock):
    t0 = _clock()
    for k in keys:
        {statement}
    return _clock() - t0
"""

Loop = Callable[[Any, Sequence[Any], Any], int]


def compile_loop(operation: str) -> Loop:
    """A fresh loop function for ``operation`` (a key of :data:`STATEMENTS`).

    It returns the nanoseconds the whole loop took. Call this once per case: every
    call compiles a new code object.
    """
    namespace: dict[str, Any] = {"_clock": time.perf_counter_ns}
    source = _TEMPLATE.format(statement=STATEMENTS[operation])
    exec(compile(source, f"<novacache bench: {operation}>", "exec"), namespace)
    loop: Loop = namespace["loop"]
    return loop


@dataclass
class Case:
    """One thing to time: a loop, a container and the keys it runs over.

    With ``fresh`` set, a new container is built (untimed) before every round, for
    operations that change what the next round would see (inserting new keys).
    ``values`` are stored by set operations, alternately by round, so an overwrite
    always replaces the value with a different object.
    """

    key: tuple[str, ...]
    operation: str
    keys: Sequence[Any]
    container: Any = None
    fresh: Callable[[], Any] | None = None
    values: tuple[Any, Any] = (None, None)

    def __post_init__(self) -> None:
        self.loop = compile_loop(self.operation)
        self.samples: list[float] = []

    def run_once(self, round_index: int) -> float:
        """Time one pass over the keys; nanoseconds per operation."""
        container = self.fresh() if self.fresh is not None else self.container
        value = self.values[round_index % 2]
        enabled = gc.isenabled()
        gc.disable()
        try:
            elapsed = self.loop(container, self.keys, value)
        finally:
            if enabled:
                gc.enable()
        del container
        return elapsed / len(self.keys)


def run_interleaved(cases: Sequence[Case], rounds: int) -> dict[tuple[str, ...], float]:
    """Run every case ``rounds`` times, interleaved; the median ns/op of each case.

    One extra warm-up round runs first and is not counted.
    """
    count = len(cases)
    for r in range(rounds + 1):
        shift = r % count if count else 0
        for case in list(cases[shift:]) + list(cases[:shift]):
            ns = case.run_once(r)
            if r > 0:
                case.samples.append(ns)
    return {case.key: statistics.median(case.samples) for case in cases}
