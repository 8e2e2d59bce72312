"""The soak's runner: starts Redis and the worker processes, injects the faults on
schedule, shows progress, stops the workers once Redis took writes again after the last
fault, checks the final state of every key, and analyses the records
(:func:`run` returns the report as a JSON-ready dict)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import shared as S
from .check import AFTER_FAULT, PROPAGATION, Checker, age_bucket, late, percentile, window
from .server import SoakRedis

__all__ = ["FAULTS", "SoakOptions", "run"]

FAULTS = ("kill", "freeze", "aof-restart")


@dataclass(frozen=True)
class SoakOptions:
    """What to run (the defaults are the long run of docs/soak.md)."""

    duration: float = 360.0
    processes: int = 2
    threads: int = 2
    keys: int = 20_000
    faults: tuple[str, ...] = ("kill", "freeze", "aof-restart", "kill", "kill", "aof-restart")
    freeze_seconds: float = 10.0
    down_seconds: float = 1.0
    l1_size: int = 5000
    seed: int = 1
    redis_server: str | None = None
    workdir: Path | None = None  # kept when given; a temp dir (removed) otherwise
    recovery_timeout: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.duration <= 0 or self.processes < 1 or self.threads < 1 or self.keys < 1:
            raise ValueError("duration, processes, threads and keys must be positive")
        unknown = [f for f in self.faults if f not in FAULTS]
        if unknown:
            raise ValueError(
                f"unknown faults {', '.join(unknown)}; choose from {', '.join(FAULTS)}"
            )


@dataclass
class _Fault:
    kind: str
    at: float  # scheduled, seconds after the start
    start: float = 0.0  # monotonic
    end: float = 0.0  # monotonic: Redis answers again (restart) or runs again (SIGCONT)


Progress = Callable[[str, bool], None]  # (text, final line?)


def _schedule(options: SoakOptions) -> list[_Fault]:
    n = len(options.faults)
    return [
        _Fault(kind, options.duration * (i + 1) / (n + 1)) for i, kind in enumerate(options.faults)
    ]


def run(options: SoakOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run the soak; the report (see docs/soak.md for its fields)."""
    say: Progress = progress or (lambda text, final: None)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="novacache-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(options, workdir, say)
    finally:
        if options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(options: SoakOptions, workdir: Path, say: Progress) -> dict[str, Any]:
    records = workdir / "records"
    records.mkdir(exist_ok=True)
    server = SoakRedis(workdir / "redis", options.redis_server).start()
    try:
        return _with_server(options, workdir, records, server, say)
    finally:
        server.kill()


def _with_server(
    options: SoakOptions, workdir: Path, records: Path, server: SoakRedis, say: Progress
) -> dict[str, Any]:
    control = S.Control(workdir / "control.bin", options.processes, create=True)
    S.Database(workdir / "db.bin", options.keys, create=True).close()
    config = {
        "url": server.url,
        "prefix": f"soak-{os.getpid()}:",
        "sqlite": str(workdir / "l3.sqlite"),
        "database": str(workdir / "db.bin"),
        "control": str(workdir / "control.bin"),
        "records": str(records),
        "processes": options.processes,
        "threads": options.threads,
        "keys": options.keys,
        "seed": options.seed,
        "l1_size": options.l1_size,
    }
    (workdir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    workers: list[subprocess.Popen[bytes]] = []
    faults = _schedule(options)
    outcome: dict[str, Any] = {"completed": False, "problems": []}
    began = ended = 0.0
    try:
        for p in range(options.processes):
            log = open(workdir / f"worker-{p}.log", "wb")  # noqa: SIM115 - the child keeps it
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "novacache.benchmark.soak.worker",
                        str(workdir / "config.json"),
                        str(p),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        say("starting the workers (each waits for its invalidation bus)", False)
        deadline = time.monotonic() + 120
        while not all(control.get(control.of(p, S.READY)) for p in range(options.processes)):
            if any(w.poll() is not None for w in workers) or time.monotonic() > deadline:
                outcome["problems"].append("a worker did not start")
                raise _Abort
            time.sleep(0.01)
        began = time.monotonic()
        control.put(S.GO, began)
        _drive(options, server, control, workers, faults, began, say, outcome)
    except _Abort:
        pass
    finally:
        ended = time.monotonic()
        control.put(S.STOP, 1.0)
        server.resume()
        for w in workers:
            try:
                w.wait(timeout=120)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
                outcome["problems"].append(f"worker {w.pid} did not stop; killed")
        control.close()
    for p, w in enumerate(workers):
        if w.returncode != 0:
            tail = (workdir / f"worker-{p}.log").read_text(errors="replace")[-2000:]
            outcome["problems"].append(f"worker {p} exited with {w.returncode}: {tail}")
    say("checking the final state of every key", False)
    final = _final_state(config, options.keys) if server.ping() else None
    server.kill()
    report = _analyse(options, config, faults, began, ended, final)
    for key in report["errors"]:
        if key.startswith("harness:"):
            outcome["problems"].append(f"a worker thread failed: {key}")
    for p, stuck in enumerate(report.pop("_alive_threads")):
        if stuck:
            outcome["problems"].append(f"worker {p}: {stuck} threads did not stop")
    report["completed"] = not outcome["problems"] and began > 0
    report["problems"] = outcome["problems"]
    report["redis_starts"] = server.starts
    return report


class _Abort(Exception):
    pass


def _drive(
    options: SoakOptions,
    server: SoakRedis,
    control: S.Control,
    workers: list[subprocess.Popen[bytes]],
    faults: list[_Fault],
    began: float,
    say: Progress,
    outcome: dict[str, Any],
) -> None:
    """The run: faults on schedule (one at a time), a progress line each second, then
    the wait until every worker wrote to Redis again after the last fault."""
    pending = list(faults)
    current: _Fault | None = None
    back_at = 0.0  # when the current fault ends
    shown = 0.0
    while True:
        now = time.monotonic()
        elapsed = now - began
        if any(w.poll() is not None for w in workers):
            outcome["problems"].append("a worker exited during the run")
            raise _Abort
        if current is None and pending and elapsed >= pending[0].at:
            current = pending.pop(0)
            current.start = time.monotonic()
            if current.kind == "freeze":
                server.pause()
                back_at = current.start + options.freeze_seconds
            else:
                server.kill()
                back_at = current.start + options.down_seconds
        elif current is not None and now >= back_at:
            if current.kind == "freeze":
                server.resume()
            else:
                if current.kind == "kill":
                    server.drop_data()
                try:
                    server.start()
                except RuntimeError as exc:
                    outcome["problems"].append(f"Redis did not restart: {exc}")
                    raise _Abort from exc
            current.end = time.monotonic()
            current = None
        if now - shown >= 1.0:
            shown = now
            say(_progress_line(options, control, faults, current, elapsed), False)
        if current is None and not pending and elapsed >= options.duration:
            last_end = faults[-1].end if faults else began
            if all(
                control.get(control.of(p, S.REMOTE_OK_AT)) > last_end
                for p in range(options.processes)
            ):
                break
            if elapsed >= options.duration + options.recovery_timeout:
                outcome["problems"].append("Redis took no write after the last fault")
                break
        time.sleep(0.02)
    say(_progress_line(options, control, faults, None, time.monotonic() - began), True)


def _progress_line(
    options: SoakOptions,
    control: S.Control,
    faults: list[_Fault],
    current: _Fault | None,
    elapsed: float,
) -> str:
    ops = sum(control.get(control.of(p, S.OPS)) for p in range(options.processes))
    errors = sum(control.get(control.of(p, S.READ_ERRORS)) for p in range(options.processes))
    done = sum(1 for f in faults if f.end)
    if current is None:
        state = "redis up"
    elif current.kind == "freeze":
        state = f"redis FROZEN {time.monotonic() - current.start:4.1f} s"
    else:
        state = f"redis KILLED ({current.kind})"
    rate = ops / elapsed if elapsed > 0 else 0.0
    return (
        f"{elapsed:6.1f}/{options.duration:g} s  {int(ops):>10,} ops  {rate:>8,.0f}/s"
        f"  faults {done}/{len(faults)}  {state:<22}  read errors {int(errors)}"
    )


def _final_state(config: dict[str, Any], keys: int) -> dict[str, dict[int, int | None]]:
    """The signed version each key reads back at the end: from Redis alone, SQLite
    alone, and a fresh manager (Redis then SQLite, no L1), as a new process would."""
    from ... import CacheManager
    from ...tiers import RedisTier, SQLiteTier

    names = [f"k{i}" for i in range(keys)]
    out: dict[str, dict[int, int | None]] = {}
    url, ns, path = config["url"], config["prefix"], config["sqlite"]
    builds: dict[str, Callable[[], CacheManager]] = {
        "redis": lambda: CacheManager(remote=RedisTier(url, prefix=ns)),
        "sqlite": lambda: CacheManager(store=SQLiteTier(path)),
        "fresh": lambda: CacheManager(remote=RedisTier(url, prefix=ns), store=SQLiteTier(path)),
    }
    for name, build in builds.items():
        seen: dict[int, int | None] = {}
        with build() as m:
            for i in range(0, keys, 500):
                got = m.get_many(names[i : i + 500])
                for j in range(i, min(i + 500, keys)):
                    value = got.get(names[j])
                    if type(value) is list and len(value) == 2 and value[1] == j:
                        seen[j] = int(value[0])
                    else:
                        seen[j] = None
        out[name] = seen
    return out


def _records(path: Path) -> Any:
    data = path.read_bytes()
    return S.RECORD.iter_unpack(data[: len(data) - len(data) % S.RECORD.size])


def _analyse(
    options: SoakOptions,
    config: dict[str, Any],
    faults: list[_Fault],
    began: float,
    ended: float,
    final: dict[str, dict[int, int | None]] | None,
) -> dict[str, Any]:
    records = Path(config["records"])
    files = sorted(records.glob("p*-t*.bin"))
    checker = Checker()
    latency: dict[str, array[float]] = {k: array("d") for k in S.KINDS}
    counts: Counter[str] = Counter()
    per_process: Counter[str] = Counter()
    write_fail: Counter[str] = Counter()
    remote_ok_ends = array("d")
    # Pass 1: the writes (each file holds its keys' writes in version order).
    for path in files:
        proc = path.name.split("-")[0]
        for kind, _src, flags, key, version, start, end in _records(path):
            counts[S.KINDS[kind]] += 1
            per_process[proc] += 1
            latency[S.KINDS[kind]].append(end - start)
            if kind == S.READ:
                continue
            confirmed = bool(flags & (S.REMOTE_OK | S.STORE_OK))
            checker.write(key, version, start, end, confirmed)
            for bit, name in (
                (S.REMOTE_FAILED, "remote"),
                (S.STORE_FAILED, "store"),
                (S.BUS_FAILED, "bus"),
                (S.RAISED, "raised"),
            ):
                if flags & bit:
                    write_fail[name] += 1
            if flags & S.REMOTE_OK:
                remote_ok_ends.append(end)
    spans = [(f.kind, f.start, f.end) for f in faults if f.start]
    # Pass 2: the reads.
    stale_source: Counter[str] = Counter()
    stale_window: Counter[str] = Counter()
    stale_age: Counter[str] = Counter()
    read_sources: Counter[str] = Counter()
    read_raised = bad_values = resurrected_reads = stale = late_reads = 0
    max_age = 0.0
    for path in files:
        for kind, src, flags, key, version, start, end in _records(path):
            if kind != S.READ:
                continue
            if flags & S.RAISED:
                read_raised += 1
                continue
            if flags & S.BAD_VALUE:
                bad_values += 1
                continue
            read_sources[S.SOURCES[src]] += 1
            found = checker.read(key, version, start, end, S.SOURCES[src])
            if found is None:
                continue
            stale += 1
            stale_source[found.source] += 1
            label = window(found.at, spans)
            stale_window[label] += 1
            late_reads += late(label, found.age)
            stale_age[age_bucket(found.age)] += 1
            max_age = max(max_age, found.age)
            resurrected_reads += found.resurrected
    remote_ok_ends = array("d", sorted(remote_ok_ends))
    fault_rows = []
    for f in faults:
        i = bisect_right(remote_ok_ends, f.end)
        recovered = remote_ok_ends[i] if f.end and i < len(remote_ok_ends) else None
        fault_rows.append(
            {
                "kind": f.kind,
                "at_s": round(f.start - began, 3) if f.start else None,
                "down_s": round(f.end - f.start, 3) if f.end else None,
                "recovery_s": round(recovered - f.end, 3) if recovered is not None else None,
            }
        )
    seconds = max(ended - began, 1e-9)
    total = sum(counts.values())
    summaries = [json.loads(p.read_text()) for p in sorted(records.glob("p*.json"))]
    errors: Counter[str] = Counter()
    for s in summaries:
        errors.update(s["errors"])
    warm = faults[0].start if faults and faults[0].start else began + seconds / 2
    rss = []
    for s in summaries:
        samples = [(t, b) for t, b in s["rss"]]
        after = next((b for t, b in samples if t >= warm), samples[-1][1] if samples else 0)
        rss.append(
            {
                "process": s["process"],
                "start_mib": _mib(samples[0][1]) if samples else 0.0,
                "after_warmup_mib": _mib(after),
                "end_mib": _mib(samples[-1][1]) if samples else 0.0,
                "max_mib": _mib(max(b for _, b in samples)) if samples else 0.0,
                "series": [(round(t - began, 2), _mib(b)) for t, b in samples],
            }
        )
    final_rows = _final_rows(checker, final, options.keys) if final is not None else None
    return {
        "options": {k: v for k, v in asdict(options).items() if k not in ("workdir", "extra")},
        "seconds": round(seconds, 3),
        "ops": {
            "total": total,
            "per_second": round(total / seconds, 1),
            "by_kind": {k: counts[k] for k in S.KINDS},
            "by_process": {k: per_process[k] for k in sorted(per_process)},
            "p50_ms": {k: round(percentile(v, 0.5) * 1000, 6) for k, v in latency.items()},
            "p99_ms": {k: round(percentile(v, 0.99) * 1000, 6) for k, v in latency.items()},
        },
        "reads": {
            "raised": read_raised,
            "bad_values": bad_values,
            "impossible": checker.impossible,
            "by_source": dict(read_sources),
        },
        "stale_reads": {
            "total": stale,
            "resurrected": resurrected_reads,
            "max_age_s": round(max_age, 3),
            "by_source": dict(stale_source),
            "by_window": dict(stale_window),
            "by_age": dict(stale_age),
            "after_fault_window_s": AFTER_FAULT,
            "late": late_reads,
            "propagation_s": PROPAGATION,
        },
        "writes": {"failed_on": dict(write_fail)},
        "errors": dict(errors),
        "faults": fault_rows,
        "final": final_rows,
        "rss": rss,
        "bus": [s["bus"] for s in summaries],
        "_alive_threads": [s["alive_threads"] for s in summaries],
    }


def _final_rows(
    checker: Checker, final: dict[str, dict[int, int | None]], keys: int
) -> dict[str, Any]:
    lost = resurrected = 0
    behind: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for key in range(keys):
        expected = checker.last(key)
        seen = final["fresh"].get(key)
        wrong = False
        if expected > 0 and (seen is None or abs(seen) < expected):
            lost += 1
            wrong = True
        elif expected < 0 and seen is not None and seen > 0:
            resurrected += 1
            wrong = True
        if wrong and len(examples) < 5:
            examples.append(
                {
                    "key": f"k{key}",
                    "last_write": expected,
                    "fresh": seen,
                    "redis": final["redis"].get(key),
                    "sqlite": final["sqlite"].get(key),
                }
            )
        for tier in ("redis", "sqlite"):
            got = final[tier].get(key)
            if got is not None and abs(got) < abs(expected):
                behind[tier] += 1
    return {
        "lost_writes": lost,
        "resurrected_deletes": resurrected,
        "redis_behind": behind["redis"],
        "sqlite_behind": behind["sqlite"],
        "examples": examples,
    }


def _mib(n: float) -> float:
    return round(n / 2**20, 1)
