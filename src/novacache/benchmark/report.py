"""The printed table of ``novacache bench``: the method above, the rows, a legend below."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import targets
from .results import BenchResults, Entry, Row

__all__ = ["LEGEND", "render", "render_method", "render_row"]

LABEL_WIDTH = 24
VALUE_WIDTH = 9
RATIO_WIDTH = 8

LEGEND = """\
Legend
  ns/op      median over the rounds of (time of the whole loop / number of keys); the
             loop's own cost is included, the "empty loop" entry shows it.
  xdict      ns/op divided by dict's ns/op, same row, same key order, same run (lower
  xfloor     is better); xfloor likewise with the floor.
  floor      novacache._floor.FloorMapping: a minimal compiled mapping, a dict behind
             __getitem__/get/__setitem__, built with the package: the least any
             extension type pays, since CPython specialises d[k] and d.get(k) for dict.
  TTL row    entries set with a TTL that cannot expire during the run; dict and floor
             have no TTL and show their plain hit, as the reference.
  set-new    caches are full and every set evicts one entry (a fresh filled cache per
             round); dict and floor are unbounded, theirs is a plain insert.
  memoize    xfunctools = ratio to functools.lru_cache; "bare call" is the undecorated
             function. Every decorator is used with its defaults and maxsize = n.
  memory     bytes per entry of the container alone (keys and values exist before it
             is built), in a child process: tracemalloc sees only Python's allocators,
             RSS sees every allocator at page granularity.
  threads    operations per second of both threads together (median over rounds);
             xcachebox = ops/s over cachebox's ops/s (higher is better).
  n/a, not installed, ...: why an implementation has no number in that row."""


def _format_value(row: Row, value: float) -> str:
    if row.unit == "ops/s":
        return f"{value / 1e6:.2f}M"
    return f"{value:.1f}"


def _ratio_width(ref: str) -> int:
    return max(RATIO_WIDTH, len(ref) + 3)


def _group_width(row: Row) -> int:
    return VALUE_WIDTH + sum(_ratio_width(ref) for ref in row.refs)


def render_row(row: Row) -> str:
    """One row (one operation) as a block of text lines."""
    width = _group_width(row)
    lines = [f"{row.title}"]
    names = {"insertion": "insertion order", "random": "random order"}
    lines.append(
        " " * LABEL_WIDTH + "".join(f"{names.get(c, c):>{width}}  " for c in row.columns).rstrip()
    )
    sub = f"{row.unit:>{VALUE_WIDTH}}" + "".join(f"{'x' + r:>{_ratio_width(r)}}" for r in row.refs)
    lines.append(f"  {'implementation':<{LABEL_WIDTH - 2}}" + (sub + "  ") * len(row.columns))
    for entry in row.entries:
        lines.append(_render_entry(row, entry))
    return "\n".join(line.rstrip() for line in lines)


def _render_entry(row: Row, entry: Entry) -> str:
    label = f"  {entry.label:<{LABEL_WIDTH - 2}}"
    if entry.status is not None and not entry.values:
        return label + entry.status
    cells = []
    for column in row.columns:
        value = entry.values.get(column)
        if value is None:
            cells.append(f"{'-':>{_group_width(row)}}")
            continue
        cell = f"{_format_value(row, value):>{VALUE_WIDTH}}"
        for ref in row.refs:
            ratio = row.ratio(entry, column, ref)
            text = "-" if ratio is None else f"{ratio:.2f}"
            cell += f"{text:>{_ratio_width(ref)}}"
        cells.append(cell)
    text = label + "  ".join(cells)
    if entry.note:
        text += f"   ({entry.note})"
    return text


def render_method(method: dict[str, Any]) -> str:
    """The lines that say how the numbers were measured."""
    versions = method.get("versions", {})
    peers = ", ".join(
        f"{name} {versions[name]}" if versions.get(name) else f"{name} not installed"
        for name in ("cachetools", "lru-dict", "cachebox")
    )
    core = method.get("compiled_core")
    core_text = {True: "built", False: "NOT built (its rows say n/a)", None: "not measured"}[core]
    statements = method.get("statements", {})
    averages = method.get("load_average")
    load = "unknown" if not averages else ", ".join(f"{x:.2f}" for x in averages)
    return "\n".join(
        [
            f"novacache bench  ({method['date']})",
            f"  entries n       {method['size']} (memory row: {method['memory_size']})",
            f"  rounds          {method['rounds']} timed + {method['warmup_rounds']} warm-up,"
            " interleaved across implementations, median reported",
            f"  python          {method['python']}  ({method['platform']})",
            f"  cpu             {method['cpu']}  ({method['cpu_count']} logical CPUs)",
            f"  load average    {load} at the start (1, 5, 15 min; others' work adds noise)",
            "  key orders      insertion (the order the cache was filled) and random"
            f" (the same keys shuffled, seed {method['seed']})",
            "  loop            for k in keys: <statement>, compiled once per implementation"
            " and row; gc off while timing; the clock read once per loop",
            "  statements      "
            + ", ".join(statements.get(op, op) for op in ("getitem", "get", "setitem", "call"))
            + "  (c.get is looked up inside the loop, for every implementation)",
            f"  threads         2 threads x {method['thread_ops_per_thread']} ops,"
            f" {method['thread_rounds']} rounds, median",
            f"  compiled core   {core_text}",
            f"  peers           {peers}",
        ]
    )


def render(results: BenchResults, verdicts: Sequence[targets.Verdict] | None = None) -> str:
    """The whole report: method, every row, the targets' verdicts, legend. ``verdicts``:
    those of ``results`` when the caller has judged them already (``targets.judge``)."""
    parts = [render_method(results.method)]
    parts.extend(render_row(row) for row in results.rows)
    if verdicts is None:
        verdicts = targets.judge(results.rows)
    block = targets.render(verdicts)
    if block:
        parts.append(block)
    parts.append(LEGEND)
    return "\n\n".join(parts) + "\n"
