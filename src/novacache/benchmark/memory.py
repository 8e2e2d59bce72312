"""Container bytes per entry, measured in a child process.

A fresh interpreter per implementation (``python -m novacache.benchmark.memory NAME N``)
creates ``N`` int keys and ``N`` int values first, then builds the container and fills
it to ``N`` entries. Only the container's own memory is counted, two ways:

- **RSS**: the growth of ``VmRSS`` in ``/proc/self/status``, measured with tracemalloc
  off. It sees every allocator (a Rust or C table too), at page granularity.
- **tracemalloc**: the growth of memory traced by :mod:`tracemalloc` (a second
  container, built after the first was freed). It sees only what goes through Python's
  allocators, exactly; an implementation that allocates with ``malloc`` directly
  (cachebox's table, for instance) shows little or nothing here.

Both are divided by ``N``. The child prints one JSON object on stdout.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MemoryResult", "measure", "vmrss_bytes"]


@dataclass(frozen=True)
class MemoryResult:
    """Bytes per entry for one implementation, or the reason there is no number."""

    tracemalloc: float | None = None
    rss: float | None = None
    error: str | None = None


def vmrss_bytes() -> int | None:
    """This process's resident set size from ``/proc/self/status``; ``None`` off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _fill(container: Any, keys: list[int], values: list[int]) -> None:
    for i in range(len(keys)):
        container[keys[i]] = values[i]


def _child(name: str, n: int) -> dict[str, Any]:
    from .peers import discover

    impl = next(i for i in discover() if i.name == name)
    if impl.make is None:
        return {"error": impl.status or "no container"}
    make = impl.make
    # Created before any measurement: only the container is counted. Values are ints
    # above the small-int cache so that every entry holds its own value object.
    keys = list(range(10_000_000, 10_000_000 + n))
    values = list(range(20_000_000, 20_000_000 + n))
    probe = make(n)
    _fill(probe, keys[:10], values[:10])  # first-use allocations (method caches...)
    del probe
    gc.collect()

    before = vmrss_bytes()
    container = make(n)
    _fill(container, keys, values)
    gc.collect()
    after = vmrss_bytes()
    rss = None if before is None or after is None else (after - before) / n
    del container
    gc.collect()

    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()
    container = make(n)
    _fill(container, keys, values)
    gc.collect()
    end, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"tracemalloc": (end - start) / n, "rss": rss, "len": len(container)}


def _child_env() -> dict[str, str]:
    """The environment for the child: it must import this same novacache."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def measure(name: str, n: int, timeout: float = 120.0) -> MemoryResult:
    """Bytes per entry of implementation ``name`` filled to ``n`` entries."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "novacache.benchmark.memory", name, str(n)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_child_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return MemoryResult(error="timed out")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return MemoryResult(error=f"child failed: {last}")
    data = json.loads(proc.stdout)
    if "error" in data:
        return MemoryResult(error=str(data["error"]))
    if data["len"] != n:
        return MemoryResult(error=f"held {data['len']} entries, not {n}")
    return MemoryResult(tracemalloc=data["tracemalloc"], rss=data["rss"])


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]))))
