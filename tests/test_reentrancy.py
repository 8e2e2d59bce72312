"""Re-entrancy: code the cache runs uses the same cache while an operation is running.

A value's ``__del__`` (evicted, replaced, popped, cleared, expired), a key's
``__eq__``/``__hash__`` during lookups, a weigher and a timer: each sets, deletes,
clears or reads the same cache. Every scenario runs in a subprocess
(tests/isolated/reentrancy.py), so a segfault shows up as a failure with its exit code
and a deadlock as a timeout; inside, nothing may raise and the invariants must hold.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "isolated" / "reentrancy.py"
SRC = HERE.parent / "src"

SCENARIOS = [
    *(
        f"del:{t}"
        for t in (
            "evict",
            "evict-by-weight",
            "replace",
            "pop",
            "del",
            "popitem",
            "clear",
            "delete-many",
            "set-many",
            "expire",
            "lookup-expired",
            "get-many-expired",
            "sweep-on-insert",
            "drop-cache",
        )
    ),
    *(f"key:{w}-{a}" for w in ("eq", "hash") for a in ("set", "del", "clear", "same")),
    *(f"weigher:{a}" for a in ("read", "set", "del", "clear")),
    *(f"timer:{a}" for a in ("read", "set", "del", "clear", "expire")),
    "memoize:",
]


def run_isolated(module: str, *args: str, timeout: float = 60) -> Any:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, str(SCRIPT), module, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_reentrancy(impl: ModuleType, scenario: str) -> None:
    try:
        proc = run_isolated(impl.__name__, scenario)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{scenario}: timed out (deadlock?)")
    signal = f" (killed by signal {-proc.returncode})" if proc.returncode < 0 else ""
    assert proc.returncode == 0, (
        f"{scenario}: exit code {proc.returncode}{signal}\n{proc.stderr[-3000:]}"
    )
    assert proc.stdout.strip() == "OK"
