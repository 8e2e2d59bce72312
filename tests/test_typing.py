"""Static typing of the public API: ``mypy --strict`` on tests/typing/check_*.py must
report exactly what their ``# reveal:`` and ``# error:`` comments announce."""

from __future__ import annotations

from pathlib import Path

import pytest

from _typecheck import check_typing

FILES = sorted((Path(__file__).resolve().parent / "typing").glob("check_*.py"))

pytest.importorskip("mypy")


def test_mypy_strict(tmp_path: Path) -> None:
    check_typing(FILES, tmp_path)
