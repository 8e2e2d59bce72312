"""Packaging: the version is written once (src/novacache/_version.py) and seen the same
everywhere; the parts of a compiled module's source are where the build and the sdist look."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import novacache
from _helpers import child_env


def test_installed_metadata_carries_the_version() -> None:
    try:
        installed = importlib.metadata.version("novacache")
    except importlib.metadata.PackageNotFoundError:
        if os.environ.get("CI"):
            pytest.fail("CI is set but novacache is not installed")
        pytest.skip("novacache is not installed (running from src/)")
    assert installed == novacache.__version__


def test_cli_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "novacache", "--version"],
        capture_output=True,
        text=True,
        env=child_env(),
        check=True,
    )
    assert out.stdout.strip() == f"novacache {novacache.__version__}"


ROOT = Path(__file__).resolve().parent.parent
EXT = ROOT / "ext"
SHARED_PARTS = ("core/api.pxi",)


@pytest.mark.parametrize("pyx", sorted(EXT.glob("*.pyx")), ids=lambda p: p.name)
def test_included_parts_are_where_the_build_looks(pyx: Path) -> None:
    # setup.py rebuilds ext/_<name>.pyx when a file of ext/<name>/ changes, and
    # MANIFEST.in ships ext/**/*.pxi: every part a module includes must live there, and
    # every file there must be included (none left behind after a move).
    # The one part shared across modules: the core's C API (setup.py lists it in every
    # module's depends).
    parts = EXT / pyx.stem.lstrip("_")
    included = re.findall(r'^include "([^"]+)"', pyx.read_text(encoding="utf-8"), re.M)
    own = [name for name in included if name not in SHARED_PARTS]
    for name in included:
        path = (EXT / name).resolve()
        assert path.is_file(), f"{pyx.name} includes {name}, which does not exist"
        if name in own:
            assert path.parent == parts.resolve(), f"{pyx.name} includes {name} outside {parts}"
    on_disk = sorted(p.name for p in parts.glob("*.pxi")) if parts.is_dir() else []
    assert (
        sorted(
            Path(n).name for n in own + [n for n in SHARED_PARTS if n.startswith(f"{parts.name}/")]
        )
        == on_disk
    )
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8")
    if included:
        assert re.search(r"^recursive-include ext .*\*\.pxi", manifest, re.M)
