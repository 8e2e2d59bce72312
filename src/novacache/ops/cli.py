"""The ``novacache`` command (also ``python -m novacache``).

Subcommands:

``bench``
    The peer table: novacache's in-process cache beside ``dict``, the compiled floor,
    functools.lru_cache, cachetools, lru-dict and cachebox, measured in one run (see
    :mod:`novacache.benchmark`). Peers come with ``pip install novacache[bench]``; a
    missing one is reported as "not installed". The ``codec`` row adds the codec's
    table (:mod:`novacache.benchmark.codec_bench`): encode/decode time and bytes on the
    wire, and its two targets. The ``cachetools`` row adds the drop-in's table
    (:mod:`novacache.benchmark.cachetools_bench`) beside cachetools itself. Each of
    these two sections runs in a child process (:mod:`novacache.benchmark.isolated`),
    so the L1 rows' heap does not slow it down.

``demo``
    The multi-tier manager on the embedded default (L1 + an SQLite file, no server): a
    short NovaCron-style workload (:mod:`novacache.ops.demo`) printing hit ratios per
    tier, loader calls and latency percentiles.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

CODEC_ROW = "codec"
CACHETOOLS_ROW = "cachetools"
_SECTIONS = (CODEC_ROW, CACHETOOLS_ROW)


def _all_rows() -> tuple[str, ...]:
    from ..benchmark import ROW_IDS

    return (*ROW_IDS, *_SECTIONS)


def _rows(text: str) -> tuple[str, ...]:
    rows = tuple(r.strip() for r in text.split(",") if r.strip())
    unknown = [r for r in rows if r not in _all_rows()]
    if unknown or not rows:
        raise argparse.ArgumentTypeError(
            f"unknown rows {', '.join(unknown) or '(none given)'};"
            f" choose from {', '.join(_all_rows())}"
        )
    return rows


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def _trace_names(text: str) -> tuple[str, ...]:
    from ..benchmark.traces.generate import standard_specs

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if names == ("none",):
        return ()
    known = [s.name for s in standard_specs(1, 1)]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown traces {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}"
        )
    return names


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(not 0.0 < v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError("cache sizes are fractions in (0, 1]")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``novacache`` command."""
    from .._version import __version__

    parser = argparse.ArgumentParser(prog="novacache", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"novacache {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = sub.add_parser(
        "bench",
        help="print the benchmark table of the in-process cache and its peers",
        description="Benchmark novacache.LocalCache beside dict, the compiled floor and the "
        "peers, in one run; ns/op (median of interleaved rounds) and ratios to dict and floor.",
    )
    bench.add_argument("--size", type=_positive, help="entries in every cache (default 100000)")
    bench.add_argument("--rounds", type=_positive, help="timed rounds per row (default 11)")
    bench.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and few rounds: a smoke test in seconds, numbers mean little",
    )
    bench.add_argument("--json", metavar="PATH", type=Path, help="also write results as JSON")
    bench.add_argument(
        "--only",
        metavar="ROWS",
        type=_rows,
        help=f"comma-separated rows to run, from: {', '.join(_all_rows())}",
    )
    bench.add_argument("--seed", type=int, help="seed of the random key order (default 1234)")
    bench.add_argument(
        "--memory-size", type=_positive, help="entries for the memory row (default: --size)"
    )
    bench.add_argument(
        "--impl",
        metavar="NAMES",
        help="comma-separated implementations to keep (dict, floor, novacache, "
        "novacache-tinylfu, novacache-pure, functools, cachetools, lru-dict, cachebox); "
        "default all",
    )
    bench.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    traces = bench.add_argument_group(
        "traces",
        "--traces replays request traces through the eviction policies (miss ratio and "
        "ns/request, novacache beside its peers and libCacheSim's policies) instead of "
        "the L1 rows (add --only to run both)",
    )
    traces.add_argument(
        "--traces", action="store_true", help="run the trace section (see the group above)"
    )
    traces.add_argument(
        "--trace-file",
        metavar="PATH",
        type=Path,
        action="append",
        default=[],
        help="also replay this trace file (libCacheSim oracleGeneral or csv); repeatable",
    )
    traces.add_argument(
        "--trace-format",
        choices=("oracleGeneral", "csv"),
        help="format of --trace-file (default: csv for *.csv, else oracleGeneral)",
    )
    traces.add_argument(
        "--trace-names",
        metavar="NAMES",
        type=_trace_names,
        help="comma-separated synthetic traces to run (default all: "
        "zipf-0.9, zipf-0.7, zipf-1.1, scan, shift, loop); 'none' for files only",
    )
    traces.add_argument(
        "--trace-sizes",
        metavar="FRACTIONS",
        type=_fractions,
        help="cache sizes as fractions of the trace's objects (default 0.001,0.01,0.1)",
    )
    traces.add_argument(
        "--trace-requests", type=_positive, help="requests per synthetic trace (default 2M)"
    )
    traces.add_argument(
        "--trace-objects", type=_positive, help="objects per synthetic trace (default 100k)"
    )
    traces.add_argument(
        "--plot",
        metavar="PATH",
        type=Path,
        help="PNG of miss ratio against cache size (default novacache-traces.png; "
        "needs matplotlib)",
    )
    traces.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    traces.add_argument(
        "--no-references",
        action="store_true",
        help="skip libCacheSim's policies and Belady (run when libcachesim is installed)",
    )
    demo = sub.add_parser(
        "demo",
        help="run a short workload through the multi-tier manager (no server needed)",
        description="CacheManager on L1 + SQLite: VM lookups through get_or_load with a slow "
        "loader, a stampede on a cold key, a restart served from the SQLite file.",
    )
    demo.add_argument(
        "--quick", action="store_true", help="a few hundred lookups: a smoke test in seconds"
    )
    demo.add_argument(
        "--dir", metavar="PATH", type=Path, help="where to make the temp dir (default: system)"
    )
    return parser


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    run(quick=args.quick, out=sys.stdout, workdir=args.dir)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..benchmark import BenchOptions, run
    from ..benchmark.report import render

    overrides: dict[str, object] = {}
    for option, field in (
        ("size", "size"),
        ("rounds", "rounds"),
        ("seed", "seed"),
        ("memory_size", "memory_size"),
    ):
        value = getattr(args, option)
        if value is not None:
            overrides[field] = value
    rows = args.only or _all_rows()
    with_codec = CODEC_ROW in rows
    with_cachetools = CACHETOOLS_ROW in rows
    overrides["rows"] = tuple(r for r in rows if r not in _SECTIONS)
    trace_only = args.traces and args.only is None
    if args.impl and not trace_only:
        from ..benchmark.peers import discover

        names = tuple(i.strip() for i in args.impl.split(",") if i.strip())
        known = [impl.name for impl in discover()]
        unknown = [n for n in names if n not in known]
        if unknown:
            print(
                f"novacache bench: unknown implementations {', '.join(unknown)};"
                f" choose from {', '.join(known)}",
                file=sys.stderr,
            )
            return 2
        overrides["impls"] = names
    options = BenchOptions.quick(**overrides) if args.quick else BenchOptions(**overrides)  # type: ignore[arg-type]

    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    document: dict[str, object] = {}
    if trace_only:
        options = BenchOptions.quick(rows=()) if args.quick else BenchOptions(rows=())
        with_codec = with_cachetools = False
    if options.rows:
        results = run(options, progress)
        sys.stdout.write(render(results))
        sys.stdout.flush()
        document.update(results.to_json())
    if with_codec:
        from ..benchmark import codec_bench
        from ..benchmark.isolated import run_section

        progress("measuring codec (child process): encode/decode and bytes on the wire")
        codec_rows = run_section("codec_bench", quick=args.quick)
        sys.stdout.write(
            "\ncodec: novacache.Codec (compiled and pure framing) beside pickle and a naive"
            " json+zlib pipeline\n" + codec_bench.format_rows(codec_rows) + "\n"
        )
        sys.stdout.flush()
        document["codec"] = codec_rows
    if with_cachetools:
        from ..benchmark import cachetools_bench
        from ..benchmark.isolated import run_section

        progress("measuring cachetools (child process): novacache.cachetools beside cachetools")
        ct_rows = run_section("cachetools_bench", quick=args.quick)
        sys.stdout.write(
            "\ncachetools: novacache.cachetools (as imported) beside cachetools 8.0.2;"
            " ratio to the reference measured in the same rounds\n"
            + cachetools_bench.format_rows(ct_rows)
            + "\n"
        )
        sys.stdout.flush()
        document["cachetools"] = ct_rows
    if args.traces:
        code = _traces(args, progress, document)
        if code:
            return code
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        progress(f"wrote {args.json}")
    return 0


def _traces(
    args: argparse.Namespace, progress: Callable[[str], None], document: dict[str, object]
) -> int:
    from ..benchmark.traces import section

    overrides: dict[str, Any] = {}
    for option, field in (
        ("trace_names", "traces"),
        ("trace_sizes", "sizes"),
        ("trace_requests", "n_requests"),
        ("trace_objects", "n_objects"),
        ("seed", "seed"),
        ("rounds", "rounds"),
    ):
        value = getattr(args, option)
        if value is not None:
            overrides[field] = value
    if args.trace_file:
        missing = [str(p) for p in args.trace_file if not p.is_file()]
        if missing:
            print(f"novacache bench: no such trace file: {', '.join(missing)}", file=sys.stderr)
            return 2
        overrides["files"] = tuple(args.trace_file)
        overrides["file_format"] = args.trace_format
    if args.impl:
        names = tuple(i.strip() for i in args.impl.split(",") if i.strip())
        known = [r.name for r in section.replayers()]
        unknown = [n for n in names if n not in known]
        if unknown:
            print(
                f"novacache bench: unknown trace implementations {', '.join(unknown)};"
                f" choose from {', '.join(known)}",
                file=sys.stderr,
            )
            return 2
        overrides["impls"] = names
    overrides["references"] = not args.no_references
    opts = (
        section.TraceOptions.quick(**overrides) if args.quick else section.TraceOptions(**overrides)
    )
    try:
        doc = section.run(opts, progress)
    except (OSError, ValueError) as exc:  # unreadable or malformed trace file
        print(f"novacache bench: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(
        "\ntraces: miss ratio (lower is better) and ns/request, cache-aside replay\n"
        + section.format_report(doc)
    )
    sys.stdout.flush()
    if not args.no_plot:
        target = args.plot if args.plot is not None else Path("novacache-traces.png")
        drawn = section.plot(doc, target)
        if drawn is None:
            progress("no plot: matplotlib is not installed (pip install matplotlib)")
        else:
            print(f"plot: {drawn}")
            doc["plot"] = str(drawn)
    document["traces"] = doc
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``novacache`` command with ``argv`` (default: ``sys.argv[1:]``)."""
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        return _bench(args)
    if args.command == "demo":
        return _demo(args)
    return 2  # pragma: no cover - argparse refuses unknown commands first


if __name__ == "__main__":
    sys.exit(main())
