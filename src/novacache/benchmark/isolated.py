"""Run one benchmark section in a fresh interpreter.

A section measured after the L1 rows inherits their heap: hundreds of thousands of
objects, a fragmented allocator, caches full of other data. Its numbers then read
slower than the same section run alone (measured: the cachetools rows up to 1.6x
slower, ``dict`` included). So ``novacache bench`` runs each section (``codec``,
``cachetools``, ``manager``) in a child process of the same Python, importing the same
novacache, and takes its results back as JSON (through a file: the child's stderr is its
progress, shown as it comes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import novacache

__all__ = ["SectionFailed", "run_section"]

_SECTIONS = ("codec_bench", "cachetools_bench", "manager_bench", "http_bench")

_CHILD = """\
import json, sys
from novacache.benchmark import {module} as section
options = json.loads(sys.argv[1])
result = section.run(quick=options.pop("quick"), **options)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    json.dump(result, out)
"""


class SectionFailed(RuntimeError):
    """A section's child process failed; the message carries the end of its stderr."""


def run_section(
    module: str,
    *,
    quick: bool,
    options: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """``novacache.benchmark.<module>.run(quick=quick, **options)`` in a child process;
    what it returns (JSON-able). Each line the child writes on stderr (its progress) is
    passed to ``progress`` as it comes; the last ones are kept for :class:`SectionFailed`.
    """
    if module not in _SECTIONS:
        raise ValueError(f"unknown benchmark section {module!r}")
    env = dict(os.environ)
    # The child imports this very novacache (a source tree or an installed one).
    root = str(Path(novacache.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    arguments = json.dumps({"quick": bool(quick), **(options or {})})
    tail: deque[str] = deque(maxlen=60)
    with tempfile.TemporaryDirectory(prefix="novacache-bench-") as tmp:
        result = Path(tmp) / "result.json"
        with subprocess.Popen(
            [sys.executable, "-c", _CHILD.format(module=module), arguments, str(result)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stderr is not None
            for line in child.stderr:
                line = line.rstrip("\n")
                tail.append(line)
                if progress is not None:
                    progress(line)
            code = child.wait()
        if code != 0 or not result.exists():
            raise SectionFailed(
                f"benchmark section {module} failed (exit code {code}):\n" + "\n".join(tail)
            )
        return json.loads(result.read_text(encoding="utf-8"))
