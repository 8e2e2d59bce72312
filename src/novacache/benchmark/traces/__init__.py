"""Traces for ``novacache bench --traces``: generators, file readers, the replay section.

- :mod:`.generate`: seeded synthetic traces (Zipf at several alphas, one-time scans,
  loops, popularity reshuffled every N requests), the same with or without numpy.
- :mod:`.formats`: libCacheSim's oracleGeneral (binary) and csv trace files.
- :mod:`.section`: the ``--traces`` section: miss ratio per policy and cache size,
  ns per request, references from libCacheSim (optional), a PNG plot (optional).
"""
