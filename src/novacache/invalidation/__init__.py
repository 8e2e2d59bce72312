"""The invalidation engine: event rules, patterns indexed at write time, dependencies,
TTL rules, smart refresh of hot keys, batching and counts (``docs/invalidation.md``).

Build one over a manager; it binds itself to it (``manager.invalidation``)::

    engine = InvalidationEngine(manager, ttl_rules={"vm:": 300})
    engine.rule("vm.migrated", keys=["vm:{vm_id}:state", "node:{src}"],
                patterns=["vm:{vm_id}:metrics:*"])
    report = engine.emit("vm.migrated", vm_id=42, src="n1")

- :class:`InvalidationEngine` / :class:`AsyncInvalidationEngine`: the engine of a
  ``CacheManager`` / ``AsyncCacheManager`` (one source, the same API).
- :class:`BatchInvalidator` / :class:`AsyncBatchInvalidator`: ``engine.batch()``.
- :class:`EventRules`, :class:`Rule`, :class:`Template`, :class:`Targets`,
  :class:`InvalidationStrategy`: the event-driven strategy and the protocol of others.
- :class:`TTLRules`: default TTLs by prefix or pattern.
- :class:`SmartRefresh`: reload hot keys instead of dropping them.
- :class:`EmitReport`, :class:`InvalidationStats`: what an invalidation reports, what is
  counted.
"""

from __future__ import annotations

from ._async.engine import AsyncBatchInvalidator, AsyncInvalidationEngine
from ._sync.engine import BatchInvalidator, InvalidationEngine
from .rules import EventRules, InvalidationStrategy, Rule, Targets, Template, TTLRules
from .smart import SmartRefresh
from .stats import EmitReport, InvalidationStats

__all__ = [
    "AsyncBatchInvalidator",
    "AsyncInvalidationEngine",
    "BatchInvalidator",
    "EmitReport",
    "EventRules",
    "InvalidationEngine",
    "InvalidationStats",
    "InvalidationStrategy",
    "Rule",
    "SmartRefresh",
    "TTLRules",
    "Targets",
    "Template",
]
