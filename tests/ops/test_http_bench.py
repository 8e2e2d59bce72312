"""`novacache bench --only http` measures what it says: every request of every case was
answered 200 by the real server (auth passed, the invalidations were forced), and the
report holds both rows beside their floors. (No timing is asserted.)"""

from __future__ import annotations

import sys

from novacache.benchmark import http_bench
from novacache.ops.cli import build_parser


def test_the_http_section_runs_and_every_answer_is_200() -> None:
    doc = http_bench.run(quick=True, rounds=1, seconds=0.2, clients=5)
    rows = {row["id"]: row for row in doc["rows"]}
    assert set(rows) == {"stats", "invalidate"}
    for row in rows.values():
        assert row["statuses"] == [200]
        assert row["rps"] > 0
        assert row["floor_rps"] > 0
        assert len(row["ratios"]) == 1
        if sys.platform == "linux":  # the CPU per request, read from /proc
            assert row["cpu_us"] > 0
            assert row["floor_cpu_us"] > 0
            assert row["cpu_ratio"] > 0
    assert rows["stats"]["floor"] == "bare-get"
    assert rows["invalidate"]["floor"] == "bare-post"
    text = http_bench.format_report(doc)
    assert text.splitlines()[1].startswith("stats")
    assert "cpu ratio" in text.splitlines()[0]


def test_the_section_is_opt_in() -> None:
    args = build_parser().parse_args(["bench", "--only", "http", "--quick"])
    assert args.only == ("http",)
