"""The operator's subcommands of ``novacache``: ``serve``, ``stats``, ``invalidate``,
``health`` and ``warmup`` (registered by :mod:`novacache.ops.cli`).

``serve`` runs the management API (:mod:`novacache.ops.http`) with uvicorn on the tiers
of ``novacache.toml``. The others talk to a running server over HTTP (httpx; ``--url``,
default the ``[http]`` section's address) or, with ``--direct``, to the configured tiers
themselves. Tables for people, ``--json`` for scripts.

Exit codes (:data:`EXIT_CODES`): 0 done and healthy; 1 done with problems (an
invalidation with tier errors, a degraded cache, a failed warmup job); 2 bad usage or a
bad configuration file; 3 the server or a tier cannot be reached, or the cache is
unhealthy; 4 the server refused the request (401, 413, 422, 429, 503).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigurationError, NovaCacheError

__all__ = ["COMMANDS", "EXIT_CODES", "add_parsers", "run"]

OK, PROBLEMS, USAGE, UNREACHABLE, REFUSED = 0, 1, 2, 3, 4
EXIT_CODES = {
    OK: "done (and healthy)",
    PROBLEMS: "done with problems: tier errors, degraded, a failed job",
    USAGE: "bad usage or configuration file",
    UNREACHABLE: "the server or a tier cannot be reached, or the cache is unhealthy",
    REFUSED: "the server refused the request",
}
COMMANDS = ("serve", "stats", "invalidate", "health", "warmup")
CONFIG_ENV = "NOVACACHE_CONFIG"
TOKEN_ENV = "NOVACACHE_TOKEN"


class _Exit(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- the parsers ------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, client: bool = True) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        help=f"the configuration file (default: ${CONFIG_ENV}, else ./novacache.toml "
        "when it exists, else the embedded defaults)",
    )
    if client:
        parser.add_argument(
            "--url", help="the server (default: the [http] section's address of the config)"
        )
        parser.add_argument(
            "--direct",
            action="store_true",
            help="talk to the configured tiers directly instead of a server",
        )
        parser.add_argument("--json", action="store_true", help="print JSON (for scripts)")
        parser.add_argument(
            "--timeout", type=float, default=10.0, help="seconds per HTTP request (default 10)"
        )


def add_parsers(sub: Any) -> None:
    """Add the operator's subcommands to the ``novacache`` parser's subparsers."""
    codes = "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())
    serve = sub.add_parser(
        "serve",
        help="serve the HTTP management API (uvicorn) on the configured tiers",
        description="Run the management API (docs/http.md) with one uvicorn worker on the "
        "tiers of novacache.toml. Refuses to start without a token ([http] token_env or "
        "token_file) unless [http] insecure = true.",
    )
    _common(serve, client=False)
    serve.add_argument("--host", help="listen address (default: [http] host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: [http] port, 8750)")
    serve.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    stats = sub.add_parser(
        "stats",
        help="print the cache's counters per layer",
        description=f"The server's /api/cache/stats, or (--direct) the configured tiers' "
        f"sizes and ping times. Exit codes: {codes}.",
    )
    _common(stats)
    inval = sub.add_parser(
        "invalidate",
        help="invalidate keys, patterns or tags",
        description=f"Invalidate in every tier and every process's L1. Without --force the "
        f"server queues it in its batch invalidator (202). --direct runs it here, forced. "
        f"Exit codes: {codes}.",
    )
    _common(inval)
    inval.add_argument("keys", nargs="*", metavar="KEY", help="keys to invalidate")
    inval.add_argument("--pattern", action="append", default=[], help="a glob; repeatable")
    inval.add_argument("--tag", action="append", default=[], help="a tag; repeatable")
    inval.add_argument(
        "--force",
        action="store_true",
        help="done before the answer, with per-tier counts (needed for a pattern that "
        "begins with a wildcard)",
    )
    health = sub.add_parser(
        "health",
        help="print the cache's health",
        description=f"The server's /api/cache/health, or (--direct) a ping of each "
        f"configured tier. Exit codes: {codes}.",
    )
    _common(health)
    warm = sub.add_parser(
        "warmup",
        help="start a warmup job on the server",
        description=f"POST /api/cache/warmup; --wait follows the job until it ends. "
        f"Exit codes: {codes}.",
    )
    _common(warm)
    warm.add_argument("type", choices=("vm_metadata", "resource_allocation", "migration_state"))
    warm.add_argument("--scope", choices=("node", "cluster", "all"), default="all")
    warm.add_argument("--target", action="append", default=[], help="a node id; repeatable")
    warm.add_argument("--priority", choices=("low", "normal", "high"), default="normal")
    warm.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a parameter (the value is JSON, or a plain string); repeatable",
    )
    warm.add_argument("--wait", action="store_true", help="wait for the job and show progress")


# -- running them -----------------------------------------------------------------------


def load_config(path: Path | None) -> Any:
    """The configuration: ``path``, ``$NOVACACHE_CONFIG``, ``./novacache.toml``, or the
    defaults (an embedded SQLite store under the current directory)."""
    from .. import config

    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None and Path("novacache.toml").is_file():
        path = Path("novacache.toml")
    if path is None:
        return config.parse(
            {"tiers": {"sqlite": {"path": "novacache-cache.db"}}}, file="(defaults)"
        )
    return config.load(path)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run one of :data:`COMMANDS`; its exit code."""
    out = out or sys.stdout
    try:
        cfg = load_config(args.config)
        if args.command == "serve":
            return _serve(args, cfg)
        handler = _DIRECT if getattr(args, "direct", False) else _REMOTE
        return handler[args.command](args, cfg, out)
    except _Exit as exc:
        print(f"novacache {args.command}: {exc.message}", file=sys.stderr)
        return exc.code
    except ConfigurationError as exc:
        print(f"novacache {args.command}: {exc}", file=sys.stderr)
        return USAGE
    except NovaCacheError as exc:
        print(f"novacache {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return UNREACHABLE


def _serve(args: argparse.Namespace, cfg: Any) -> int:
    import asyncio

    try:
        import uvicorn
    except ImportError:
        raise _Exit(USAGE, "needs uvicorn and starlette: pip install 'novacache[http]'") from None
    from .http import create_app

    http = cfg.http
    if http.token is None and not http.insecure:
        raise _Exit(
            USAGE,
            f"{cfg.path or 'the configuration'}: [http] has no token (token_env or "
            "token_file); set insecure = true to serve without one",
        )
    host = args.host or http.host
    port = http.port if args.port is None else args.port

    async def main() -> None:
        manager = await cfg.open_async_manager()
        monitor: Any = None
        collector: Any = None
        try:
            from .health import HealthMonitor

            monitor = HealthMonitor(manager)
            await monitor.astart()
            metrics, latency, collector = _metrics(manager, monitor)
            warmers = _warmers(http.warmers, manager, cfg.path)
            app = create_app(
                manager,
                token=http.token,
                insecure=http.insecure,
                protect_reads=http.protect_reads,
                max_body_bytes=http.max_body_bytes,
                max_keys=http.max_keys,
                max_warmup_jobs=http.max_warmup_jobs,
                health=monitor,
                metrics=metrics,
                latency=latency,
                warmers=warmers,
            )
            server = _server_class(uvicorn)(
                uvicorn.Config(
                    app,
                    host=host,
                    port=port,
                    log_level=args.log_level,
                    workers=1,
                    server_header=False,
                    lifespan="on",
                )
            )
            await server.serve()
        finally:
            if monitor is not None:
                await monitor.astop()
            if collector is not None:
                collector.close()
            await manager.close()

    asyncio.run(main())
    return OK


def _metrics(manager: Any, monitor: Any) -> tuple[Any, Any, Any]:
    """(the /metrics ASGI app, the stats' latency provider, the collector) of
    :mod:`novacache.ops.metrics` on its own registry; ``(None, None, None)`` without
    prometheus-client (``/metrics`` then answers 503)."""
    try:
        from prometheus_client import CollectorRegistry

        from .metrics import MetricsCollector, metrics_app
    except ImportError:
        return None, None, None
    registry = CollectorRegistry()
    collector = MetricsCollector(manager, name="default", health=monitor, registry=registry)
    recorder = collector.recorder
    if recorder is None:
        return metrics_app(registry), None, collector

    def latency() -> dict[str, float | None]:
        """Mean seconds per L2/L3 call since the start, by tier slot."""
        sums: dict[str, list[float]] = {}
        for (_, slot, _), (cumulative, total) in recorder.histograms().items():
            acc = sums.setdefault(slot, [0.0, 0.0])
            acc[0] += total
            acc[1] += cumulative[-1] if cumulative else 0
        return {slot: (t / n if n else None) for slot, (t, n) in sums.items()}

    return metrics_app(registry), latency, collector


def _warmers(spec: str | None, manager: Any, path: Path | None) -> Any:
    """The warmers named by ``[http] warmers = "module:factory"``: ``factory(manager)``
    returns ``{type: domain cache}`` (the domain caches need the platform's sources,
    which only the service knows). ``None``: no warmers (warmup answers 503)."""
    if spec is None:
        return None
    import importlib

    module_name, _, attr = spec.partition(":")
    where = f"{path or 'the configuration'}: http.warmers"
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise _Exit(USAGE, f"{where}: cannot load {spec!r}: {type(exc).__name__}: {exc}") from None
    warmers = factory(manager)
    if not isinstance(warmers, dict):
        raise _Exit(USAGE, f"{where}: {spec} did not return a dict of domain caches")
    return warmers


def _server_class(uvicorn: Any) -> Any:
    """uvicorn's Server that, on SIGINT/SIGTERM, shuts down and returns (so the manager is
    closed and the command exits 0) instead of raising the signal again afterwards."""
    import contextlib
    import signal
    import threading

    class Server(uvicorn.Server):  # type: ignore[misc]
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            signals = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server


# -- over HTTP --------------------------------------------------------------------------


def _client(args: argparse.Namespace, cfg: Any) -> Any:
    try:
        import httpx
    except ImportError:
        raise _Exit(USAGE, "needs httpx: pip install 'novacache[http]'") from None
    token = os.environ.get(TOKEN_ENV) or cfg.http.token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=(args.url or cfg.http.base_url).rstrip("/"),
        headers=headers,
        timeout=args.timeout,
    )


def _call(client: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    import httpx

    try:
        response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise _Exit(UNREACHABLE, f"cannot reach {client.base_url}: {type(exc).__name__}") from None
    try:
        data = response.json()
    except ValueError:
        data = {"error": "bad_response", "detail": response.text[:200]}
    if response.status_code == 401:
        raise _Exit(
            REFUSED, f"401: {data.get('detail', '')} (set ${TOKEN_ENV} or the config's token)"
        )
    if response.status_code >= 400 and not (
        path == "/api/cache/health" and response.status_code == 503 and "status" in data
    ):
        detail = data.get("detail", "") if isinstance(data, dict) else ""
        raise _Exit(REFUSED, f"{response.status_code}: {detail}")
    return response.status_code, data


def _print(out: TextIO, args: argparse.Namespace, data: Any, table: str) -> None:
    if args.json:
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        out.write(table)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    text = [list(header)] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(header))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in text
    ]
    return "\n".join(lines) + "\n"


_LAYER_COLUMNS = (
    "hits",
    "misses",
    "hit_rate",
    "avg_latency_ms",
    "entries",
    "size_bytes",
    "evictions",
    "errors",
)


def _stats_remote(args: argparse.Namespace, cfg: Any, out: TextIO) -> int:
    with _client(args, cfg) as client:
        _, data = _call(client, "GET", "/api/cache/stats")
    rows = [
        [name, *(layer.get(c) for c in _LAYER_COLUMNS)] for name, layer in data["layers"].items()
    ]
    o = data["overall"]
    rows.append(
        [
            "overall",
            o["hits"],
            o["misses"],
            o["hit_rate"],
            None,
            None,
            None,
            None,
            o.get("write_errors"),
        ]
    )
    table = _table(("layer", *_LAYER_COLUMNS), rows)
    extra = {k: v for k, v in o.items() if k not in ("lookups", "hits", "misses", "hit_rate") and v}
    if extra:
        table += "overall: " + ", ".join(f"{k}={v}" for k, v in extra.items()) + "\n"
    _print(out, args, data, table)
    return OK


def _invalidate_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.keys:
        body["keys"] = args.keys
    if args.pattern:
        body["patterns"] = args.pattern
    if args.tag:
        body["tags"] = args.tag
    if not body:
        raise _Exit(USAGE, "name at least one KEY, --pattern or --tag")
    return body


def _invalidate_table(data: dict[str, Any]) -> str:
    if not data.get("forced"):
        return (
            f"queued {data['queued']} items (id {data['id']}): "
            "the server's batch invalidator runs them\n"
        )
    rows = [[slot, n, data["errors"].get(slot)] for slot, n in sorted(data["dropped"].items())]
    rows += [
        [slot, 0, err]
        for slot, err in sorted(data["errors"].items())
        if slot not in data["dropped"]
    ]
    head = f"invalidated {data['keys']} keys (id {data['id']})"
    if data.get("scanned"):
        head += f", {data['scanned']} scanned"
    if data.get("truncated"):
        head += ", TRUNCATED (a bound was hit: some keys may be left)"
    return head + "\n" + _table(("tier", "dropped", "error"), rows)


def _invalidate_remote(args: argparse.Namespace, cfg: Any, out: TextIO) -> int:
    body = _invalidate_body(args)
    body["force"] = args.force
    with _client(args, cfg) as client:
        _, data = _call(client, "POST", "/api/cache/invalidate", body)
    _print(out, args, data, _invalidate_table(data))
    return OK if data.get("ok", True) else PROBLEMS


def _health_table(data: dict[str, Any]) -> str:
    rows = [
        [name, h.get("status"), h.get("latency_s"), h.get("consecutive_failures")]
        for name, h in data["layers"].items()
    ]
    head = f"status: {data['status']}"
    if data.get("uptime_s") is not None:
        head += f"  uptime: {data['uptime_s']:.0f} s"
    if data.get("checked_at"):
        head += (
            f"  checked: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(data['checked_at']))}"
        )
    return head + "\n" + _table(("layer", "status", "latency_s", "failures"), rows)


def _health_code(status: str) -> int:
    return {"healthy": OK, "degraded": PROBLEMS}.get(status, UNREACHABLE)


def _health_remote(args: argparse.Namespace, cfg: Any, out: TextIO) -> int:
    with _client(args, cfg) as client:
        _, data = _call(client, "GET", "/api/cache/health")
    _print(out, args, data, _health_table(data))
    return _health_code(data["status"])


def _params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise _Exit(USAGE, f"--param {item!r} is not NAME=VALUE")
        try:
            out[name] = json.loads(text)
        except ValueError:
            out[name] = text
    return out


def _warmup_remote(args: argparse.Namespace, cfg: Any, out: TextIO) -> int:
    body = {
        "type": args.type,
        "scope": args.scope,
        "targets": args.target,
        "priority": args.priority,
        "parameters": _params(args.param),
    }
    with _client(args, cfg) as client:
        _, job = _call(client, "POST", "/api/cache/warmup", body)
        while args.wait and job["state"] in ("queued", "running"):
            if not args.json:
                p = job["progress"]
                total = p["total"] if p["total"] is not None else "?"
                print(
                    f"\r{job['id']}: {job['state']} {p['done']}/{total}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            time.sleep(0.2)
            _, job = _call(client, "GET", f"/api/cache/warmup/{job['id']}")
        if args.wait and not args.json:
            print(file=sys.stderr)
    r = job.get("result") or {}
    table = f"warmup {job['id']}: {job['type']} scope={job['scope']} {job['state']}"
    if r:
        table += (
            f": loaded {r['loaded']}, skipped {r['skipped']}, failed {r['failed']}"
            f" in {r['seconds']:.2f} s"
        )
    if job.get("error"):
        table += f": {job['error']}"
    _print(out, args, job, table + "\n")
    if job["state"] == "failed" or r.get("failed"):
        return PROBLEMS
    return OK


# -- directly on the tiers --------------------------------------------------------------


def _ping_all(manager: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for slot, tier in manager._below:
        try:
            seconds = tier.ping()
            out[slot] = {"kind": type(tier).__name__, "status": "up", "latency_s": float(seconds)}
        except NovaCacheError as exc:
            out[slot] = {
                "kind": type(tier).__name__,
                "status": "down",
                "latency_s": None,
                "error": f"{type(exc).__name__}: {exc}",
            }
    return out


def _stats_direct(args: argparse.Namespace, cfg: Any, out: TextIO) -> int:
    manager = cfg.open_manager()
    try:
        layers = _ping_all(manager)
        for slot, tier in manager._below:
            usage = getattr(tier, "usage", None)
            entries = size = None
            if usage is not None and layers[slot]["status"] == "up":
                try:
                    entries, size = usage()
                except NovaCacheError:
                    pass
            layers[slot].update(entries=entries, size_bytes=size)
    finally:
        manager.close()
    rows = [
        [slot, d["kind"], d["status"], d["latency_s"], d["entries"], d["size_bytes"]]
        for slot, d in layers.items()
    ]
    data = {"layers": layers}
    _print(
        out,
        args,
        data,
        _table(("layer", "kind", "status", "ping_s", "entries", "size_bytes"), rows),
    )
    return OK if all(d["status"] == "up" for d in layers.values()) else UNREACHABLE


def _invalidate_direct(args: argparse.Namespace, cfg: Any, out: TextIO) -> int:
    from ..invalidation import InvalidationEngine

    body = _invalidate_body(args)
    manager = cfg.open_manager()
    try:
        if manager.bus is not None:
            _wait_bus(manager.bus)
        engine = InvalidationEngine(manager)
        report = engine.invalidate(
            body.get("keys", ()), patterns=body.get("patterns", ()), tags=body.get("tags", ())
        )
    finally:
        manager.close()
    data = {"id": "direct", "forced": True, **report.summary()}
    _print(out, args, data, _invalidate_table(data))
    return OK if report.ok else PROBLEMS


def _wait_bus(bus: Any, seconds: float = 2.0) -> None:
    """Give the bus a moment to subscribe (its messages are published either way)."""
    deadline = time.monotonic() + seconds
    while not bus.healthy and time.monotonic() < deadline:
        time.sleep(0.01)


def _health_direct(args: argparse.Namespace, cfg: Any, out: TextIO) -> int:
    manager = cfg.open_manager()
    try:
        layers = _ping_all(manager)
    finally:
        manager.close()
    up = [d["status"] == "up" for d in layers.values()]
    status = "healthy" if all(up) else "degraded" if any(up) else "unhealthy"
    data = {"status": status, "layers": layers, "checked_at": time.time(), "uptime_s": None}
    _print(out, args, data, _health_table(data))
    return _health_code(status)


def _warmup_direct(args: argparse.Namespace, cfg: Any, out: TextIO) -> int:
    raise _Exit(USAGE, "warmup runs on a server (its domain caches and sources): drop --direct")


_REMOTE = {
    "stats": _stats_remote,
    "invalidate": _invalidate_remote,
    "health": _health_remote,
    "warmup": _warmup_remote,
}
_DIRECT = {
    "stats": _stats_direct,
    "invalidate": _invalidate_direct,
    "health": _health_direct,
    "warmup": _warmup_direct,
}
