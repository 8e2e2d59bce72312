"""The ``manager`` section of ``novacache bench``: the manager's hot paths beside their
floors and the libraries a user would pick instead.

Rows (:data:`ROWS`), each measured as a user calls it, over ``1000`` keys whose values
are 7-field dicts, every entry with a TTL of 300 s:

- ``@manager.cached`` hit served by L1, a one-int-argument function, beside
  ``functools.lru_cache`` on the same function (``novacache.memoize`` shown too); and
  the asyncio form on an ``async def`` returning a value from a dict, beside awaiting
  that function itself (cashews' ``client_side`` decorator shown as a peer).
- ``get_or_load`` hit served by L1, beside ``manager.get`` hitting L1.
- ``get`` served by Redis (a manager without L1), beside the floor: a bare redis-py /
  ``redis.asyncio`` GET plus ``Codec.decode`` of the same frame, on a client configured
  like the tier's; peers dogpile.cache (sync), cashews and aiocache (asyncio).
- the same with an L1 in front, cleared before each pass so each get is served by
  Redis (and the manager's counters must say so), beside the Redis-only manager.
- ``set``, beside a bare SET of ``Codec.encode(seal(v))`` encoded in the loop, as the
  get floor decodes (and, for information, a SET of a frame encoded before); peers.
- 100 asyncio tasks, and 2 threads, of Redis-served gets: operations per second beside
  the floor's; peers.

Method: every round runs every (row, implementation) case once, in an order shuffled
from round to round (one uncounted warm-up round first), over the keys in an order
rotated from round to round. Each case's result is the median over rounds, with the
spread (interquartile range / median); a ratio is the median of the per-round ratios to
the row's reference measured in the same round, with a 95% interval of that median
(:func:`~novacache.benchmark.stats.median_interval`). Each pass checks the last result
(of each task or thread) against the expected value, a set pass also reads the value
back and checks its TTL in Redis: a wrong result from novacache or a floor stops the
run (:class:`~novacache.benchmark.manager_cases.BenchError`), a peer's is reported
beside its name. Targets are printed beside each row (met or not, by the median;
*undecided* when the interval spans the target: the rounds spread more than the margin
between the two); nothing is asserted.

The section starts its own ``redis-server`` on a free loopback port (or uses
``redis=URL``) and pins the client and the server to CPUs where it can (see
``/work/shared/notes/redis-testing.md``: unpinned runs flip between two round-trip
times). It runs in a child process (:mod:`.isolated`).
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .manager_cases import ROWS, Row
from .stats import median_interval, quantile, verdict

__all__ = ["ROWS", "Options", "Row", "format_report", "redis_target", "row_ids", "run", "summarize"]


def row_ids() -> list[str]:
    """The ids of the rows, in order."""
    return [row.id for row in ROWS]


@dataclass(frozen=True)
class Options:
    """How much to measure. ``quick``: a smoke test in seconds (numbers mean little)."""

    keys: int = 1000
    rounds: int = 15
    repeat: int = 20  # passes over the keys per timed run in the L1 rows
    tasks: int = 100
    per_task: int = 20
    per_thread: int = 1000
    seed: int = 1234
    redis: str | None = None  # an existing server's URL; default: start one
    pin: str = "same"  # "same" CPU for client and server, "split" (two CPUs), "none"

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        base: dict[str, Any] = {
            "keys": 200, "rounds": 3, "repeat": 5, "per_task": 4, "per_thread": 200,
        }  # fmt: skip
        base.update(overrides)
        return cls(**base)


# -- pinning and the server ------------------------------------------------------------


def _plan_cpus(pin: str) -> tuple[int | None, int | None]:
    """(client CPU, server CPU) for ``pin``; ``None``: not pinned."""
    if pin == "none" or not hasattr(os, "sched_setaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if pin == "split" and len(allowed) >= 2:
        return allowed[-1], allowed[-2]
    return allowed[-1], allowed[-1]


def redis_target(url: str) -> Any:
    """The :class:`~.peers_manager.RedisTarget` of a ``redis://`` URL; a
    :class:`~novacache.errors.ConfigurationError` for any other kind of server."""
    from ..errors import ConfigurationError
    from ..tiers import RedisConfig
    from .peers_manager import RedisTarget

    config = RedisConfig.from_url(url)
    if config.topology != "standalone" or config.unix_socket_path or config.ssl:
        raise ConfigurationError(
            "the manager section takes a standalone redis://host:port/db URL (no TLS, "
            "Sentinel, Cluster or Unix socket: the peers need host and port)"
        )
    return RedisTarget(config.host, config.port, config.db, config.username, config.password)


def _versions() -> dict[str, str | None]:
    from .peers_manager import PEERS, version

    out = {dist: version(dist) for dist in ("redis", "hiredis")}
    out.update({dist: version(dist) for dist in PEERS})
    return out


# -- measuring -------------------------------------------------------------------------


def measure(
    cases: list[Any], rounds: int, n: int, seed: int, progress: Callable[[str], None]
) -> None:
    """Run every case ``rounds`` times (after one uncounted warm-up round), interleaved:
    each round runs every live case once, in a shuffled order, over the keys rotated by
    a random offset. A novacache or floor case that raises or returns a wrong result
    raises :class:`~.manager_cases.BenchError`; a peer's gets that as its status."""
    from .manager_cases import BenchError

    rng = random.Random(seed)
    started = time.monotonic()
    for r in range(rounds + 1):
        offset = rng.randrange(n)
        order = list(range(offset, n)) + list(range(offset))
        live = [c for c in cases if c.status is None and c.run is not None]
        rng.shuffle(live)
        for case in live:
            try:
                value, problem = case.one_pass(order)
            except Exception as exc:
                value, problem = 0.0, f"raised {type(exc).__name__}: {exc}"
            if problem is not None:
                if case.role == "peer":
                    case.status = f"wrong result: {problem}"[:200]
                    case.samples.clear()
                    progress(f"manager: {case.impl} in {case.row}: {case.status}")
                    continue
                raise BenchError(f"{case.row} / {case.impl}: {problem}")
            if r > 0:
                case.samples[r] = value
        label = "warm-up round" if r == 0 else f"round {r}/{rounds}"
        progress(f"manager: {label} done ({time.monotonic() - started:.0f} s)")


def summarize(cases: list[Any]) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts: each entry's median, spread and ratio to the row's
    reference (median of per-round ratios) with its 95% interval (``ratio_interval``,
    :func:`~novacache.benchmark.stats.median_interval` of the per-round ratios),
    novacache's target, whether it is met (by the median) and whether that is decided
    (the whole interval on the same side of the target; ``False``: another run could
    well say the opposite), and whether novacache is ahead of every peer that has a
    number in the row."""
    out: list[dict[str, Any]] = []
    for row in ROWS:
        order = {impl: i for i, impl in enumerate(row.entries)}
        mine = sorted((c for c in cases if c.row == row.id), key=lambda c: order.get(c.impl, 99))
        ref = next((c for c in mine if c.role == "reference"), None)
        entries: list[dict[str, Any]] = []
        for case in mine:
            entry: dict[str, Any] = {
                "impl": case.impl,
                "label": case.label,
                "role": case.role,
                "status": case.status,
                "unit": row.unit,
            }
            if case.samples and case.status is None:
                values = sorted(case.samples.values())
                median = statistics.median(values)
                p25, p75 = quantile(values, 0.25), quantile(values, 0.75)
                entry.update(
                    median=median,
                    min=values[0],
                    max=values[-1],
                    p25=p25,
                    p75=p75,
                    spread=(p75 - p25) / median if median else None,
                    rounds=len(values),
                )
                if ref is not None and ref.samples:
                    ratios = [case.samples[r] / ref.samples[r] for r in case.samples
                              if r in ref.samples]  # fmt: skip
                    if ratios:
                        entry["ratio"] = statistics.median(ratios)
                        entry["ratio_interval"] = list(median_interval(ratios))
                        entry["ratios"] = ratios
            entries.append(entry)
        nova = next((e for e in entries if e["role"] == "novacache"), None)
        met: bool | None = None
        decided: bool | None = None
        ahead: bool | None = None
        behind: list[str] = []
        if nova is not None and "ratio" in nova:
            met, decided = verdict(
                nova["ratio"], nova["ratio_interval"], row.target, row.higher_is_better
            )
            peers = [e for e in entries if e["role"] == "peer" and "median" in e]
            for peer in peers:
                better = (
                    nova["median"] > peer["median"]
                    if row.higher_is_better
                    else nova["median"] < peer["median"]
                )
                if not better:
                    behind.append(peer["impl"])
            ahead = not behind if peers else None
        out.append(
            {
                **asdict(row),
                "entries": entries,
                "met": met,
                "decided": decided,
                "ahead_of_peers": ahead,
                "behind": behind,
            }
        )
    return out


def run(
    quick: bool, progress: Callable[[str], None] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Measure the section (``overrides``: fields of :class:`Options`); the document that
    ``novacache bench --json`` stores under ``"manager"``."""
    from .._local import compiled
    from .manager_cases import TTL, Bench, make_value
    from .redis_server import RedisServer

    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    opts = Options.quick(**overrides) if quick else Options(**overrides)
    client_cpu, server_cpu = _plan_cpus(opts.pin)
    pinning: dict[str, Any] = {"client": None, "server": None}
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
        pinning["client"] = f"CPU {client_cpu} (sched_setaffinity)"
    server: RedisServer | None = None
    if opts.redis is None:
        say("manager: starting redis-server on a free loopback port")
        server = RedisServer(server_cpu).start()
        url = server.url
        got = server.affinity()
        if server_cpu is not None and got == {server_cpu}:
            pinning["server"] = f"CPU {server_cpu} ({server.pinned_with})"
        server_text = f"redis-server {server.version()} started on 127.0.0.1:{server.port}"
    else:
        url = opts.redis
        pinning["server"] = "external (--redis): not pinned by the bench"
        server_text = "external server (--redis)"
    bench: Bench | None = None
    try:
        target = redis_target(url)
        bench = Bench(
            target,
            n=opts.keys,
            repeat=opts.repeat,
            tasks=opts.tasks,
            per_task=opts.per_task,
            per_thread=opts.per_thread,
            external=server is None,
            progress=say,
        )
        if server is None:
            server_text = f"redis-server {bench.admin().info('server')['redis_version']} (--redis)"
        cases = bench.setup()
        measure(cases, opts.rounds, opts.keys, opts.seed, say)
        rows = summarize(cases)
        notes = dict(bench.notes)
    finally:
        if bench is not None:
            bench.close()
        if server is not None:
            server.stop()
    return {
        "method": {
            "keys": opts.keys,
            "rounds": opts.rounds,
            "warmup_rounds": 1,
            "l1_repeat": opts.repeat,
            "tasks": opts.tasks,
            "per_task": opts.per_task,
            "threads": 2,
            "per_thread": opts.per_thread,
            "seed": opts.seed,
            "ttl": TTL,
            "value": make_value(0),
            "quick": quick,
            "server": server_text,
            "pinning": pinning,
            "python": platform.python_version(),
            "compiled_core": compiled,
            "versions": _versions(),
        },
        "notes": notes,
        "rows": rows,
    }


# -- the table -------------------------------------------------------------------------


_NAME = 70  # width of the implementation column


def _amount(value: float, unit: str) -> str:
    if unit == "ops/s":
        return f"{value:,.0f}/s"
    if value >= 1000:
        return f"{value / 1000:.2f} us"
    return f"{value:.0f} ns"


def format_report(doc: dict[str, Any]) -> str:
    """The section as a plain-text table, with its method, pinning and setup notes."""
    m = doc["method"]
    pin = m["pinning"]
    lines = [
        f"{m['keys']} keys, values a {len(m['value'])}-field dict, TTL {m['ttl']:g} s everywhere;"
        f" {m['rounds']} interleaved rounds (+{m['warmup_rounds']} warm-up), median;"
        " spread = interquartile range / median; ratio = median of per-round ratios to the"
        " row's reference (in parentheses: the 95% interval of that median); met: by the"
        " median, 'undecided' when the interval spans the target",
        f"server: {m['server']}; pinning: client {pin['client'] or 'not pinned'},"
        f" server {pin['server'] or 'not pinned'}",
        "versions: "
        + ", ".join(f"{k} {v or 'not installed'}" for k, v in m["versions"].items())
        + f"; compiled core: {m['compiled_core']}",
        "",
        f"{'row / implementation':<{_NAME}}{'median':>11}{'spread':>8}  {'ratio':<34}"
        f"{'target':>8}  met",
    ]
    for row in doc["rows"]:
        lines.append(row["title"])
        cmp = ">=" if row["unit"] == "ops/s" else "<="
        for e in row["entries"]:
            name = f"  {e['impl']:<20} {e['label']}"
            if len(name) > _NAME - 1:
                name = name[: _NAME - 4] + "..."
            if "median" not in e:
                lines.append(f"{name:<{_NAME}}{e['status'] or 'no number':>11}")
                continue
            ratio = "reference" if e["role"] == "reference" else f"x{e.get('ratio', 0):.3f}"
            if e["role"] != "reference":
                if e.get("ratio_interval"):
                    lo, hi = e["ratio_interval"]
                    ratio += f" ({lo:.2f}-{hi:.2f})"
                ratio += f" {row['reference']}"
            target = met = ""
            if e["role"] == "novacache":
                target = f"{cmp} {row['target']:.2f}"
                met = "yes" if row["met"] else "no"
                if row.get("decided") is False:
                    met += ", undecided"
                if row["ahead_of_peers"] is not None:
                    met += (
                        "; ahead of peers"
                        if row["ahead_of_peers"]
                        else f"; behind {', '.join(row['behind'])}"
                    )
            spread = f"{e['spread'] * 100:.1f}%" if e.get("spread") is not None else ""
            lines.append(
                f"{name:<{_NAME}}{_amount(e['median'], e['unit']):>11}{spread:>8}  {ratio:<34}"
                f"{target:>8}  {met}"
            )
    if doc.get("notes"):
        lines += ["", "setup:"]
        lines += [f"  {name}: {text}" for name, text in doc["notes"].items()]
    return "\n".join(line.rstrip() for line in lines)


if __name__ == "__main__":
    print(format_report(run(quick="--quick" in sys.argv)))
