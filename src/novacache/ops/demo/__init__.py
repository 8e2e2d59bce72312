"""``novacache demo``: a simulated NovaCron cluster on the domain caches.

Nodes, VMs with states, metrics and configurations, a scheduler asking for capacities,
scores and placements, migrations streaming progress and checkpoints, state-change
events, and slow sources (:mod:`.cluster`). Client threads run the same seeded operation
mix three times (:mod:`.workload`): straight to the sources (without cache), through the
caches, and through the caches with predictive pre-caching; the report compares them
(:mod:`.report`).

The stack is the embedded default (L1 + an SQLite file, no server); ``redis_url`` adds
Redis as L2 and the invalidation bus; ``workers`` runs more processes that share L2/L3
(each its own L1), which is where coherence shows: every process checks its VM-state
reads against the truth.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .cluster import Plan
from .report import Tally, comparison, percentile, plot
from .workload import PHASES, TIERS, Phase, Settings, run_worker

__all__ = ["DemoResult", "run"]

DEFAULT_DURATION = 22.0


@dataclass
class DemoResult:
    """What :func:`run` measured: the figures (also written by ``--json``) and the plot."""

    figures: dict[str, Any]
    plot: Path | None


def _child(index: int, plan: Plan, settings: Settings, phases: list[Phase], q: Any) -> None:
    run_worker(index, plan, settings, phases, q.put)


def run(
    *,
    duration: float = DEFAULT_DURATION,
    workers: int = 1,
    redis_url: str | None = None,
    threads: int = 6,
    json_path: Path | None = None,
    plot_path: Path | None = None,
    workdir: Path | None = None,
    out: TextIO,
    live: bool | None = None,
    seed: int = 2026,
) -> DemoResult:
    """Run the demo for about ``duration`` seconds (plus ~1 s of set-up), print the live
    table (when ``out`` is a terminal, or ``live=True``) and the report to ``out``, write
    the JSON figures to ``json_path`` and the PNG plot to ``plot_path`` (default: in the
    current directory, ``novacache-demo.png``)."""
    if not duration > 0:
        raise ValueError("duration is seconds > 0")
    if workers < 1 or threads < 1:
        raise ValueError("workers and threads are >= 1")
    with tempfile.TemporaryDirectory(prefix="novacache-demo-", dir=workdir) as tmp:
        path = Path(tmp) / "l3.db"
        start = time.time() + (1.5 if workers > 1 else 0.3)
        plan = Plan(seed, 2_000, 40, start, duration, 20.0, workers)
        phases: list[Phase] = []
        t = start
        for name, cached, predictive, share in PHASES:
            phases.append(Phase(name, cached, predictive, t, t + duration * share))
            t += duration * share
        settings = Settings(
            path,
            redis_url,
            threads,
            f"novacache-demo-{uuid.uuid4().hex[:8]}:",
            # Without a bus, other processes' L1 may lag: bound it.
            None if redis_url is not None or workers == 1 else 1.0,
        )
        stack = "L1 + SQLite (embedded)" if redis_url is None else "L1 + Redis + SQLite"
        print(
            f"novacache demo: a simulated NovaCron cluster ({plan.vms} VMs, {plan.nodes} "
            f"nodes, {plan.change_rate:.0f} state changes/s, migrations streaming) on "
            f"{stack}; {workers} worker process(es) x {threads} threads; {duration:.0f} s.",
            file=out,
        )
        tally = Tally([p.name for p in phases], start)
        ctx = multiprocessing.get_context("spawn")
        inbox: Any = ctx.Queue() if workers > 1 else queue.Queue()
        procs = [
            ctx.Process(target=_child, args=(i, plan, settings, phases, inbox), daemon=True)
            for i in range(1, workers)
        ]
        for proc in procs:
            proc.start()
        local = threading.Thread(
            target=run_worker, args=(0, plan, settings, phases, inbox.put), daemon=True
        )
        local.start()
        _follow(tally, inbox, workers, phases, out, live)
        local.join(10)
        for proc in procs:
            proc.join(10)
        figures = tally.figures()
        figures["settings"] = {
            "duration": duration, "workers": workers, "threads": threads, "stack": stack,
            "vms": plan.vms, "nodes": plan.nodes, "seed": seed,
            "phases": {p.name: round(p.t1 - p.t0, 2) for p in phases},
        }  # fmt: skip
        figures["workers"] = tally.done
        picture = plot(figures, plot_path or Path("novacache-demo.png"))
    _print_report(figures, picture, out)
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"figures: {json_path}", file=out)
    return DemoResult(figures, picture)


def _follow(
    tally: Tally, inbox: Any, workers: int, phases: list[Phase], out: TextIO, live: bool | None
) -> None:
    """Read the workers' snapshots until each said it is done, showing them."""
    deadline = phases[-1].t1 + 30
    console = None
    try:
        from rich.console import Console

        console = Console(file=out, force_terminal=live if live else None)
    except ImportError:
        pass
    if console is not None and console.is_terminal and live is not False:
        _follow_live(tally, inbox, workers, phases, console, deadline)
        return
    shown: str | None = None
    while len(tally.done) < workers and time.time() < deadline:
        try:
            tally.add(inbox.get(timeout=0.25))
        except queue.Empty:
            continue
        if tally.current != shown and tally.current is not None:
            shown = tally.current
            print(f"phase: {shown} ...", file=out, flush=True)


def _follow_live(
    tally: Tally, inbox: Any, workers: int, phases: list[Phase], console: Any, deadline: float
) -> None:
    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console
    )
    total = phases[-1].t1 - phases[0].t0
    task = progress.add_task("starting", total=total)
    with Live(Group(progress), console=console, refresh_per_second=4) as view:
        while len(tally.done) < workers and time.time() < deadline:
            try:
                while True:
                    tally.add(inbox.get(timeout=0.1))
            except queue.Empty:
                pass
            now = time.time()
            name = next((p.name for p in phases if p.t0 <= now < p.t1), "finishing")
            progress.update(task, completed=min(max(now - phases[0].t0, 0), total),
                            description=name)  # fmt: skip
            view.update(Group(progress, _table(tally)))


def _table(tally: Tally) -> Any:
    from rich.table import Table

    table = Table(title="per phase, all workers", expand=False)
    table.add_column("phase")
    table.add_column("ops/s", justify="right")
    for tier in TIERS:
        table.add_column(f"{tier} %", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("source calls", justify="right")
    table.add_column("invalidations", justify="right")
    table.add_column("migrations", justify="right")
    for name, totals in tally.phases.items():
        if not totals.ops:
            continue
        every = totals.all_latency()
        table.add_row(
            name,
            f"{totals.ops / totals.seconds:,.0f}",
            *(f"{100 * totals.hit_ratio(t):.1f}" for t in TIERS),
            f"{1000 * percentile(every, 0.5):.3f}",
            f"{1000 * percentile(every, 0.99):.2f}",
            f"{sum(tally.source_calls[name].values()):,}",
            f"{totals.invalidations:,}",
            f"{sum(totals.in_flight.values())} in flight, {totals.migrations_done} done",
        )
    return table


def _print_report(figures: dict[str, Any], picture: Path | None, out: TextIO) -> None:
    header = (
        f"{'phase':<20} {'ops':>7} {'ops/s':>8} {'hit':>6} {'L1':>6} {'L2':>6} {'L3':>6}"
        f" {'src/1k ops':>10} {'p50 ms':>8} {'p99 ms':>8}"
    )
    print("\n" + header, file=out)
    for name, p in figures["phases"].items():
        tiers = p["tiers"]
        print(
            f"{name:<20} {p['ops']:>7} {p['ops_per_second']:>8.0f} {p['hit_ratio']:>6.1%}"
            f" {tiers['L1']['ratio']:>6.1%} {tiers['L2']['ratio']:>6.1%}"
            f" {tiers['L3']['ratio']:>6.1%} {p['source_calls_per_1000_ops']:>10.1f}"
            f" {p['latency_ms']['p50']:>8.3f} {p['latency_ms']['p99']:>8.2f}",
            file=out,
        )
    print("", file=out)
    for line in comparison(figures):
        print(line, file=out)
    if picture is not None:
        print(f"plot: {picture.resolve()}", file=out)
    else:
        print("plot: skipped (matplotlib missing: pip install 'novacache[demo]')", file=out)
