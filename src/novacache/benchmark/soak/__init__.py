"""``novacache soak``: N processes x M threads on one Redis and one SQLite file, with
Redis killed, restarted (empty and from its append-only file) and frozen on a schedule;
every operation recorded against single-writer versions, then checked (docs/soak.md).

- :mod:`.runner`: the run (:func:`run`, :class:`SoakOptions`): the server, the workers,
  the faults, the progress line, the final state, the analysis.
- :mod:`.worker`: one process (one ``CacheManager``: L1 + Redis + SQLite + the
  invalidation bus) and its threads.
- :mod:`.check`: the checker (stale reads, their age, percentiles).
- :mod:`.shared`: the record format and the files the processes share.
- :mod:`.server`: the soak's ``redis-server`` and its faults.
- :mod:`.report`: the printed table.
"""

from __future__ import annotations

from .runner import FAULTS, SoakOptions, run

__all__ = ["FAULTS", "SoakOptions", "run"]
