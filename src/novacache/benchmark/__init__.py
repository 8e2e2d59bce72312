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
- :mod:`.isolated`: runs a section (``codec``, ``cachetools``, ``manager``) in a child
  process.
- :mod:`.manager_bench`, :mod:`.manager_cases`, :mod:`.peers_manager`,
  :mod:`.redis_server`: the ``manager`` section (``--only manager``): the multi-tier
  manager beside bare redis-py / ``redis.asyncio`` and beside dogpile.cache, cashews and
  aiocache, against a ``redis-server`` it starts (``docs/benchmarks.md``).

The peers (cachetools, lru-dict, cachebox) are the ``bench`` extra, never a runtime
dependency: ``pip install novacache[bench]``; the manager's peers are the ``peers``
extra.
"""

from __future__ import annotations

from .runner import ROW_IDS, BenchOptions, run

__all__ = ["ROW_IDS", "BenchOptions", "run"]
