"""The management API: an ASGI app (Starlette) over one cache manager.

:func:`create_app` builds it; ``novacache serve`` runs it with uvicorn, and a service can
mount it in its own Starlette/FastAPI app (``app.mount("/cache", create_app(...))``).
Endpoints, auth, limits and errors: ``docs/http.md``; the OpenAPI 3.1 document is served
at ``/openapi.json`` (:mod:`novacache.ops.openapi`).

Providers the app does not own are injected: ``health`` (a health monitor: ``.last``
and ``check_now()`` / ``acheck_now()``), ``warmers`` (``{type: domain cache with
warmup(...)}``) and ``metrics`` (an ASGI app answering ``GET /metrics``). An endpoint
whose provider is absent answers 503 saying so; nothing pretends to work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import inspect
import itertools
import json
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ConfigurationError, NovaCacheError
from .openapi import PRIORITIES, WARMUP_SCOPES, WARMUP_TYPES, document

__all__ = ["create_app"]

log = logging.getLogger("novacache.http")

_PRIORITY = {name: rank for rank, name in enumerate(reversed(PRIORITIES))}  # high first


class _Problem(Exception):
    """An answer other than success: its status, a short code and a message."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


# Note that ensure_ascii keeps any str (a key with a lone surrogate) encodable. One
# encoder for every answer: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def _dumps(data: Any) -> bytes:
    return _ENCODER.encode(data).encode("ascii")


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(_dumps(data), status, headers, media_type="application/json")


_JSON_TYPE = (b"content-type", b"application/json")
_UNAUTHORIZED_RAW = [(b"www-authenticate", b'Bearer realm="novacache"')]


async def _send(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer ``body`` (JSON) straight over ASGI: what a Starlette ``Response`` sends,
    without building one (the hot endpoints)."""
    raw = [_JSON_TYPE, (b"content-length", b"%d" % len(body))]
    if headers:
        raw += headers
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_problem(send: Send, exc: _Problem) -> None:
    body = _dumps({"error": exc.error, "detail": exc.detail})
    await _send(send, exc.status, body, _UNAUTHORIZED_RAW if exc.status == 401 else None)


def _header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header of an ASGI request (as Starlette decodes it: latin-1)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class _Disconnected(Exception):
    """The client went away before its body was read: nothing to answer."""


def _error(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    return _json({"error": error, "detail": detail}, status, headers)


_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="novacache"'}

_INVALIDATE_FIELDS = frozenset({"keys", "patterns", "tags", "force"})
_SLOTS = frozenset({"local", "remote", "store"})  # the manager's: nothing to escape


def _forced_answer(ident: str, report: Any) -> bytes:
    """The answer to a forced invalidation: ``_dumps({"id": ident, "forced": True,
    **report.summary()})``, written out directly when there is nothing to escape (no
    errors, the manager's own slots; ``ident`` is :meth:`_Api.new_id`'s): the generic
    encoder costs ~4 us a request, a quarter of what the endpoint itself spends."""
    dropped = report.dropped
    if report.errors or not _SLOTS.issuperset(dropped):
        return _dumps({"id": ident, "forced": True, **report.summary()})
    counts = ",".join([f'"{slot}":{int(n)}' for slot, n in dropped.items()])
    cut = "true" if report.truncated else "false"
    ok = "false" if report.truncated else "true"
    return (
        f'{{"id":"{ident}","forced":true,"ok":{ok},"keys":{len(report.keys)},'
        f'"dropped":{{{counts}}},"errors":{{}},"scanned":{int(report.scanned)},'
        f'"truncated":{cut}}}'
    ).encode("ascii")


@dataclass
class _Job:
    id: str
    type: str
    scope: str
    priority: str
    targets: list[str]
    parameters: dict[str, Any]
    created_at: float = field(default_factory=time.time)
    state: str = "queued"
    done: int = 0
    total: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "scope": self.scope,
            "priority": self.priority,
            "state": self.state,
            "progress": {"done": self.done, "total": self.total},
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
        }


def _count(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return 0
    return max(n, 0)


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


class _Api:
    """The app's state and handlers (one per :func:`create_app`)."""

    def __init__(
        self,
        manager: Any,
        *,
        token: str | None,
        protect_reads: bool,
        max_body_bytes: int,
        max_keys: int,
        engine: Any,
        health: Any,
        warmers: Mapping[str, Any] | None,
        metrics: ASGIApp | None,
        latency: Callable[[], Mapping[str, float | None]] | None,
        max_warmup_jobs: int,
        max_warmup_queue: int,
        keep_jobs: int,
        usage_interval: float,
        stats_interval: float,
        batch_interval: float,
    ) -> None:
        self.manager = manager
        self.is_async = bool(getattr(manager, "_async_tiers", False))
        self.token = hashlib.sha256(token.encode()).digest() if token is not None else None
        self.protect_reads = protect_reads
        self.max_body_bytes = max_body_bytes
        self.max_keys = max_keys
        self._engine = engine
        self._batch: Any = None
        self.batch_interval = batch_interval
        self.health = health
        self.warmers = dict(warmers) if warmers is not None else None
        self.metrics = metrics
        self.latency = latency
        self.max_warmup_jobs = max_warmup_jobs
        self.max_warmup_queue = max_warmup_queue
        self.keep_jobs = keep_jobs
        self.usage_interval = usage_interval
        self.stats_interval = stats_interval
        self._stats_body: bytes | None = None
        self._stats_at = -math.inf
        self._stats_building = False
        self._forced: list[tuple[Any, asyncio.Future[Any]]] = []
        self._forcing: asyncio.Task[None] | None = None
        self._usage: dict[str, tuple[int | None, int | None]] = {}
        self._usage_at = -math.inf
        self._usage_lock: asyncio.Lock | None = None
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self.jobs: OrderedDict[str, _Job] = OrderedDict()
        self._queue: asyncio.PriorityQueue[tuple[int, int, _Job]] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.openapi = document(protect_reads=protect_reads)
        self._openapi_body = json.dumps(self.openapi).encode()

    # -- helpers ------------------------------------------------------------------------

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def check_token(self, request: Request) -> None:
        """Raise a 401 unless the request carries the bearer token (compared in
        constant time; no token configured means an insecure app: anything passes)."""
        if self.token is not None:
            self.check_authorization(request.headers.get("authorization", ""))

    def check_authorization(self, header: str | None) -> None:
        """:meth:`check_token` on the ``Authorization`` header's value."""
        if self.token is None:
            return
        header = header or ""
        scheme, _, presented = header.partition(" ")
        given = hashlib.sha256(presented.strip().encode("utf-8", "surrogateescape")).digest()
        # Digests of equal length compared in constant time (compare_digest returns early
        # on a length mismatch: hashing first hides the token's length too); the scheme is
        # checked after, so a wrong scheme and a wrong token take the same time.
        same = hmac.compare_digest(given, self.token)
        if not (same and scheme.lower() == "bearer"):
            raise _Problem(401, "unauthorized", "a valid bearer token is required")

    def check_read(self, request: Request) -> None:
        if self.protect_reads:
            self.check_token(request)

    def check_length(self, length: str | None) -> None:
        """413 when the ``Content-Length`` says the body is too large (422: no number)."""
        if length is not None:
            if not length.isdigit():
                raise _Problem(422, "bad_request", "Content-Length is not a number")
            if int(length) > self.max_body_bytes:
                raise _Problem(
                    413, "too_large", f"the body is larger than {self.max_body_bytes} bytes"
                )

    async def body(self, request: Request) -> dict[str, Any]:
        """The JSON object of the body, within ``max_body_bytes`` (413 past it), or 422."""
        self.check_length(request.headers.get("content-length"))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _Problem(
                    413, "too_large", f"the body is larger than {self.max_body_bytes} bytes"
                )
            chunks.append(chunk)
        return self.parse(b"".join(chunks))

    async def raw_body(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        """:meth:`body` of a plain ASGI request (raises ``_Disconnected`` when the client
        left before its body was read)."""
        self.check_length(_header(scope, b"content-length"))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _Problem(
                    413, "too_large", f"the body is larger than {self.max_body_bytes} bytes"
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return self.parse(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def parse(self, raw: bytes) -> dict[str, Any]:
        """The JSON object ``raw`` holds, or 422."""
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise _Problem(422, "invalid_body", "the body is not a JSON document") from None
        if not isinstance(data, dict):
            raise _Problem(422, "invalid_body", "the body is a JSON object")
        return data

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a manager/engine method: awaited on the asyncio manager, in a worker
        thread on the synchronous one (never blocking the event loop)."""
        if self.is_async:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                return await result
            return result
        return await run_in_threadpool(fn, *args, **kwargs)

    def engine(self) -> Any:
        """The manager's invalidation engine (built on first use when it has none)."""
        if self._engine is None:
            engine = getattr(self.manager, "invalidation", None)
            if engine is None:
                from ..invalidation import AsyncInvalidationEngine, InvalidationEngine

                kind = AsyncInvalidationEngine if self.is_async else InvalidationEngine
                engine = kind(self.manager)
            self._engine = engine
        return self._engine

    def batch(self) -> Any:
        if self._batch is None:
            self._batch = self.engine().batch(interval=self.batch_interval)
        return self._batch

    # -- stats --------------------------------------------------------------------------

    async def usage(self) -> dict[str, tuple[int | None, int | None]]:
        """(entries, bytes) of each tier below that can say (SQLite: kept by triggers;
        PostgreSQL: a count), read at most once per ``usage_interval``."""
        now = time.monotonic()
        if now - self._usage_at < self.usage_interval:
            return self._usage
        if self._usage_lock is None:
            self._usage_lock = asyncio.Lock()
        async with self._usage_lock:
            if time.monotonic() - self._usage_at < self.usage_interval:
                return self._usage
            out: dict[str, tuple[int | None, int | None]] = {}
            for slot, tier in self.manager._below:
                usage = getattr(tier, "usage", None)
                if usage is None:
                    continue
                try:
                    got = await self.call(usage)
                    out[slot] = (_count(got[0]), _count(got[1]))
                except NovaCacheError:
                    out[slot] = (None, None)
            self._usage = out
            self._usage_at = time.monotonic()
        return out

    async def stats(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /api/cache/stats`` (plain ASGI: the hot read endpoint)."""
        try:
            if self.protect_reads:
                self.check_authorization(_header(scope, b"authorization"))
        except _Problem as exc:
            await _send_problem(send, exc)
            return
        await _send(send, 200, await self.stats_body())

    async def stats_body(self) -> bytes:
        """The stats document, serialized: built at most once per ``stats_interval``
        seconds (its ``taken_at`` says when); requests meanwhile get the same bytes. While
        one request rebuilds it, the others get the previous one rather than wait."""
        body = self._stats_body
        interval = self.stats_interval
        if (
            body is not None
            and interval > 0
            and (self._stats_building or time.monotonic() - self._stats_at < interval)
        ):
            return body
        self._stats_building = True
        try:
            started = time.monotonic()
            body = _dumps(await self.stats_data())
        finally:
            self._stats_building = False
        self._stats_body, self._stats_at = body, started
        return body

    async def stats_data(self) -> dict[str, Any]:
        manager = self.manager
        snap = manager.stats.snapshot()
        tiers = snap["tiers"]
        latency = dict(self.latency()) if self.latency is not None else {}
        usage = await self.usage() if self.manager._below else {}
        layers: dict[str, Any] = {}
        lookups = hits = 0
        local = manager.local
        if local is not None:
            s = local.stats
            layers["local"] = {
                "kind": type(local).__name__,
                "hits": s.hits,
                "misses": s.misses,
                "hit_rate": _rate(s.hits, s.hits + s.misses),
                "avg_latency_ms": None,
                "size_bytes": s.currbytes if (s.maxbytes or s.currbytes) else None,
                "entries": s.currsize,
                "evictions": s.evictions,
                "errors": 0,
                "expired": s.expirations,
            }
            lookups = s.hits + s.misses
            hits = s.hits
        for slot, tier in manager._below:
            c = tiers.get(slot, {})
            t_hits, t_misses = c.get("hits", 0), c.get("misses", 0)
            entries, size = usage.get(slot, (None, None))
            seconds = latency.get(slot)
            layers[slot] = {
                "kind": type(tier).__name__,
                "hits": t_hits,
                "misses": t_misses,
                "hit_rate": _rate(t_hits, t_hits + t_misses),
                "avg_latency_ms": seconds * 1e3 if seconds is not None else None,
                "size_bytes": size,
                "entries": entries,
                "evictions": None,
                "errors": c.get("read_errors", 0) + c.get("promote_errors", 0),
                "expired": c.get("expired", 0),
                "corrupt": c.get("corrupt", 0),
            }
            hits += t_hits
            if local is None and not lookups:
                lookups = t_hits + t_misses
        overall = {
            "lookups": lookups,
            "hits": min(hits, lookups),
            "misses": max(lookups - hits, 0),
            "hit_rate": _rate(min(hits, lookups), lookups),
        }
        overall.update((k, v) for k, v in snap.items() if k != "tiers")
        engine = self._engine or getattr(manager, "invalidation", None)
        bus = manager.bus
        return {
            "layers": layers,
            "overall": overall,
            "invalidation": engine.stats.counts if engine is not None else None,
            "bus": (
                {
                    "healthy": bool(bus.healthy),
                    "published": bus.published,
                    "received": bus.received,
                    "flushes": bus.flushes,
                    "publish_errors": bus.publish_errors,
                }
                if bus is not None
                else None
            ),
            "taken_at": time.time(),
        }

    # -- invalidate ---------------------------------------------------------------------

    def _strings(self, data: dict[str, Any], name: str, *, empty_ok: bool) -> list[str]:
        value = data.get(name, [])
        if not isinstance(value, list):
            raise _Problem(422, "invalid_body", f"{name} is a list of strings")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise _Problem(422, "invalid_body", f"{name}[{i}] is not a string")
            if not item and not empty_ok:
                raise _Problem(422, "invalid_body", f"{name}[{i}] is empty")
        return value

    async def invalidate(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /api/cache/invalidate`` (plain ASGI: the hot write endpoint)."""
        try:
            self.check_authorization(_header(scope, b"authorization"))
            data = await self.raw_body(scope, receive)
            status, answer = await self.invalidation(data)
        except _Problem as exc:
            await _send_problem(send, exc)
            return
        except _Disconnected:
            return
        await _send(send, status, answer)

    async def invalidation(self, data: dict[str, Any]) -> tuple[int, bytes]:
        """Run (``force``) or queue the invalidation the body ``data`` asks for: the
        status and the answer (JSON)."""
        if not _INVALIDATE_FIELDS.issuperset(data):
            unknown = sorted(set(data) - _INVALIDATE_FIELDS)
            raise _Problem(422, "invalid_body", f"unknown field {unknown[0]!r}")
        keys = self._strings(data, "keys", empty_ok=True)
        patterns = self._strings(data, "patterns", empty_ok=False)
        tags = self._strings(data, "tags", empty_ok=False)
        force = data.get("force", False)
        if not isinstance(force, bool):
            raise _Problem(422, "invalid_body", "force is true or false")
        n = len(keys) + len(patterns) + len(tags)
        if not n:
            raise _Problem(422, "invalid_body", "name at least one key, pattern or tag")
        if n > self.max_keys:
            raise _Problem(
                413, "too_many_keys", f"{n} keys, patterns and tags: at most {self.max_keys}"
            )
        wide = [p for p in patterns if p[0] in "*?"]
        if wide and not force:
            raise _Problem(
                422,
                "force_required",
                f"pattern {wide[0]!r} begins with a wildcard and can match every key: "
                "send force=true to run it",
            )
        ident = self.new_id()
        try:
            engine = self.engine()
            if not force:
                batch = self.batch()
                await self.call(batch.add, keys, patterns=patterns, tags=tags)
                log.info("invalidation %s queued: %d items", ident, n)
                return 202, _dumps({"id": ident, "forced": False, "queued": n})
            targets = engine.targets(keys, patterns, tags)
            if targets.tags or targets.scans:
                # Alone: their lookups can fail on their own (a cache without a tag
                # index), which must not fail the requests they would have joined.
                report = await self.call(engine.run, targets)
            else:
                report = await self.forced(targets)
        except ConfigurationError as exc:
            raise _Problem(422, "not_supported", str(exc)) from None
        except NovaCacheError as exc:
            raise _Problem(503, "unavailable", str(exc)) from None
        if log.isEnabledFor(logging.INFO):
            log.info(
                "invalidation %s forced: %d keys, dropped %s, errors %s",
                ident, len(report.keys), report.dropped, sorted(report.errors),
            )  # fmt: skip
        return 200, _forced_answer(ident, report)

    async def forced(self, targets: Any) -> Any:
        """Run a forced invalidation of ``targets`` (keys, registered patterns), joined
        with the others that arrive meanwhile: when none is running, it starts at once;
        the ones that arrive while it runs wait for it and then run together, as one
        ``engine.run_many`` (one index read, one pipelined drop per tier, one bus
        message). Each gets its own report, and each is done in every tier and every
        process's L1 when its report is returned."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._forced.append((targets, future))
        if self._forcing is None:
            self._forcing = asyncio.get_running_loop().create_task(self._force())
        return await future

    async def _force(self) -> None:
        try:
            while self._forced:
                waiting, self._forced = self._forced, []
                engine = self.engine()
                try:
                    reports = await self.call(engine.run_many, [t for t, _ in waiting])
                except BaseException as exc:  # each waiting request answers with it
                    stopping = isinstance(exc, asyncio.CancelledError)
                    for _, future in waiting:
                        if not future.done():
                            future.set_exception(
                                NovaCacheError("the server is stopping") if stopping else exc
                            )
                    if stopping:
                        raise
                    continue
                for (_, future), report in zip(waiting, reports, strict=True):
                    if not future.done():
                        future.set_result(report)
        finally:
            self._forcing = None
            for _, future in self._forced:  # cancelled: the server stops
                if not future.done():
                    future.set_exception(NovaCacheError("the server is stopping"))
            self._forced = []

    # -- health -------------------------------------------------------------------------

    async def _report(self) -> Any:
        monitor = self.health
        report = getattr(monitor, "last", None)
        if report is None:
            if hasattr(monitor, "acheck_now"):
                report = await monitor.acheck_now()
            else:
                report = await run_in_threadpool(monitor.check_now)
        return report

    async def health_endpoint(self, request: Request) -> Response:
        self.check_read(request)
        if self.health is None:
            raise _Problem(503, "not_configured", "no health monitor is configured")
        try:
            report = await self._report()
        except NovaCacheError as exc:
            raise _Problem(503, "unavailable", f"the health check failed: {exc}") from None
        layers = {}
        for name, tier in dict(report.tiers).items():
            latency = _finite(getattr(tier, "latency_s", None))
            layers[str(name)] = {
                "status": str(getattr(tier, "status", "unknown")),
                "latency_s": latency if latency is None else max(latency, 0.0),
                "detail": _plain(getattr(tier, "detail", {}) or {}),
                "consecutive_failures": _count_or_none(getattr(tier, "consecutive_failures", None)),
                "consecutive_successes": _count_or_none(
                    getattr(tier, "consecutive_successes", None)
                ),
            }
        stats = await self.stats_data()
        body = {
            "status": report.status,
            "layers": layers,
            "checked_at": _finite(report.checked_at) or 0.0,
            "uptime_s": max(_finite(report.uptime_s) or 0.0, 0.0),
            "metrics": {"overall": stats["overall"], "bus": stats["bus"]},
        }
        return _json(body, 503 if report.status == "unhealthy" else 200)

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if getattr(self.manager, "_closed", False):
            return _json({"status": "closed"}, 503)
        if self.health is not None:
            try:
                report = await self._report()
            except NovaCacheError:
                return _json({"status": "unhealthy"}, 503)
            layers = {str(k): str(getattr(v, "status", "?")) for k, v in report.tiers.items()}
            status = report.status
            return _json(
                {"status": status, "layers": layers}, 503 if status == "unhealthy" else 200
            )
        # No monitor: ping each tier below once (at most 1 s each, together).
        results = await asyncio.gather(*(self._ping(t) for _, t in self.manager._below))
        layers = {
            slot: "up" if ok else "down"
            for (slot, _), ok in zip(self.manager._below, results, strict=True)
        }
        status = "ready" if all(results) else "degraded"
        return _json({"status": status, "layers": layers})

    async def _ping(self, tier: Any) -> bool:
        try:
            await asyncio.wait_for(self.call(tier.ping), 1.0)
        except (NovaCacheError, TimeoutError):
            return False
        return True

    # -- warmup -------------------------------------------------------------------------

    async def warmup(self, request: Request) -> Response:
        self.check_token(request)
        data = await self.body(request)
        unknown = sorted(set(data) - {"type", "scope", "targets", "priority", "parameters"})
        if unknown:
            raise _Problem(422, "invalid_body", f"unknown field {unknown[0]!r}")
        kind = data.get("type")
        if kind not in WARMUP_TYPES:
            raise _Problem(422, "invalid_body", f"type is one of {', '.join(WARMUP_TYPES)}")
        scope = data.get("scope", "all")
        if scope not in WARMUP_SCOPES:
            raise _Problem(422, "invalid_body", f"scope is one of {', '.join(WARMUP_SCOPES)}")
        priority = data.get("priority", "normal")
        if priority not in PRIORITIES:
            raise _Problem(422, "invalid_body", f"priority is one of {', '.join(PRIORITIES)}")
        targets = self._strings(data, "targets", empty_ok=False)
        if len(targets) > self.max_keys:
            raise _Problem(413, "too_many_keys", f"{len(targets)} targets: at most {self.max_keys}")
        parameters = data.get("parameters", {})
        if not isinstance(parameters, dict):
            raise _Problem(422, "invalid_body", "parameters is a JSON object")
        if self.warmers is None or kind not in self.warmers:
            raise _Problem(503, "not_configured", f"no warmer for {kind!r} is configured")
        queue = self._start_workers()
        if queue.qsize() >= self.max_warmup_queue:
            raise _Problem(
                429,
                "busy",
                f"{self.max_warmup_queue} warmup jobs are queued already: retry later",
            )
        job = _Job(self.new_id(), kind, scope, priority, targets, parameters)
        self.jobs[job.id] = job
        self._forget()
        queue.put_nowait((_PRIORITY[priority], next(self._ids), job))
        log.info("warmup %s queued: %s scope=%s targets=%d", job.id, kind, scope, len(targets))
        return _json(job.to_dict(), 202, {"Location": f"/api/cache/warmup/{job.id}"})

    def _forget(self) -> None:
        """Keep at most ``keep_jobs`` finished jobs (the oldest go first); queued and
        running jobs are always kept (at most ``max_warmup_queue`` + ``max_warmup_jobs``)."""
        finished = [i for i, j in self.jobs.items() if j.state in ("done", "failed")]
        for ident in finished[: max(len(finished) - self.keep_jobs, 0)]:
            del self.jobs[ident]

    def _start_workers(self) -> asyncio.PriorityQueue[tuple[int, int, _Job]]:
        if self._queue is None:
            self._queue = asyncio.PriorityQueue()
            self._workers = [
                asyncio.get_running_loop().create_task(self._work(self._queue))
                for _ in range(self.max_warmup_jobs)
            ]
        return self._queue

    async def _work(self, queue: asyncio.PriorityQueue[tuple[int, int, _Job]]) -> None:
        while True:
            _, _, job = await queue.get()
            await self._run(job)

    async def _run(self, job: _Job) -> None:
        assert self.warmers is not None
        cache = self.warmers[job.type]
        job.state = "running"

        def progress(done: int, total: int) -> None:
            job.done = _count(done)
            job.total = _count(total)

        start = time.monotonic()
        try:
            method = cache.warmup
            kwargs = {"parameters": job.parameters, "progress": progress}
            if inspect.iscoroutinefunction(method):
                result = await method(job.scope, job.targets, **kwargs)
            else:
                result = await run_in_threadpool(method, job.scope, job.targets, **kwargs)
        except asyncio.CancelledError:
            job.state, job.error = "failed", "cancelled: the server stopped"
            raise
        except NovaCacheError as exc:
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
            log.warning("warmup %s failed: %s", job.id, job.error)
            return
        except Exception as exc:  # a warmer's own bug: no trace or message leaks out
            job.state, job.error = "failed", f"the warmer raised {type(exc).__name__}"
            log.warning("warmup %s failed: %s", job.id, job.error)
            return
        job.result = {
            "loaded": _count(getattr(result, "loaded", 0)),
            "skipped": _count(getattr(result, "skipped", 0)),
            "failed": _count(getattr(result, "failed", 0)),
            "seconds": max(float(getattr(result, "seconds", time.monotonic() - start)), 0.0),
        }
        job.state = "done"
        log.info("warmup %s done: %s", job.id, job.result)

    async def warmup_job(self, request: Request) -> Response:
        self.check_read(request)
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            raise _Problem(404, "not_found", "no such warmup job (unknown or forgotten)")
        return _json(job.to_dict())

    # -- the rest -----------------------------------------------------------------------

    async def openapi_json(self, request: Request) -> Response:
        return Response(self._openapi_body, media_type="application/json")

    async def metrics_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            self.check_read(request)
            if self.metrics is None:
                raise _Problem(503, "not_configured", "no metrics exporter is configured")
        except _Problem as exc:
            headers = _UNAUTHORIZED if exc.status == 401 else None
            await _error(exc.status, exc.error, exc.detail, headers)(scope, receive, send)
            return
        await self.metrics(scope, receive, send)

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        self._queue = None
        if self._batch is not None:
            batch, self._batch = self._batch, None
            try:
                await self.call(batch.close)
            except NovaCacheError as exc:
                log.warning("closing the batch invalidator: %s", exc)


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, else ``None`` (JSON has no NaN nor infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _count_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return max(value, 0)


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready data (mappings, sequences, scalars; anything else as str)."""
    if depth > 8:
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return str(value)


def _handler(
    api: _Api, method: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await method(request)
        except _Problem as exc:
            headers = _UNAUTHORIZED if exc.status == 401 else None
            return _error(exc.status, exc.error, exc.detail, headers)

    endpoint.__name__ = method.__name__
    return endpoint


class _Asgi:
    """An ASGI callable as a route's endpoint (Starlette calls a plain function with a
    request instead)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _good_token(token: object) -> bool:
    return (
        isinstance(token, str)
        and len(token) >= 16
        and token.isascii()
        and token.isprintable()
        and " " not in token
    )


def create_app(
    manager: Any,
    *,
    token: str | None = None,
    insecure: bool = False,
    protect_reads: bool = False,
    max_body_bytes: int = 1 << 20,
    max_keys: int = 10_000,
    engine: Any = None,
    health: Any = None,
    warmers: Mapping[str, Any] | None = None,
    metrics: ASGIApp | None = None,
    latency: Callable[[], Mapping[str, float | None]] | None = None,
    max_warmup_jobs: int = 2,
    max_warmup_queue: int = 32,
    keep_jobs: int = 256,
    usage_interval: float = 1.0,
    stats_interval: float = 0.1,
    batch_interval: float = 0.05,
) -> Starlette:
    """The management API over ``manager`` (an ``AsyncCacheManager``, or a
    ``CacheManager`` whose calls then run in worker threads).

    :param token: the bearer token every endpoint that changes state requires (and the
        read endpoints too with ``protect_reads``); compared in constant time. Without
        one the app refuses to be built unless ``insecure=True`` (then nothing is
        checked: for a loopback-only tool).
    :param max_body_bytes: a larger body is refused with 413 before it is read whole.
    :param max_keys: keys + patterns + tags (or warmup targets) per request; more: 413.
    :param engine: the invalidation engine (default: ``manager.invalidation``, or one
        built on first use). The non-forced invalidation goes through its batch
        invalidator (flushed every ``batch_interval`` seconds).
    :param health: a health monitor (``.last``, ``check_now()`` or ``acheck_now()``)
        for ``/api/cache/health`` and ``/readyz``; absent: the former answers 503 and
        the latter pings the tiers itself.
    :param warmers: ``{type: domain cache}`` whose ``warmup(scope, targets, *,
        parameters, progress)`` runs a warmup job; at most ``max_warmup_jobs`` run at
        once and ``max_warmup_queue`` wait (more: 429); the last ``keep_jobs`` finished
        jobs can be read back (``GET /api/cache/warmup/{id}``).
    :param metrics: an ASGI app serving ``GET /metrics`` (the Prometheus exposition);
        absent: 503.
    :param latency: ``() -> {slot: mean seconds}`` for the stats' ``avg_latency_ms``
        (absent: ``null``).
    :param usage_interval: the stats read the stores' sizes at most this often (seconds).
    :param stats_interval: ``GET /api/cache/stats`` builds its document at most this
        often (seconds; ``0``: on every request); requests meanwhile get the last one,
        whose ``taken_at`` says when it was taken.

    Raises :class:`~novacache.errors.ConfigurationError` for settings that cannot work.
    """
    if token is None and not insecure:
        raise ConfigurationError(
            "the management API needs a bearer token (token=...), or insecure=True"
        )
    if token is not None and not _good_token(token):
        raise ConfigurationError(
            "a bearer token is a str of at least 16 printable ASCII characters, no spaces"
        )
    for name, value, low in (
        ("max_body_bytes", max_body_bytes, 64),
        ("max_keys", max_keys, 1),
        ("max_warmup_jobs", max_warmup_jobs, 1),
        ("max_warmup_queue", max_warmup_queue, 1),
        ("keep_jobs", keep_jobs, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigurationError(f"{name} must be an int >= {low}, not {value!r}")
    if (
        isinstance(stats_interval, bool)
        or not isinstance(stats_interval, (int, float))
        or not 0 <= stats_interval < math.inf
    ):
        raise ConfigurationError(f"stats_interval must be seconds >= 0, not {stats_interval!r}")
    if not hasattr(manager, "_below") or not hasattr(manager, "stats"):
        raise ConfigurationError("create_app serves a CacheManager or an AsyncCacheManager")
    if warmers is not None:
        for kind, cache in warmers.items():
            if kind not in WARMUP_TYPES or not callable(getattr(cache, "warmup", None)):
                raise ConfigurationError(
                    f"warmers maps {', '.join(WARMUP_TYPES)} to caches with a warmup method"
                )
    api = _Api(
        manager,
        token=token,
        protect_reads=protect_reads,
        max_body_bytes=max_body_bytes,
        max_keys=max_keys,
        engine=engine,
        health=health,
        warmers=warmers,
        metrics=metrics,
        latency=latency,
        max_warmup_jobs=max_warmup_jobs,
        max_warmup_queue=max_warmup_queue,
        keep_jobs=keep_jobs,
        usage_interval=usage_interval,
        stats_interval=stats_interval,
        batch_interval=batch_interval,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await api.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return _error(status, "http_error", str(detail))

    async def server_error(request: Request, exc: Exception) -> Response:
        # No trace, no message (it could hold a key or a value): the type is logged.
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return _error(500, "internal_error", "internal error")

    routes = [
        Route("/api/cache/stats", _Asgi(api.stats), methods=["GET"]),
        Route("/api/cache/invalidate", _Asgi(api.invalidate), methods=["POST"]),
        Route("/api/cache/health", _handler(api, api.health_endpoint), methods=["GET"]),
        Route("/healthz", _handler(api, api.healthz), methods=["GET"]),
        Route("/readyz", _handler(api, api.readyz), methods=["GET"]),
        Route("/api/cache/warmup", _handler(api, api.warmup), methods=["POST"]),
        Route("/api/cache/warmup/{id}", _handler(api, api.warmup_job), methods=["GET"]),
        Route("/openapi.json", api.openapi_json, methods=["GET"]),
        Route("/metrics", _Asgi(api.metrics_endpoint), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found, Exception: server_error},
    )
    app.state.novacache = api
    return app
