"""``novacache demo --quick``: runs on the embedded default and reports what it measured."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from novacache.ops.cli import main
from novacache.ops.demo import run


def test_demo_quick_measures_what_it_claims(tmp_path: Path) -> None:
    out = io.StringIO()
    phases = run(quick=True, out=out, workdir=tmp_path)
    cold, warm, stampede = phases[0], phases[1], phases[2]
    restart, after_delete = phases[3], phases[5]
    assert 0 < cold.loads <= 50
    assert warm.loads == 0  # everything is in L1 or L3 now
    assert warm.l1_hits + warm.l3_hits == warm.lookups
    assert stampede.loads == 1  # 16 threads on one cold key
    assert restart.loads == 0  # a new L1 over the same SQLite file
    assert restart.l3_hits == cold.loads  # each VM read back from L3 once
    assert after_delete.loads == 1  # a delete makes the next lookup load again
    node03 = phases[6]
    assert node03.loads > 0
    assert f"removed {node03.loads} VM records" in out.getvalue()  # exactly the tagged ones
    assert stampede.name.startswith("stampede")
    text = out.getvalue()
    assert "loader ran 1 time(s)" in text
    assert "p99" in text
    assert not list(tmp_path.iterdir())  # the temp dir is gone


def test_the_cli_runs_the_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "restart: new L1, same L3" in printed
    assert "0 loader calls" in printed
