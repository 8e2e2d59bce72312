"""``novacache bench``: the command runs, and its JSON has every row and implementation.

A smoke test of the harness only: ``--quick`` numbers mean little and no timing is
asserted, only that every measured number is there and positive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import novacache
from novacache.benchmark import ROW_IDS
from novacache.benchmark.peers import discover
from novacache.ops.cli import main

IMPLS = {impl.name: impl for impl in discover()}
MAPPINGS = {name for name, impl in IMPLS.items() if "mapping" in impl.roles}
MEMOIZERS = {name for name, impl in IMPLS.items() if "memoize" in impl.roles}


def expected_entries(row_id: str) -> set[str]:
    """The entries each row must list, installed or not."""
    if row_id == "memoize":
        return MEMOIZERS | {"loop", "call"}
    if row_id in ("memory", "threads", "aside", "hit-big"):
        return set(MAPPINGS)
    return MAPPINGS | {"loop"}


def may_lack_a_number(row_id: str, name: str) -> bool:
    """Entries that may legitimately carry a status instead of numbers."""
    impl = IMPLS.get(name)
    if impl is not None and not impl.available:
        return True  # not installed / not built
    if row_id == "hit-ttl" and name == "lru-dict":
        return True  # no TTL support
    if row_id in ("aside", "hit-big") and name in ("novacache-pure", "cachetools"):
        return True  # minutes per pass at those sizes: not run there
    # cachetools is documented as not thread-safe: it may raise under two threads.
    return row_id == "threads" and name == "cachetools"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    assert main(["bench", "--quick", "--quiet", "--json", str(path)]) == 0
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_method_says_how_it_was_measured(report: dict[str, Any]) -> None:
    method = report["method"]
    for key in ("size", "rounds", "python", "cpu", "orders", "compiled_core", "versions"):
        assert key in method
    assert method["orders"] == ["insertion", "random"]


def test_the_json_carries_the_verdicts_of_the_targets(report: dict[str, Any]) -> None:
    # --quick runs the cache-aside loop at 1,000 entries only and no big cache: the
    # verdicts are those of the rows and columns it measured.
    verdicts = report["targets"]
    assert {(v["row"], v["column"]) for v in verdicts} == {
        ("hit-int", "insertion"),
        ("hit-int", "random"),
        ("aside", "1,000"),
    }
    for v in verdicts:
        low, high = v["ratio_interval"]
        assert 0 < low <= v["ratio"] <= high
        assert v["met"] == (v["ratio"] <= v["bound"])
        assert v["rounds"] == report["method"]["rounds"]


def test_every_row_in_order(report: dict[str, Any]) -> None:
    assert [row["id"] for row in report["rows"]] == list(ROW_IDS)


@pytest.mark.parametrize("row_id", ROW_IDS)
def test_row_has_every_implementation_with_positive_numbers(
    report: dict[str, Any], row_id: str
) -> None:
    row = next(r for r in report["rows"] if r["id"] == row_id)
    entries = {e["name"]: e for e in row["entries"]}
    assert set(entries) == expected_entries(row_id)
    for name, entry in entries.items():
        if not entry["values"] and may_lack_a_number(row_id, name):
            assert entry["status"], f"{row_id}/{name}: neither a number nor a reason"
            continue
        assert set(entry["values"]) == set(row["columns"]), f"{row_id}/{name}"
        for column, value in entry["values"].items():
            if row_id == "memory" and column == "tracemalloc":
                # Note that tracemalloc does not see allocators outside Python's (cachebox).
                assert value >= 0, f"{row_id}/{name}/{column}"
            else:
                assert value > 0, f"{row_id}/{name}/{column}"


def test_ratios_to_references_measured_in_the_same_run(report: dict[str, Any]) -> None:
    row = next(r for r in report["rows"] if r["id"] == "hit-int")
    assert row["refs"] == ["dict", "floor"]
    dict_entry = next(e for e in row["entries"] if e["name"] == "dict")
    for order in row["columns"]:
        assert dict_entry["ratios"][order]["dict"] == pytest.approx(1.0)


def test_only_and_python_dash_m(tmp_path: Path) -> None:
    """``python -m novacache bench --only ...`` in a fresh interpreter: the table and JSON."""
    path = tmp_path / "only.json"
    env = dict(os.environ)
    src = str(Path(novacache.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    args = ["bench", "--quick", "--only", "hit-int,get-miss", "--size", "500", "--json", str(path)]
    proc = subprocess.run(
        [sys.executable, "-m", "novacache", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "empty loop" in proc.stdout
    assert "Legend" in proc.stdout
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [row["id"] for row in data["rows"]] == ["hit-int", "get-miss"]
    assert data["method"]["size"] == 500


def test_unknown_row_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--only", "no-such-row"])
    assert exc.value.code == 2
    assert "unknown rows" in capsys.readouterr().err


def test_missing_peers_are_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in ("cachetools", "lru", "cachebox", "novacache._core"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    path = tmp_path / "missing.json"
    only = "hit-ttl,memoize,memory,threads"
    assert (
        main(["bench", "--quick", "-q", "--only", only, "--size", "300", "--json", str(path)]) == 0
    )
    out = capsys.readouterr().out
    assert "not installed" in out
    assert "n/a: not built" in out
    for row in json.loads(path.read_text(encoding="utf-8"))["rows"]:
        entries = {e["name"]: e for e in row["entries"]}
        for name in ("cachetools", "lru-dict", "cachebox"):
            if name in entries:
                assert entries[name]["status"] == "not installed"
                assert entries[name]["values"] == {}
        assert entries["novacache"]["status"] == "n/a: not built"
        if row["id"] == "threads":
            # The reference is missing: ratios are absent, not an error.
            assert all(e["ratios"]["both threads"]["cachebox"] is None for e in row["entries"])


def test_codec_section_has_its_target_rows(report: dict[str, Any]) -> None:
    rows = report["codec"]
    by_id = {(r["row"], r["impl"]): r for r in rows}
    assert by_id[("raw-100", "codec")]["encode_decode_ns"] > 0
    overhead = by_id[("overhead-1k", "codec")]
    assert overhead["codec_ns"] > 0
    assert overhead["bare_ns"] > 0
    assert overhead["ratio"] > 0  # median of per-round ratios, not a ratio of medians
    sized = [r for r in rows if "encode_ns" in r and r["impl"] == "codec"]
    assert {r["size"] for r in sized} >= {100, 1024, 10240, 102400}
    assert all(r["wire_bytes"] > 0 for r in sized)


def test_cachetools_section_has_every_target_row(report: dict[str, Any]) -> None:
    from novacache.benchmark.cachetools_bench import ROWS

    rows = report["cachetools"]
    ours = {r["row"]: r for r in rows if r["impl"] == "novacache"}
    assert set(ours) == set(ROWS)
    for row in ours.values():
        assert row["ns"] > 0
        assert row["target"] is not None
        if row["ratio"] is not None:  # None only when the floor is not built
            assert row["ratio"] > 0


def test_sections_run_in_a_child_process_and_unknown_ones_are_refused() -> None:
    from novacache.benchmark.isolated import run_section

    with pytest.raises(ValueError, match="unknown benchmark section"):
        run_section("os", quick=True)


# ------------------------------------------------------------------ bench --traces
def test_traces_section_runs_and_writes_json(tmp_path: Path) -> None:
    from novacache.benchmark.traces.formats import write_csv

    trace_file = tmp_path / "mine.csv"
    write_csv(trace_file, [1, 2, 1, 3, 1, 2] * 200)
    out = tmp_path / "traces.json"
    png = tmp_path / "traces.png"
    argv = [
        "bench",
        "--traces",
        "--quick",
        "--quiet",
        "--trace-names",
        "zipf-0.9,shift",
        "--trace-requests",
        "6000",
        "--trace-objects",
        "3000",
        "--trace-file",
        str(trace_file),
        "--plot",
        str(png),
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))["traces"]
    assert [t["trace"] for t in doc["traces"]] == ["zipf-0.9", "shift", "mine.csv"]
    for trace in doc["traces"]:
        impls = {row["impl"] for row in trace["rows"]}
        assert "novacache LRU" in impls
        assert "tinylfu (pure ref)" in impls
        assert "novacache tinylfu" in impls
        ref = {
            r["capacity"]: r["miss_ratio"]
            for r in trace["rows"]
            if r["impl"] == "tinylfu (pure ref)"
        }
        compiled = {
            r["capacity"]: r["miss_ratio"]
            for r in trace["rows"]
            if r["impl"] == "novacache tinylfu"
        }
        assert compiled == ref  # the compiled policy makes the reference's decisions
        for row in trace["rows"]:
            assert 0.0 <= row["miss_ratio"] <= 1.0
            assert row["ns_per_request"] > 0
        lru = {
            r["capacity"]: r["miss_ratio"] for r in trace["rows"] if r["impl"] == "novacache LRU"
        }
        for row in trace["rows"]:  # every LRU peer misses exactly as novacache does
            if row["impl"].startswith(("cachebox", "lru-dict", "cachetools", "libCacheSim LRU")):
                assert row["miss_ratio"] == pytest.approx(lru[row["capacity"]], abs=1e-9)
    assert {r["impl"] for r in doc["cache_aside"]} >= {"dict", "novacache", "novacache tinylfu"}
    if "plot" in doc:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_traces_section_refuses_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "--traces", "--quick", "--quiet", "--trace-file", str(tmp_path / "nope.bin")]
    assert main(argv) == 2
    assert "no such trace file" in capsys.readouterr().err


def test_traces_section_refuses_a_malformed_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.oracleGeneral"
    bad.write_bytes(b"\x00" * 25)
    argv = [
        "bench",
        "--traces",
        "--quick",
        "--quiet",
        "--no-plot",
        "--trace-names",
        "none",
        "--trace-file",
        str(bad),
    ]
    assert main(argv) == 2
    assert "trailing bytes" in capsys.readouterr().err
