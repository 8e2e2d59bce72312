"""Static typing of novacache.cachetools: ``mypy --strict`` on typing/check_*.py must
reveal exactly the types in its ``# reveal:`` comments and report nothing else."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FILES = sorted((HERE / "typing").glob("check_*.py"))

pytest.importorskip("mypy")


def test_mypy_strict_reveals(tmp_path: Path) -> None:
    assert FILES
    # The sources, not the installed wheel: mypy refuses site-packages in MYPYPATH,
    # and type checking needs only the .py files and stubs.
    src = Path(__file__).resolve().parents[2] / "src"
    # Errors are reported for the checked file only (imports are followed silently).
    command = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent"]
    command += ["--no-error-summary", "--show-error-codes", "--no-pretty"]
    command += ["--cache-dir", str(tmp_path / "mypy-cache"), "--config-file", "/dev/null"]
    proc = subprocess.run(
        [*command, *map(str, FILES)],
        cwd=tmp_path,
        env={"MYPYPATH": str(src), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    expected: dict[tuple[str, int], str] = {}
    for path in FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if match := re.search(r"  # reveal: (.+)$", line):
                expected[(path.name, number)] = match.group(1).strip()
    revealed: dict[tuple[str, int], str] = {}
    unexpected: list[str] = []
    for line in proc.stdout.splitlines():
        match = re.match(r"(?:.*/)?([\w.]+):(\d+): note: Revealed type is \"(.+)\"$", line)
        if match:
            revealed[(match.group(1), int(match.group(2)))] = match.group(3)
        elif line.strip():
            unexpected.append(line)
    assert unexpected == []
    assert revealed == expected
