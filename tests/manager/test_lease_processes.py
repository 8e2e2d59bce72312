"""The cross-process single-flight (``get_or_load(..., lease=)``) with real OS processes:
two processes, each with its own manager (L1 + Redis), ask for one cold key at once and
the loader runs once in total."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from tiers.redis_servers import Standalone

from . import _procs
from ._support import prefix


def test_two_processes_one_cold_key_load_once(redis_standalone: Standalone, tmp_path: Path) -> None:
    ns = prefix()
    key = "report:42"
    log = tmp_path / "loads.log"
    log.touch()
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    pipes = []
    children = []
    for _ in range(2):
        ours, theirs = ctx.Pipe()
        child = ctx.Process(
            target=_procs.load_with_lease,
            args=(theirs, redis_standalone.url, ns, key, str(log), go, 1.0),
            daemon=True,
        )
        child.start()
        pipes.append(ours)
        children.append(child)
    try:
        for ours in pipes:
            assert ours.poll(20), "a child did not start within 20 s"
            assert ours.recv() == "ready"
        go.set()  # both race for the cold key now
        results = []
        for ours in pipes:
            assert ours.poll(15), "a child did not answer within 15 s"
            results.append(ours.recv())
    finally:
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
    assert [child.exitcode for child in children] == [0, 0]
    assert [value for value, _ in results] == ["loaded for report:42"] * 2
    loaders = log.read_text().split()
    assert len(loaders) == 1, f"the loader ran {len(loaders)} times: {loaders}"
    assert sorted(loads for _, loads in results) == [0, 1]  # one loaded, the other waited
    assert int(loaders[0]) in {child.pid for child in children}
