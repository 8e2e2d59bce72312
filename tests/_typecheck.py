"""The typing tests' runner, msgspec's way: ``mypy --strict`` on check files in a
subprocess, compared with their ``# reveal: <type>`` and ``# error: <codes>`` comments.

Every revealed type and every error must be announced by such a comment on its line,
and every comment must be matched; nothing else may be reported but the notes mypy
adds to an error on that error's line. mypy reads the
sources in ``src/`` (not an installed wheel: mypy refuses site-packages in MYPYPATH,
and type checking needs only the ``.py`` files and stubs); errors inside imported
modules are not reported here (``mypy`` on ``src`` is its own CI step).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

__all__ = ["check_typing"]

SRC = Path(__file__).resolve().parent.parent / "src"
_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<kind>\w+): (?P<msg>.*)$")


def _expectations(path: Path) -> tuple[dict[int, str], dict[int, set[str]]]:
    reveals: dict[int, str] = {}
    errors: dict[int, set[str]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if m := re.search(r"  # reveal: (.+)$", line):
            reveals[n] = m.group(1).strip()
        elif m := re.search(r"  # error: ([\w, -]+)$", line):
            errors[n] = {code.strip() for code in m.group(1).split(",")}
    return reveals, errors


def check_typing(files: list[Path], cache_dir: Path) -> None:
    """Assert that mypy reports exactly what the comments of ``files`` announce."""
    assert files, "no check files"
    command = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent"]
    command += ["--no-error-summary", "--show-error-codes", "--no-pretty"]
    command += ["--hide-error-context", "--cache-dir", str(cache_dir / "mypy-cache")]
    command += ["--config-file", "/dev/null"]
    proc = subprocess.run(
        [*command, *map(str, files)],
        cwd=cache_dir,
        env={"MYPYPATH": str(SRC), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    seen_reveals: dict[tuple[str, int], str] = {}
    seen_errors: dict[tuple[str, int], set[str]] = {}
    other_notes: list[tuple[tuple[str, int], str]] = []
    for line in proc.stdout.splitlines():
        m = _LINE.match(line)
        assert m, f"unexpected mypy output: {line}"
        key = (Path(m["file"]).name, int(m["line"]))
        msg = m["msg"]
        if m["kind"] == "note" and msg.startswith("Revealed type is "):
            seen_reveals[key] = msg[len("Revealed type is ") :].strip('"')
        elif m["kind"] == "error":
            code = re.search(r"\[([\w-]+)\]$", msg)
            seen_errors.setdefault(key, set()).add(code.group(1) if code else msg)
        else:
            other_notes.append((key, line))
    # A note that explains an error (where the callee is defined, ...) may stand on the
    # error's line; any other note is unexpected.
    stray = [line for key, line in other_notes if key not in seen_errors]
    assert stray == [], "\n".join(stray)
    for path in files:
        reveals, errors = _expectations(path)
        assert reveals, f"{path.name} has no reveal_type expectations"
        got_reveals = {n: t for (f, n), t in seen_reveals.items() if f == path.name}
        got_errors = {n: c for (f, n), c in seen_errors.items() if f == path.name}
        assert got_reveals == reveals, proc.stdout
        assert got_errors == errors, proc.stdout
