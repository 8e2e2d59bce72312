"""``novacache demo``: the simulated NovaCron cluster runs on the embedded default and
reports what it measured (a short run: the figures' relations, not their values)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from novacache.ops.cli import main
from novacache.ops.demo import run


def test_demo_compares_the_workload_without_and_with_the_cache(tmp_path: Path) -> None:
    out = io.StringIO()
    work = tmp_path / "work"
    work.mkdir()
    result = run(
        duration=3.0, threads=3, out=out, workdir=work, json_path=tmp_path / "d.json",
        plot_path=tmp_path / "d.png", live=False,
    )  # fmt: skip
    phases = result.figures["phases"]
    base, cached, pred = phases["without cache"], phases["with cache"], phases["cache + predictive"]
    for phase in (base, cached, pred):
        assert phase["ops"] > 0
        assert phase["errors"] == 0
    assert base["hit_ratio"] == 0.0  # every operation went to a source
    assert base["source_calls_per_1000_ops"] >= 1000
    for phase in (cached, pred):
        assert phase["hit_ratio"] > 0.2
        assert phase["source_calls_per_1000_ops"] < base["source_calls_per_1000_ops"]
        assert phase["tiers"]["L1"]["p50_ms"] < base["latency_ms"]["p50"]
        assert phase["tiers"]["L1"]["served"] > 0
    assert cached["migration_updates_missed"] == pred["migration_updates_missed"] == 0
    text = out.getvalue()
    assert "without cache:" in text
    assert "predictive pre-caching: node-capacity hit ratio" in text
    assert f"plot: {(tmp_path / 'd.png').resolve()}" in text
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "d.json").read_text()) == result.figures
    assert not list(work.iterdir())  # the temp dir is gone


def test_the_cli_runs_the_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "p.png"
    assert main(["demo", "--quick", "--dir", str(tmp_path), "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "simulated NovaCron cluster" in printed
    assert "cache + predictive" in printed
    assert plot.exists()
    assert main(["demo", "--workers", "0"]) == 2
