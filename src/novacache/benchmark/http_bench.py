"""``novacache bench --only http``: the management API's throughput beside a bare Starlette
endpoint on the same server.

One uvicorn process (one worker, access log off) serves the app of ``novacache serve``
(:func:`novacache.ops.http.create_app` over an ``AsyncCacheManager``: L1 + Redis + the
invalidation bus) with two bare endpoints added to the same router: ``GET /bare`` (a
small JSON answer) and ``POST /bare`` (reads and parses the JSON body, answers a small
JSON). 50 clients (keep-alive HTTP/1.1 connections, one asyncio loop in this process)
send requests back to back for a few seconds per case; the cases are interleaved in
each round (their order rotates), so a machine busy with something else slows them
alike. Reported per case: requests per second (median over rounds), the ratio to its
bare floor measured in the same round (median of the per-round ratios), and the
latency percentiles of every request of every round. Beside them, the CPU time the
server process and the Redis server spent per request (Linux: ``/proc/<pid>/stat``; the
median over rounds) and its ratio (the floor's CPU per request over the row's): on a
machine shared with other jobs it moves far less than req/s, which measures the
machine's load as much as the app.

Rows: ``stats`` (``GET /api/cache/stats``) beside ``GET /bare``, and ``invalidate``
(``POST /api/cache/invalidate``, one key, ``force``: Redis DEL, L1 and the bus message
done before the answer) beside ``POST /bare``. The target (issue 16) is >= 0.8x the bare
endpoint; it is printed, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import novacache

from .redis_server import RedisServer, _child_setup, _free_port

__all__ = ["ROWS", "format_report", "run"]

# (row, method, path, floor path); the floor is the bare endpoint of the same method.
ROWS = (
    ("stats", "GET", "/api/cache/stats", "/bare"),
    ("invalidate", "POST", "/api/cache/invalidate", "/bare"),
)
TARGET = 0.8

_SERVER = """\
import asyncio, json, sys
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from novacache import LocalCache
from novacache.coherence import InvalidationBus
from novacache.manager import AsyncCacheManager
from novacache.ops.http import create_app
from novacache.tiers import AsyncRedisTier, RedisTier

url, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]

async def bare_get(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})

async def bare_post(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"ok": True, "keys": len(body.get("keys", ()))})

async def main() -> None:
    manager = AsyncCacheManager(
        local=LocalCache(100_000),
        remote=AsyncRedisTier(url, prefix="bench-http:"),
        bus=InvalidationBus(RedisTier(url, prefix="bench-http:")),
    )
    for i in range(1000):
        await manager.set(f"vm:{i}", {"id": i, "state": "running"})
    app = create_app(manager, token=token)
    app.router.routes.insert(0, Route("/bare", bare_get, methods=["GET"]))
    app.router.routes.insert(0, Route("/bare", bare_post, methods=["POST"]))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, workers=1, access_log=False, log_level="warning"
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await manager.close()

asyncio.run(main())
"""


def _request(method: str, path: str, token: str, body: bytes = b"") -> bytes:
    head = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {token}",
    ]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _client(
    port: int, requests: list[bytes], until: float, latencies: list[float], statuses: set[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    n = 0
    try:
        while clock() < until:
            request = requests[n % len(requests)]
            n += 1
            start = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(clock() - start)
            statuses.add(int(head[9:12]))
    finally:
        writer.close()


async def _load(
    port: int, requests: list[list[bytes]], seconds: float
) -> tuple[float, list[float], set[int]]:
    latencies: list[float] = []
    statuses: set[int] = set()
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(*(_client(port, r, until, latencies, statuses) for r in requests))
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies, statuses


def _cases(token: str, clients: int) -> dict[str, list[list[bytes]]]:
    """Each case's requests per client (a client cycles through its list)."""
    out: dict[str, list[list[bytes]]] = {
        "bare-get": [[_request("GET", "/bare", token)]] * clients,
        "stats": [[_request("GET", "/api/cache/stats", token)]] * clients,
    }
    posts: list[list[bytes]] = []
    bares: list[list[bytes]] = []
    for c in range(clients):
        bodies = [
            json.dumps({"keys": [f"vm:{(c * 20 + i) % 1000}"], "force": True}).encode()
            for i in range(20)
        ]
        posts.append([_request("POST", "/api/cache/invalidate", token, b) for b in bodies])
        bares.append([_request("POST", "/bare", token, b) for b in bodies])
    out["invalidate"] = posts
    out["bare-post"] = bares
    return out


def _cpu_seconds(pid: int | None) -> float | None:
    """The user + system CPU time of process ``pid`` so far (``None``: not known)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _cpu_us(pids: list[int | None]) -> float | None:
    """The CPU seconds of ``pids`` together (``None`` when one is not known)."""
    total = 0.0
    for pid in pids:
        got = _cpu_seconds(pid)
        if got is None:
            return None
        total += got
    return total


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(
    *,
    quick: bool = False,
    rounds: int | None = None,
    seconds: float | None = None,
    clients: int = 50,
    redis: str | None = None,
    pin: str = "split",
    seed: int | None = None,
) -> dict[str, Any]:
    """Measure the rows (see the module docstring); a JSON-able report."""
    rounds = rounds or (2 if quick else 5)
    seconds = seconds or (0.3 if quick else 2.0)
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = client_cpu = None
    if pin != "none" and allowed:
        server_cpu = allowed[0]
        client_cpu = allowed[-1] if pin == "split" else allowed[0]
    redis_server = None
    if redis is None:
        redis_server = RedisServer(cpu=server_cpu).start()
        redis = redis_server.url
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    root = str(Path(novacache.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVER, redis, str(port), token],
            env=env,
            stdout=log,
            stderr=log,
            preexec_fn=_child_setup(server_cpu),
        )
        try:
            _wait_up(port, server, log)
            if client_cpu is not None:
                os.sched_setaffinity(0, {client_cpu})
            cases = _cases(token, clients)
            names = list(cases)
            rps: dict[str, list[float]] = {n: [] for n in names}
            cpu: dict[str, list[float]] = {n: [] for n in names}  # us per request
            pids = [
                server.pid,
                redis_server.proc.pid if redis_server and redis_server.proc else None,
            ]
            lat: dict[str, list[float]] = {n: [] for n in names}
            statuses: dict[str, set[int]] = {n: set() for n in names}
            for name in names:  # warm up: connections to Redis, first imports, caches
                asyncio.run(_load(port, cases[name], 0.5))
            for r in range(rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for name in order:
                    before = _cpu_us(pids)
                    got, latencies, seen = asyncio.run(_load(port, cases[name], seconds))
                    after = _cpu_us(pids)
                    rps[name].append(got)
                    if before is not None and after is not None and latencies:
                        cpu[name].append((after - before) / len(latencies) * 1e6)
                    lat[name].extend(latencies)
                    statuses[name] |= seen
                print(
                    f"http round {r + 1}/{rounds}: "
                    + ", ".join(f"{n} {rps[n][-1]:.0f}/s" for n in names),
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            if redis_server is not None:
                redis_server.stop()
    rows = []
    for row, _, path, _floor in ROWS:
        floor = "bare-get" if row == "stats" else "bare-post"
        ratios = [a / b for a, b in zip(rps[row], rps[floor], strict=True) if b]
        has_cpu = len(cpu[row]) == len(cpu[floor]) == rounds
        cpu_ratios = (
            [b / a for a, b in zip(cpu[row], cpu[floor], strict=True) if a] if has_cpu else []
        )
        rows.append(
            {
                "id": row,
                "path": path,
                "floor": floor,
                "rps": statistics.median(rps[row]),
                "floor_rps": statistics.median(rps[floor]),
                "ratio": statistics.median(ratios) if ratios else None,
                "ratios": ratios,
                "p50_ms": _percentile(lat[row], 0.50) * 1e3,
                "p99_ms": _percentile(lat[row], 0.99) * 1e3,
                "floor_p99_ms": _percentile(lat[floor], 0.99) * 1e3,
                "cpu_us": statistics.median(cpu[row]) if has_cpu else None,
                "floor_cpu_us": statistics.median(cpu[floor]) if has_cpu else None,
                "cpu_ratio": statistics.median(cpu_ratios) if cpu_ratios else None,
                "statuses": sorted(statuses[row]),
                "target": TARGET,
            }
        )
    import uvicorn

    return {
        "method": f"{clients} keep-alive clients, {seconds} s per case, {rounds} interleaved "
        f"rounds; one uvicorn worker (server CPU {server_cpu}, clients CPU {client_cpu})",
        "uvicorn": uvicorn.__version__,
        "rows": rows,
    }


def _wait_up(port: int, server: subprocess.Popen[bytes], log: Any) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError("the bench's server did not start:\n" + log.read().decode()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the bench's server did not start within 30 s")


def format_report(doc: dict[str, Any]) -> str:
    """The section's table."""
    lines = [
        f"{'row':<11} {'req/s':>8} {'floor':>10} {'floor req/s':>12} {'ratio':>6} "
        f"{'target':>7} {'p50 ms':>7} {'p99 ms':>7} {'floor p99':>9} {'cpu us':>7} "
        f"{'floor cpu':>9} {'cpu ratio':>9}  statuses"
    ]
    for row in doc["rows"]:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        cpu = [
            f"{row[k]:.{d}f}" if row.get(k) is not None else "-"
            for k, d in (("cpu_us", 0), ("floor_cpu_us", 0), ("cpu_ratio", 2))
        ]
        lines.append(
            f"{row['id']:<11} {row['rps']:>8.0f} {row['floor']:>10} {row['floor_rps']:>12.0f} "
            f"{ratio:>6} {'>=' + str(row['target']):>7} {row['p50_ms']:>7.2f} "
            f"{row['p99_ms']:>7.2f} {row['floor_p99_ms']:>9.2f} {cpu[0]:>7} {cpu[1]:>9} "
            f"{cpu[2]:>9}  {row['statuses']}"
        )
    lines.append(
        doc["method"] + f"; uvicorn {doc['uvicorn']}; cpu: server + Redis CPU per request, "
        "cpu ratio: the floor's over the row's"
    )
    return "\n".join(lines)
