"""The docs are part of the contract: every page under docs/ carries at least one
example that runs as a doctest in the test command (pytest collects docs/*.md with
``--doctest-glob``), and the README links every page."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))


def test_there_are_pages() -> None:
    assert PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_has_a_runnable_example(page: Path) -> None:
    assert ">>> " in page.read_text(encoding="utf-8"), f"{page.name} has no doctest example"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_readme_links_the_page(page: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"(docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"
