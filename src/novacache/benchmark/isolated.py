"""Run one benchmark section in a fresh interpreter.

A section measured after the L1 rows inherits their heap: hundreds of thousands of
objects, a fragmented allocator, caches full of other data. Its numbers then read
slower than the same section run alone (measured: the cachetools rows up to 1.6x
slower, ``dict`` included). So ``novacache bench`` runs each section (``codec``,
``cachetools``) in a child process of the same Python, importing the same novacache,
and takes its rows back as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import novacache

__all__ = ["SectionFailed", "run_section"]

_SECTIONS = ("codec_bench", "cachetools_bench")


class SectionFailed(RuntimeError):
    """A section's child process failed; the message carries the end of its stderr."""


def run_section(module: str, *, quick: bool) -> list[dict[str, Any]]:
    """``novacache.benchmark.<module>.run(quick=quick)`` in a child process; its rows."""
    if module not in _SECTIONS:
        raise ValueError(f"unknown benchmark section {module!r}")
    code = (
        "import json, sys\n"
        f"from novacache.benchmark import {module} as section\n"
        f"json.dump(section.run(quick={bool(quick)!r}), sys.stdout)\n"
    )
    env = dict(os.environ)
    # The child imports this very novacache (a source tree or an installed one).
    root = str(Path(novacache.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SectionFailed(f"benchmark section {module} failed:\n{done.stderr[-4000:]}")
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows
