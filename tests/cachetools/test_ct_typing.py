"""Static typing of novacache.cachetools: ``mypy --strict`` on typing/check_*.py must
reveal exactly the types in its ``# reveal:`` comments and report nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from _typecheck import check_typing

FILES = sorted((Path(__file__).resolve().parent / "typing").glob("check_*.py"))

pytest.importorskip("mypy")


def test_mypy_strict_reveals(tmp_path: Path) -> None:
    check_typing(FILES, tmp_path)
