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
from collections.abc import Sequence
from pathlib import Path

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
        "novacache-pure, functools, cachetools, lru-dict, cachebox); default all",
    )
    bench.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
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
    if args.impl:
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
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        progress(f"wrote {args.json}")
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
