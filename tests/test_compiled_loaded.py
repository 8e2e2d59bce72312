"""The selector in novacache._local: CI must run the compiled core, and the
NOVACACHE_NO_EXTENSIONS switch must select the pure-Python twin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import novacache
from _helpers import child_env
from novacache import _local


@pytest.mark.skipif(not os.environ.get("CI"), reason="only enforced when CI is set")
def test_compiled_core_is_active_in_ci() -> None:
    assert novacache.compiled, f"the compiled core did not load: {_local.IMPORT_ERROR!r}"
    assert novacache.LocalCache.__module__ == "novacache._core"


def test_compiled_flag_matches_selected_implementation() -> None:
    expected = "novacache._core" if novacache.compiled else "novacache._local_py"
    assert novacache.LocalCache.__module__ == expected
    assert novacache.memoize.__module__ == expected
    if novacache.compiled:
        assert _local.IMPORT_ERROR is None


def _probe(env_value: str | None) -> dict[str, object]:
    env = child_env()
    env.pop("NOVACACHE_NO_EXTENSIONS", None)
    if env_value is not None:
        env["NOVACACHE_NO_EXTENSIONS"] = env_value
    code = (
        "import json, novacache; "
        "print(json.dumps({'compiled': novacache.compiled, "
        "'module': novacache.LocalCache.__module__}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_no_extensions_selects_the_twin() -> None:
    result = _probe("1")
    assert result == {"compiled": False, "module": "novacache._local_py"}


@pytest.mark.parametrize("value", ["0", ""])
def test_no_extensions_off_selects_the_core_when_built(value: str) -> None:
    result = _probe(value)
    try:
        import novacache._core  # noqa: F401
    except ImportError:
        assert result == {"compiled": False, "module": "novacache._local_py"}
    else:
        assert result == {"compiled": True, "module": "novacache._core"}
