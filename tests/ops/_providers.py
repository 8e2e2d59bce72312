"""Providers the app is given in the tests, written to the contracts of the health
monitor (``novacache.ops.health``) and of the domain caches' warmers
(``novacache.novacron.warmup``): they do real work on the real tiers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from novacache.errors import NovaCacheError


@dataclass(frozen=True)
class TierHealth:
    status: str
    latency_s: float | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    consecutive_failures: int = 0
    consecutive_successes: int = 0


@dataclass(frozen=True)
class HealthReport:
    status: Literal["healthy", "degraded", "unhealthy"]
    tiers: Mapping[str, TierHealth]
    checked_at: float
    uptime_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checked_at": self.checked_at}


class PingMonitor:
    """Pings each tier below the asyncio manager on every check."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.started = time.monotonic()
        self.last: HealthReport | None = None

    async def acheck_now(self) -> HealthReport:
        tiers = {}
        for slot, tier in self.manager._below:
            try:
                seconds = await tier.ping()
                tiers[slot] = TierHealth("healthy", seconds, {"kind": type(tier).__name__}, 0, 1)
            except NovaCacheError as exc:
                tiers[slot] = TierHealth("unhealthy", None, {"error": str(exc)}, 1, 0)
        bad = sum(t.status != "healthy" for t in tiers.values())
        status = "healthy" if not bad else "unhealthy" if bad == len(tiers) else "degraded"
        self.last = HealthReport(status, tiers, time.time(), time.monotonic() - self.started)
        return self.last


@dataclass(frozen=True)
class WarmupResult:
    loaded: int
    skipped: int
    failed: int
    seconds: float


class KeyWarmer:
    """Writes ``<prefix>:<target>`` for each target (or ``parameters["count"]`` keys for
    the cluster scopes) into the manager, reporting progress; waits for ``gate`` first
    when one is given."""

    def __init__(self, manager: Any, prefix: str, gate: asyncio.Event | None = None) -> None:
        self.manager = manager
        self.prefix = prefix
        self.gate = gate
        self.order: list[str] = []

    async def warmup(
        self,
        scope: str,
        targets: Sequence[str],
        *,
        parameters: Mapping[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> WarmupResult:
        start = time.monotonic()
        if self.gate is not None:
            await self.gate.wait()
        count = (parameters or {}).get("count", 3)
        count = count if isinstance(count, int) and 0 <= count <= 10 else 3
        names = list(targets) if scope == "node" else [str(i) for i in range(count)]
        self.order.append(",".join(names))
        loaded = 0
        for i, name in enumerate(names):
            await self.manager.set(f"{self.prefix}:{name}", {"warm": name})
            loaded += 1
            if progress is not None:
                progress(i + 1, len(names))
        return WarmupResult(loaded, 0, 0, time.monotonic() - start)


class BrokenWarmer:
    """A warmer with a bug: its exception message holds a secret."""

    async def warmup(self, scope: str, targets: Sequence[str], **kw: Any) -> WarmupResult:
        raise RuntimeError("password=hunter2 in a traceback")


async def text_metrics(scope: Any, receive: Any, send: Any) -> None:
    """A minimal ASGI exposition endpoint (what prometheus-client's app answers)."""
    body = b"# TYPE novacache_up gauge\nnovacache_up 1\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})
