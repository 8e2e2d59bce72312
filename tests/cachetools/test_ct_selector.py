"""``NOVACACHE_CACHETOOLS_IMPL`` selects the implementation when the package is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import novacache


def _import_with(value: str) -> subprocess.CompletedProcess[str]:
    src = Path(novacache.__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    env["NOVACACHE_CACHETOOLS_IMPL"] = value
    code = "import novacache.cachetools as c; print(c._implementation)"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("value", ["pure", "auto", ""])
def test_known_values_import(value: str) -> None:
    result = _import_with(value)
    assert result.returncode == 0, result.stderr
    # No compiled fast path is selected yet: both give the pure classes.
    assert result.stdout.strip() == "pure"


def test_unknown_value_is_refused() -> None:
    result = _import_with("compiled-please")
    assert result.returncode != 0
    assert "NOVACACHE_CACHETOOLS_IMPL='compiled-please'" in result.stderr
