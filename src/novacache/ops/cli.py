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
    so the L1 rows' heap does not slow it down. The ``manager`` row (only when asked
    for, ``--only manager``: it needs Redis) adds the manager's hot paths beside their
    floors and dogpile.cache, cashews and aiocache
    (:mod:`novacache.benchmark.manager_bench`), against a ``redis-server`` it starts on
    a loopback port or the one given with ``--redis URL``; also in a child process.

``soak``
    N processes x M threads, each with one ``CacheManager`` (L1 + Redis + SQLite + the
    invalidation bus), against a ``redis-server`` it starts, kills, restarts (empty and
    from its append-only file) and freezes on a schedule; every operation is checked
    against single-writer versions: ops/s, p99, stale reads by source, window and age,
    lost writes, resurrected deletes, RSS, recovery after each fault
    (:mod:`novacache.benchmark.soak`, docs/soak.md).

``serve`` | ``stats`` | ``invalidate`` | ``health`` | ``warmup``
    The operator's commands (:mod:`novacache.ops.admin`, docs/http.md): ``serve`` runs
    the HTTP management API on the tiers of ``novacache.toml``; the others talk to a
    running server (or, ``--direct``, to the configured tiers).

``demo``
    A simulated NovaCron cluster on the domain caches (:mod:`novacache.novacron`), on
    the embedded default (L1 + an SQLite file, no server) or with ``--redis``: the same
    workload without the cache, with it, and with predictive pre-caching; a live table,
    a report, a PNG plot and ``--json`` (:mod:`novacache.ops.demo`).
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
MANAGER_ROW = "manager"
HTTP_ROW = "http"
_SECTIONS = (CODEC_ROW, CACHETOOLS_ROW, MANAGER_ROW, HTTP_ROW)
# Sections run only when --only names them (the manager and http sections need Redis).
_OPT_IN = (MANAGER_ROW, HTTP_ROW)


def _all_rows() -> tuple[str, ...]:
    from ..benchmark import ROW_IDS

    return (*ROW_IDS, *_SECTIONS)


def _default_rows() -> tuple[str, ...]:
    return tuple(r for r in _all_rows() if r not in _OPT_IN)


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
        help=f"comma-separated rows to run, from: {', '.join(_all_rows())}"
        f" (default: all but {', '.join(_OPT_IN)})",
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
    manager = bench.add_argument_group(
        "manager",
        "--only manager: CacheManager/AsyncCacheManager hot paths beside their floors (bare "
        "redis-py / redis.asyncio) and dogpile.cache, cashews, aiocache (pip install "
        "novacache[peers]); --rounds and --seed apply",
    )
    manager.add_argument(
        "--redis",
        metavar="URL",
        help="use this Redis (redis://[user:password@]host:port/db) instead of starting "
        "redis-server on a free loopback port; the bench deletes the keys it wrote",
    )
    manager.add_argument(
        "--pin",
        choices=("same", "split", "none"),
        default="same",
        help="CPUs for the bench and its redis-server: 'same' one CPU for both (default, "
        "the most stable ratios), 'split' one each, 'none' not pinned",
    )
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
    _soak_parser(sub)
    demo = sub.add_parser(
        "demo",
        help="run a simulated NovaCron cluster through the domain caches (no server needed)",
        description="A simulated NovaCron cluster (VMs, nodes, a scheduler, migrations, "
        "state changes, slow sources) on the domain caches: the same workload without "
        "the cache, with it, and with predictive pre-caching; a live table, a report, a "
        "PNG plot and (--json) the figures.",
    )
    demo.add_argument(
        "--duration", type=float, default=22.0, metavar="S",
        help="seconds of workload (default 22; the three phases share them)",
    )  # fmt: skip
    demo.add_argument("--redis", metavar="URL", help="add Redis as L2 (and the invalidation bus)")
    demo.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        help="take --redis from this novacache.toml's [tiers.redis] (docs/http.md)",
    )
    demo.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="worker processes sharing L2/L3, each with its own L1 (default 1)",
    )  # fmt: skip
    demo.add_argument(
        "--threads", type=int, default=6, metavar="N", help="client threads per worker"
    )
    demo.add_argument("--json", type=Path, metavar="PATH", help="write the figures as JSON")
    demo.add_argument(
        "--plot", type=Path, metavar="PATH", default=Path("novacache-demo.png"),
        help="where to write the PNG plot (default: novacache-demo.png)",
    )  # fmt: skip
    demo.add_argument("--quick", action="store_true", help="a 3-second run: a smoke test")
    demo.add_argument(
        "--dir", metavar="PATH", type=Path, help="where to make the temp dir (default: system)"
    )
    from .admin import add_parsers

    add_parsers(sub)
    return parser


def _faults(text: str) -> tuple[str, ...]:
    from ..benchmark.soak import FAULTS

    faults = tuple(f.strip() for f in text.split(",") if f.strip())
    if faults == ("none",):
        return ()
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or not faults:
        raise argparse.ArgumentTypeError(
            f"unknown faults {', '.join(unknown) or '(none given)'};"
            f" choose from {', '.join(FAULTS)} (or 'none')"
        )
    return faults


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, not {text}")
    return value


def _soak_parser(sub: Any) -> None:
    soak = sub.add_parser(
        "soak",
        help="run the multi-process soak with Redis faults and check every read",
        description="N processes x M threads, each one CacheManager (L1 + Redis + SQLite on "
        "one file + the invalidation bus), one writer per key; Redis SIGKILLed and "
        "restarted (empty or from its AOF) and SIGSTOPped on a schedule. Reports ops/s, "
        "p99, stale reads (by source, window, age), lost writes, resurrected deletes, "
        "RSS and recovery times. See docs/soak.md.",
    )
    soak.add_argument("--duration", type=_seconds, default=360.0, help="seconds (default 360)")
    soak.add_argument("--processes", type=_positive, default=2, help="processes (default 2)")
    soak.add_argument("--threads", type=_positive, default=2, help="threads each (default 2)")
    soak.add_argument("--keys", type=_positive, default=20_000, help="keys (default 20000)")
    soak.add_argument(
        "--faults",
        type=_faults,
        default=("kill", "freeze", "aof-restart", "kill", "kill", "aof-restart"),
        metavar="LIST",
        help="comma-separated faults, spread evenly over the run: kill (SIGKILL, restart "
        "empty), aof-restart (SIGKILL, restart from the append-only file), freeze "
        "(SIGSTOP); 'none' for none (default kill,freeze,aof-restart,kill,kill,aof-restart)",
    )
    soak.add_argument(
        "--freeze-seconds", type=_seconds, default=10.0, help="length of a freeze (default 10)"
    )
    soak.add_argument(
        "--down-seconds",
        type=_seconds,
        default=1.0,
        help="how long Redis stays dead before a restart (default 1)",
    )
    soak.add_argument("--l1-size", type=_positive, default=5000, help="L1 entries (default 5000)")
    soak.add_argument("--seed", type=int, default=1, help="seed of the workload (default 1)")
    soak.add_argument(
        "--redis-server",
        metavar="PATH",
        help="the redis-server binary to start (default: the one on PATH); the soak always "
        "runs its own server on a free loopback port, since it kills it",
    )
    soak.add_argument("--json", metavar="PATH", type=Path, help="also write the report as JSON")
    soak.add_argument(
        "--workdir", metavar="PATH", type=Path, help="keep the records, logs and files here"
    )
    soak.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _soak(args: argparse.Namespace) -> int:
    from ..benchmark.redis_server import find_redis_server
    from ..benchmark.soak import SoakOptions, run
    from ..benchmark.soak.report import render

    program = args.redis_server or find_redis_server()
    if program is None or not Path(program).is_file():
        print(
            f"novacache soak: no redis-server at {program}"
            if program
            else "novacache soak: needs redis-server on PATH, or --redis-server PATH",
            file=sys.stderr,
        )
        return 2
    options = SoakOptions(
        duration=args.duration,
        processes=args.processes,
        threads=args.threads,
        keys=args.keys,
        faults=args.faults,
        freeze_seconds=args.freeze_seconds,
        down_seconds=args.down_seconds,
        l1_size=args.l1_size,
        seed=args.seed,
        redis_server=program,
        workdir=args.workdir,
    )
    tty = sys.stderr.isatty()
    last = [0.0]

    def progress(text: str, final: bool) -> None:
        if args.quiet:
            return
        import time

        if tty:
            end = "\n" if final else ""
            print("\r" + text, end=end, file=sys.stderr, flush=True)
        elif final or time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            print(text, file=sys.stderr, flush=True)

    report = run(options, progress)
    sys.stdout.write(render(report))
    sys.stdout.flush()
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report["completed"] else 1


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    if not args.duration > 0 or args.workers < 1 or args.threads < 1:
        sys.stderr.write("novacache demo: --duration > 0, --workers and --threads >= 1\n")
        return 2
    if args.config is not None and args.redis is None:
        from .. import config
        from ..errors import ConfigurationError

        try:
            loaded = config.load(args.config)
        except ConfigurationError as exc:
            sys.stderr.write(f"novacache demo: {exc}\n")
            return 2
        if loaded.redis is not None:
            args.redis = loaded.redis.url
    run(
        duration=3.0 if args.quick else args.duration,
        workers=args.workers,
        redis_url=args.redis,
        threads=args.threads,
        json_path=args.json,
        plot_path=args.plot,
        workdir=args.dir,
        out=sys.stdout,
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..benchmark import BenchOptions, run
    from ..benchmark.report import render
    from ..benchmark.targets import judge

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
    rows = args.only or _default_rows()
    with_codec = CODEC_ROW in rows
    with_cachetools = CACHETOOLS_ROW in rows
    with_manager = MANAGER_ROW in rows
    with_http = HTTP_ROW in rows
    if with_manager or with_http:
        problem = _manager_precheck(args)
        if problem is None and with_http:
            problem = _http_precheck()
        if problem:
            print(f"novacache bench: {problem}", file=sys.stderr)
            return 2
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
        with_codec = with_cachetools = with_manager = with_http = False
    if options.rows:
        results = run(options, progress)
        verdicts = judge(results.rows)
        sys.stdout.write(render(results, verdicts))
        sys.stdout.flush()
        document.update(results.to_json())
        document["targets"] = [verdict.to_json() for verdict in verdicts]
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
    if with_manager:
        code = _manager(args, progress, document)
        if code:
            return code
    if with_http:
        code = _http(args, progress, document)
        if code:
            return code
    if args.traces:
        code = _traces(args, progress, document)
        if code:
            return code
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        progress(f"wrote {args.json}")
    return 0


def _manager_precheck(args: argparse.Namespace) -> str | None:
    """Why the manager section cannot run (``None``: it can)."""
    if args.redis is not None:
        from ..benchmark.manager_bench import redis_target
        from ..errors import ConfigurationError

        try:
            redis_target(args.redis)
        except (ConfigurationError, TypeError, ValueError) as exc:
            return f"--redis: {exc}"
        return None
    from ..benchmark.redis_server import find_redis_server

    if find_redis_server() is None:
        return "the manager section needs redis-server on PATH, or --redis URL"
    return None


def _http_precheck() -> str | None:
    """Why the http section cannot run (``None``: it can)."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return "the http section needs starlette and uvicorn: pip install 'novacache[http]'"
    return None


def _http(
    args: argparse.Namespace, progress: Callable[[str], None], document: dict[str, object]
) -> int:
    from ..benchmark import http_bench
    from ..benchmark.isolated import SectionFailed, run_section

    options: dict[str, Any] = {"pin": "split" if args.pin == "same" else args.pin}
    for name in ("redis", "rounds"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    progress("measuring http (child process): the management API beside a bare endpoint")
    try:
        doc = run_section("http_bench", quick=args.quick, options=options, progress=progress)
    except SectionFailed as exc:
        print(f"novacache bench: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(
        "\nhttp: the management API (one uvicorn worker) beside a bare Starlette endpoint"
        " on the same server; ratio = req/s over the floor's in the same round (target"
        " printed, never asserted)\n" + http_bench.format_report(doc) + "\n"
    )
    sys.stdout.flush()
    document["http"] = doc
    return 0


def _manager(
    args: argparse.Namespace, progress: Callable[[str], None], document: dict[str, object]
) -> int:
    from ..benchmark import manager_bench
    from ..benchmark.isolated import SectionFailed, run_section

    options: dict[str, Any] = {"pin": args.pin}
    for name in ("redis", "rounds", "seed"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    progress("measuring manager (child process): the manager beside its floors and peers")
    try:
        doc = run_section("manager_bench", quick=args.quick, options=options, progress=progress)
    except SectionFailed as exc:
        print(f"novacache bench: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(
        "\nmanager: CacheManager / AsyncCacheManager hot paths beside their floors and"
        " peers (ratio to the row's reference; targets are printed, never asserted)\n"
        + manager_bench.format_report(doc)
        + "\n"
    )
    sys.stdout.flush()
    document["manager"] = doc
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
    if args.command == "soak":
        return _soak(args)
    from .admin import COMMANDS, run

    if args.command in COMMANDS:
        return run(args)
    return 2  # pragma: no cover - argparse refuses unknown commands first


if __name__ == "__main__":
    sys.exit(main())
