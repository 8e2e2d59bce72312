"""``novacache bench``: novacache's in-process cache beside ``dict`` and its peers.

One module per job:

- :mod:`.peers`: one adapter per implementation (how to build a bounded LRU, with a TTL
  if it has one, and a memoizing decorator if it has one); missing peers are reported,
  never fatal.
- :mod:`.timing`: the timer: one compiled loop per implementation and operation,
  interleaved rounds, median.
- :mod:`.memory`: container bytes per entry, measured in a child process (tracemalloc
  and RSS).
- :mod:`.threads`: two threads, 90 % get / 10 % set, operations per second.
- :mod:`.results`: the records a run produces (and their JSON form).
- :mod:`.report`: the printed table.
- :mod:`.runner`: which rows exist and how each is measured.

The peers (cachetools, lru-dict, cachebox) are the ``bench`` extra, never a runtime
dependency: ``pip install novacache[bench]``.
"""

from __future__ import annotations

from .runner import ROW_IDS, BenchOptions, run

__all__ = ["ROW_IDS", "BenchOptions", "run"]
