"""The soak's report as a table for people (``novacache soak`` prints it)."""

from __future__ import annotations

from typing import Any

__all__ = ["render"]


def _n(value: int | float) -> str:
    return f"{value:,}"


def _counts(counts: dict[str, int]) -> str:
    return (
        "  ".join(f"{k} {_n(v)}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"
    )


def render(report: dict[str, Any]) -> str:
    """The table of a report from :func:`~novacache.benchmark.soak.run`."""
    o = report["options"]
    ops = report["ops"]
    reads = report["reads"]
    stale = report["stale_reads"]
    n_reads = ops["by_kind"]["read"] or 1
    lines = [
        f"novacache soak: {o['processes']} processes x {o['threads']} threads, "
        f"{_n(o['keys'])} keys, {report['seconds']:.0f} s, faults {','.join(o['faults']) or 'none'}"
        + ("" if report["completed"] else "   ** RUN NOT COMPLETED **"),
        "",
        f"operations         {_n(ops['total']):>12}   {_n(round(ops['per_second']))}/s",
    ]
    for kind in ("read", "set", "delete"):
        lines.append(
            f"  {kind:<16} {_n(ops['by_kind'][kind]):>12}   p50 {ops['p50_ms'][kind]:.3f} ms"
            f"   p99 {ops['p99_ms'][kind]:.3f} ms"
        )
    lines += [
        f"reads raised       {_n(reads['raised']):>12}",
        f"  bad values       {_n(reads['bad_values']):>12}   impossible {_n(reads['impossible'])}",
        f"  served by        {_counts(reads['by_source'])}",
        f"stale reads        {_n(stale['total']):>12}   {100 * stale['total'] / n_reads:.3f} % of"
        f" reads, oldest {stale['max_age_s']:.3f} s, of deleted keys {_n(stale['resurrected'])}",
        f"  by source        {_counts(stale['by_source'])}",
        f"  by window        {_counts(stale['by_window'])}",
        f"  by age           {_counts(stale['by_age'])}",
        f"  late             {_n(stale.get('late', 0)):>12}   (more than"
        f" {stale.get('after_fault_window_s', 2.0):g} s after a fault and"
        f" {stale.get('propagation_s', 0.25):g} s behind)",
        f"writes failed on   {_counts(report['writes']['failed_on'])}",
        "",
        "faults             at s   down s   first Redis write after (s)",
    ]
    for i, f in enumerate(report["faults"], 1):
        at = "-" if f["at_s"] is None else f"{f['at_s']:.1f}"
        down = "-" if f["down_s"] is None else f"{f['down_s']:.2f}"
        rec = "NOT RECOVERED" if f["recovery_s"] is None else f"{f['recovery_s']:.3f}"
        lines.append(f"  {i}. {f['kind']:<13} {at:>6} {down:>8}   {rec}")
    final = report["final"]
    lines.append("")
    if final is None:
        lines.append("final state        not checked (Redis did not answer)")
    else:
        lines.append(
            f"final state        lost writes {_n(final['lost_writes'])}   resurrected deletes"
            f" {_n(final['resurrected_deletes'])}   keys behind: Redis {_n(final['redis_behind'])},"
            f" SQLite {_n(final['sqlite_behind'])}"
        )
    lines.append("RSS (MiB)          start   after warm-up   end     max")
    for r in report["rss"]:
        lines.append(
            f"  process {r['process']:<8} {r['start_mib']:6.1f}   {r['after_warmup_mib']:13.1f}"
            f"   {r['end_mib']:5.1f}   {r['max_mib']:5.1f}"
        )
    if report["errors"]:
        lines.append("exceptions         " + _counts(report["errors"]))
    for problem in report["problems"]:
        lines.append(f"problem: {problem}")
    return "\n".join(lines) + "\n"
