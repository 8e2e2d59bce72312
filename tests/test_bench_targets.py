"""The in-process table's targets, judged on a run's rows (novacache.benchmark.targets):
the per-round ratios, their median and interval, the verdict, the report and JSON."""

from __future__ import annotations

import doctest

import pytest

from novacache.benchmark import targets
from novacache.benchmark.report import render
from novacache.benchmark.results import BenchResults, Entry, Row
from novacache.benchmark.stats import median_interval
from novacache.benchmark.targets import L1_TARGETS, Target, judge

TINY = Target("aside", "novacache-tinylfu", "novacache", 1.15)


def _row(row_id: str, columns: list[str], samples: dict[str, dict[str, list[float]]]) -> Row:
    row = Row(row_id, row_id, "ns/op", columns, ["dict"])
    for name, by_column in samples.items():
        values = {c: sorted(v)[len(v) // 2] for c, v in by_column.items()}
        row.entries.append(Entry(name, name, values, samples=by_column))
    return row


def _aside(lru: list[float], tinylfu: list[float], column: str = "10,000") -> Row:
    return _row(
        "aside", [column], {"novacache": {column: lru}, "novacache-tinylfu": {column: tinylfu}}
    )


def test_the_ratio_is_the_median_of_the_rounds_ratios_with_its_interval() -> None:
    # Round i of both entries ran side by side: the ratio is taken round by round. A
    # slow round for both (a noisy neighbour) leaves its ratio alone.
    lru = [60.0 + (30.0 if i % 5 == 0 else 0.0) for i in range(21)]
    tinylfu = [x * (1.05 + 0.002 * i) for i, x in enumerate(lru)]
    [v] = judge([_aside(lru, tinylfu)], [TINY])
    ratios = [b / a for a, b in zip(lru, tinylfu, strict=True)]
    assert v.ratio == pytest.approx(sorted(ratios)[10])
    assert (v.low, v.high) == median_interval(ratios)
    assert v.rounds == 21
    assert v.met
    assert v.decided  # 1.05-1.09: all below 1.15


@pytest.mark.parametrize(
    ("spread", "met", "decided"),
    [
        ((1.00, 1.10), True, True),
        ((1.12, 1.18), True, False),  # median 1.15: met, but the interval spans the bound
        ((1.16, 1.30), False, True),
    ],
)
def test_the_verdict_and_how_sure_it_is(
    spread: tuple[float, float], met: bool, decided: bool
) -> None:
    lo, hi = spread
    tinylfu = [100.0 * (lo + (hi - lo) * i / 20) for i in range(21)]
    [v] = judge([_aside([100.0] * 21, tinylfu)], [TINY])
    assert (v.met, v.decided) == (met, decided)
    text = targets.render([v])
    assert "aside 10,000" in text
    assert "novacache-tinylfu / novacache" in text
    assert ("NOT met" in text) is not met
    assert ("undecided" in text.splitlines()[1]) is not decided


def test_what_a_run_did_not_measure_is_left_out() -> None:
    row = _aside([60.0] * 5, [66.0] * 5)
    assert judge([row], [Target("hit-int", "novacache-tinylfu", "novacache", 1.1)]) == []
    assert judge([row], [Target("aside", "novacache", "cachebox", 1.0)]) == []  # no cachebox
    assert judge([row], [Target("aside", "novacache-tinylfu", "novacache", 1.15, ("1,000",))]) == []
    # No rounds recorded (an entry with a status and no numbers).
    row.entries[1].samples = {}
    assert judge([row], [TINY]) == []
    assert targets.render([]) == ""


def test_big_caches_are_judged_at_the_sizes_the_target_names() -> None:
    columns = ["20,000", "1,000,000", "5,000,000"]
    row = _row(
        "hit-big",
        columns,
        {
            "dict": {c: [100.0] * 7 for c in columns},
            "novacache": {c: [110.0] * 7 for c in columns},
        },
    )
    verdicts = judge([row])
    assert [(v.target.entry, v.column) for v in verdicts] == [
        ("novacache", "1,000,000"),
        ("novacache", "5,000,000"),
    ]
    assert all(v.ratio == pytest.approx(1.1) and v.met for v in verdicts)


def test_every_target_names_a_row_of_the_bench() -> None:
    from novacache.benchmark.runner import ROW_IDS

    assert {t.row for t in L1_TARGETS} <= set(ROW_IDS)
    assert all(t.bound > 0 and t.issue == 20 for t in L1_TARGETS)


def test_the_report_and_the_json_form_of_the_verdicts() -> None:
    lru = [60.0] * 11
    results = BenchResults(
        {
            "date": "today",
            "size": 1000,
            "memory_size": 1000,
            "rounds": 11,
            "warmup_rounds": 1,
            "python": "3",
            "platform": "p",
            "cpu": "c",
            "cpu_count": 2,
            "seed": 0,
            "thread_ops_per_thread": 1,
            "thread_rounds": 1,
        },
        [_aside(lru, [66.0] * 11)],
    )
    text = render(results)
    assert "Targets (median of the per-round ratios" in text
    assert "x1.100 (1.10-1.10)  <= 1.15  met" in text
    [doc] = [v.to_json() for v in judge(results.rows)]
    assert doc["row"] == "aside"
    assert doc["column"] == "10,000"
    assert (doc["entry"], doc["reference"], doc["bound"]) == (
        "novacache-tinylfu",
        "novacache",
        1.15,
    )
    assert doc["ratio"] == pytest.approx(1.1)
    assert doc["met"] is True
    assert doc["decided"] is True
    assert doc["rounds"] == 11


def test_the_modules_example_runs() -> None:
    failed, attempted = doctest.testmod(targets)
    assert attempted > 0
    assert failed == 0
