"""``novacache bench --only manager``: the manager section end to end against a real
redis-server (the one it starts, and one given with ``--redis``), and its bookkeeping
(ratios, targets, peers ahead or behind, wrong results) on made-up samples.

No timing is asserted: ``--quick`` numbers mean little. What is checked is that every row
lists every implementation with positive numbers, or, for a peer that is not installed,
says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from novacache.benchmark import manager_bench
from novacache.benchmark.manager_cases import PEER_NAMES, ROWS, BenchError, Case
from novacache.benchmark.peers_manager import installed
from novacache.ops.cli import main
from tiers.redis_servers import Standalone, require_redis, start_standalone, topology

NUMBERS = ("median", "min", "max", "p25", "p75")


def check_document(doc: dict[str, Any]) -> None:
    """Every row, every implementation, positive numbers (or "not installed")."""
    assert [row["id"] for row in doc["rows"]] == manager_bench.row_ids()
    for key in ("keys", "rounds", "ttl", "value", "server", "pinning", "versions"):
        assert key in doc["method"], key
    assert len(doc["method"]["value"]) == 7
    assert set(doc["method"]["pinning"]) == {"client", "server"}
    for row, spec in zip(doc["rows"], ROWS, strict=True):
        assert [e["impl"] for e in row["entries"]] == list(spec.entries), row["id"]
        assert isinstance(row["met"], bool), row["id"]
        for entry in row["entries"]:
            where = f"{row['id']}/{entry['impl']}"
            if entry["role"] == "peer" and entry["status"] is not None:
                assert entry["status"] == "not installed", where
                assert not installed(entry["impl"].split()[0]), f"{where}: installed"
                continue
            assert entry["status"] is None, where
            for number in NUMBERS:
                assert entry[number] > 0, f"{where}/{number}"
            assert entry["spread"] >= 0, where
            if entry["role"] == "reference":
                assert entry["impl"] == spec.reference, where
            else:
                assert entry["ratio"] > 0, where


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    require_redis("redis-server")
    with topology(start_standalone, tmp_path_factory.mktemp("bench-manager")) as s:
        yield s


def test_own_server_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The section starts (and stops) its own redis-server; table on stdout, JSON file."""
    require_redis("redis-server")
    path = tmp_path / "bench.json"
    assert main(["bench", "--only", "manager", "--quick", "--quiet", "--json", str(path)]) == 0
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"manager"}  # only the section asked for
    check_document(data["manager"])
    assert "started on 127.0.0.1:" in data["manager"]["method"]["server"]
    out = capsys.readouterr().out
    assert "row / implementation" in out
    for row in ROWS:
        assert row.title in out


def test_external_server_keeps_it_clean(server: Standalone, tmp_path: Path) -> None:
    """``--redis URL``: the section runs against it and deletes every key it wrote."""
    admin = server.server.client()
    try:
        admin.set("not-ours", b"1")
        path = tmp_path / "bench.json"
        args = ["bench", "--only", "manager", "--quick", "--quiet", "--pin", "none"]
        assert main([*args, "--redis", server.url, "--json", str(path)]) == 0
        doc = json.loads(path.read_text(encoding="utf-8"))["manager"]
        check_document(doc)
        assert doc["method"]["pinning"]["client"] is None
        assert admin.keys("*") == [b"not-ours"]
    finally:
        admin.close()


def test_bad_redis_url_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--only", "manager", "--redis", "redis+cluster://127.0.0.1:1"]) == 2
    assert "standalone redis://host:port/db URL" in capsys.readouterr().err


def test_no_redis_server_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["bench", "--only", "manager", "--quick"]) == 2
    assert "needs redis-server on PATH, or --redis URL" in capsys.readouterr().err


def test_the_manager_section_is_opt_in() -> None:
    from novacache.ops.cli import _default_rows

    assert "manager" not in _default_rows()
    assert {"codec", "cachetools"} <= set(_default_rows())


# -- the bookkeeping, on made-up cases -------------------------------------------------


def fake(row: str, impl: str, role: str, per_round: list[float], wrong: int = -1) -> Case:
    """A case whose pass ``r`` measures ``per_round[r]`` and whose result is right,
    except in pass ``wrong``."""
    passes = iter(range(len(per_round)))
    current = [0]

    def run(order: list[int]) -> tuple[float, list[tuple[int, Any]]]:
        current[0] = next(passes)
        return per_round[current[0]], [(order[-1], current[0] != wrong)]

    def verify(evidence: list[tuple[int, Any]], ops: int) -> str | None:
        return None if evidence[0][1] else "wrong value"

    return Case(row, impl, impl, role, run, verify)


def cases_for(rows: dict[str, dict[str, tuple[str, list[float]]]]) -> list[Case]:
    out = []
    for spec in ROWS:
        given = rows.get(spec.id, {})
        for impl in spec.entries:
            if impl in given:
                role, values = given[impl]
                out.append(fake(spec.id, impl, role, values))
            else:
                out.append(Case(spec.id, impl, impl, "peer", status="not installed"))
    return out


def row_of(summary: list[dict[str, Any]], row_id: str) -> dict[str, Any]:
    return next(r for r in summary if r["id"] == row_id)


def test_ratio_is_the_median_of_per_round_ratios_and_targets_are_judged() -> None:
    cases = cases_for(
        {
            # warm-up first (not counted), then 3 rounds
            "get-redis-sync": {
                "floor": ("reference", [1.0, 10.0, 20.0, 30.0]),
                "novacache": ("novacache", [1.0, 10.0, 22.0, 36.0]),  # ratios 1.0, 1.1, 1.2
                "dogpile.cache": ("peer", [1.0, 9.0, 21.0, 40.0]),
            },
            "tasks-100": {
                "floor": ("reference", [1.0, 100.0, 100.0, 100.0]),
                "novacache": ("novacache", [1.0, 99.0, 98.0, 101.0]),
                "cashews": ("peer", [1.0, 50.0, 60.0, 70.0]),
            },
        }
    )
    manager_bench.measure(cases, rounds=3, n=10, seed=1, progress=lambda m: None)
    summary = manager_bench.summarize(cases)
    get = row_of(summary, "get-redis-sync")
    nova = next(e for e in get["entries"] if e["impl"] == "novacache")
    assert nova["median"] == 22.0
    assert nova["ratio"] == pytest.approx(1.1)
    assert nova["ratios"] == pytest.approx([1.0, 1.1, 1.2])
    # Three rounds are too few for a 95% interval of the median: their whole range.
    assert nova["ratio_interval"] == pytest.approx([1.0, 1.2])
    assert get["met"] is False  # 1.1 > 1.05
    assert get["decided"] is False  # 1.0 <= 1.05: the interval spans the target
    assert get["ahead_of_peers"] is False  # dogpile's median is 21
    assert get["behind"] == ["dogpile.cache"]
    tasks = row_of(summary, "tasks-100")
    assert tasks["met"] is False  # 0.99 < 1.0: higher is better here
    assert tasks["ahead_of_peers"] is True
    # A row nobody measured has no verdict.
    assert row_of(summary, "set-sync")["met"] is None
    text = manager_bench.format_report(
        {"method": _method(), "rows": summary, "notes": {"floor": "a note"}}
    )
    assert "x1.100 (1.00-1.20) floor" in text
    assert "no, undecided; behind dogpile.cache" in text
    assert "not installed" in text
    assert "floor: a note" in text


@pytest.mark.parametrize(
    ("ratios", "met", "decided"),
    [
        # 31 rounds: the interval is the 10th to the 22nd smallest ratio.
        ([0.90 + 0.001 * i for i in range(31)], True, True),  # 0.909-0.921, all <= 1.03
        ([0.99 + 0.002 * i for i in range(31)], True, False),  # median 1.020, up to 1.032
        ([1.01 + 0.002 * i for i in range(31)], False, False),  # median 1.040, from 1.028
        ([1.10 + 0.001 * i for i in range(31)], False, True),  # 1.109-1.121, all > 1.03
    ],
)
def test_a_target_is_undecided_when_the_interval_of_the_median_spans_it(
    ratios: list[float], met: bool, decided: bool
) -> None:
    reference = [1000.0] * 32
    ours = [1000.0] + [1000.0 * r for r in ratios]  # the first round is the warm-up
    cases = cases_for(
        {
            "get-redis-l1-sync": {
                "redis-only": ("reference", reference),
                "novacache": ("novacache", ours),
            }
        }
    )
    manager_bench.measure(cases, rounds=31, n=10, seed=1, progress=lambda m: None)
    row = row_of(manager_bench.summarize(cases), "get-redis-l1-sync")
    nova = next(e for e in row["entries"] if e["impl"] == "novacache")
    lo, hi = nova["ratio_interval"]
    ordered = sorted(ratios)
    assert (lo, hi) == pytest.approx((ordered[9], ordered[21]))
    assert lo <= nova["ratio"] <= hi
    assert (row["met"], row["decided"]) == (met, decided)


def _method() -> dict[str, Any]:
    return {
        "keys": 10,
        "value": {},
        "ttl": 300.0,
        "rounds": 3,
        "warmup_rounds": 1,
        "server": "test",
        "pinning": {"client": None, "server": None},
        "versions": {"redis": "x"},
        "compiled_core": True,
    }


def test_a_wrong_result_of_ours_stops_the_run() -> None:
    cases = [
        fake("get-redis-sync", "floor", "reference", [1.0] * 4),
        fake("get-redis-sync", "novacache", "novacache", [1.0] * 4, wrong=2),
    ]
    with pytest.raises(BenchError, match="get-redis-sync / novacache: wrong value"):
        manager_bench.measure(cases, rounds=3, n=10, seed=1, progress=lambda m: None)


def test_a_wrong_result_of_a_peer_is_reported_not_measured() -> None:
    peer = fake("get-redis-sync", "dogpile.cache", "peer", [1.0] * 4, wrong=1)
    ours = fake("get-redis-sync", "novacache", "novacache", [1.0] * 4)
    manager_bench.measure([peer, ours], rounds=3, n=10, seed=1, progress=lambda m: None)
    assert peer.status is not None
    assert peer.status.startswith("wrong result")
    assert not peer.samples
    assert len(ours.samples) == 3


def test_peer_names_match_the_rows() -> None:
    named = {impl for row in ROWS for impl in row.entries}
    assert set(PEER_NAMES) <= named
