"""Static typing of the public API, msgspec's way: run ``mypy --strict`` on
tests/typing/*.py in a subprocess and compare its output with the ``# reveal:`` and
``# error:`` comments in those files (every other line must be clean)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FILES = sorted((HERE / "typing").glob("check_*.py"))

pytest.importorskip("mypy")


def expectations(path: Path) -> tuple[dict[int, str], dict[int, set[str]]]:
    reveals: dict[int, str] = {}
    errors: dict[int, set[str]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if m := re.search(r"  # reveal: (.+)$", line):
            reveals[n] = m.group(1).strip()
        elif m := re.search(r"  # error: ([\w, -]+)$", line):
            errors[n] = {code.strip() for code in m.group(1).split(",")}
    return reveals, errors


def test_mypy_strict(tmp_path: Path) -> None:
    assert FILES
    env = dict(os.environ)
    env["MYPYPATH"] = str(ROOT / "src")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--no-pretty",
            "--hide-error-context",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            *map(str, FILES),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    seen_reveals: dict[tuple[str, int], str] = {}
    seen_errors: dict[tuple[str, int], set[str]] = {}
    pattern = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<kind>\w+): (?P<msg>.*)$")
    for line in proc.stdout.splitlines():
        m = pattern.match(line)
        assert m, f"unexpected mypy output: {line}"
        key = (Path(m["file"]).name, int(m["line"]))
        msg = m["msg"]
        if m["kind"] == "note" and msg.startswith("Revealed type is "):
            seen_reveals[key] = msg[len("Revealed type is ") :].strip('"')
        elif m["kind"] == "error":
            code = re.search(r"\[([\w-]+)\]$", msg)
            seen_errors.setdefault(key, set()).add(code.group(1) if code else msg)
    for path in FILES:
        reveals, errors = expectations(path)
        assert reveals, f"{path.name} has no reveal_type expectations"
        got_reveals = {n: t for (f, n), t in seen_reveals.items() if f == path.name}
        got_errors = {n: c for (f, n), c in seen_errors.items() if f == path.name}
        assert got_reveals == reveals, proc.stdout
        assert got_errors == errors, proc.stdout
