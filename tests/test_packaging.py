"""The version is written once (src/novacache/_version.py) and seen the same everywhere."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

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
