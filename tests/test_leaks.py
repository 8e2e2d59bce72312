"""Leak tests, multidict's way: tests/isolated/leaks.py runs in a subprocess for each
implementation, repeating an operation many times; the script fails when the
traced memory grows after warm-up, when the refcount of a key or value used in every
round grows, or when marker objects survive the dropped cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from _helpers import child_env

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "isolated" / "leaks.py"

CASES = [
    "set-get",
    "evict-by-weight",
    "default-weigher",
    "expire",
    "sweep-and-lookup-expiry",
    "pop-popitem-del",
    "misses-raise",
    "entry-too-large",
    "batch",
    "clear",
    "memoize",
    "memoize-typed-kwargs",
    "memoize-ttl",
    "memoize-unbounded-and-zero",
]


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="refcounts: CPython only")
def test_no_leak(impl: ModuleType) -> None:
    env = child_env()
    proc = subprocess.run(
        [sys.executable, "-u", str(SCRIPT), impl.__name__, *CASES],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    leaks = [line for line in proc.stdout.splitlines() if not line.startswith("OK ")]
    assert not leaks, "\n".join(leaks)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.stdout.split() == [w for case in CASES for w in ("OK", case)]


def test_leak_script_cases_are_all_tested() -> None:
    text = SCRIPT.read_text()
    declared = [line.split('"')[1] for line in text.splitlines() if '@case("' in line]
    assert sorted(declared) == sorted(CASES)
