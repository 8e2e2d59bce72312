"""Run code that might crash the interpreter in a child process.

A hostile input that makes the compiled code overflow the C stack or touch freed memory
kills the process that runs it. Run such cases here, so a crash fails one test with the
signal's name instead of ending the whole pytest session.

The child imports novacache from where this process does (:func:`_helpers.child_env`),
runs ``code`` with ``python -c`` (optionally inside a thread with a small stack, as a
user may set with :func:`threading.stack_size`), and reports how it ended.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass

from _helpers import child_env

__all__ = ["ChildResult", "run_isolated"]

_THREAD_WRAPPER = """
import threading, sys, traceback
threading.stack_size({stack})
_status = []
def _body():
    try:
{body}
    except BaseException:
        traceback.print_exc()
        _status.append(1)
    else:
        _status.append(0)
_t = threading.Thread(target=_body)
_t.start()
_t.join()
sys.exit(_status[0] if _status else 3)
"""


@dataclass(frozen=True)
class ChildResult:
    """How the child ended: its exit code (negative: killed by that signal) and output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def crashed(self) -> bool:
        """True when the child was killed by a signal (SIGSEGV, SIGABRT, SIGBUS, ...)."""
        return self.returncode < 0

    def describe(self) -> str:
        if self.crashed:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            head = f"child killed by {name}"
        else:
            head = f"child exited with {self.returncode}"
        return f"{head}\n--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"

    def check(self) -> ChildResult:
        """Fail the calling test unless the child exited 0 (a crash names its signal)."""
        if self.returncode != 0:
            import pytest

            pytest.fail(self.describe(), pytrace=False)
        return self


def run_isolated(
    code: str,
    *,
    stack_size: int | None = None,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> ChildResult:
    """Run ``code`` (Python source, dedented) in a fresh interpreter.

    With ``stack_size`` (bytes, >= 32 KiB as :func:`threading.stack_size` requires) the
    code runs in a thread with that stack, so C stack use that grows with the input shows
    up at realistic depths. An exception in the code exits 1 with its traceback on
    stderr; a crash gives a negative ``returncode``.
    """
    source = textwrap.dedent(code)
    if stack_size is not None:
        body = textwrap.indent(source, " " * 8)
        source = _THREAD_WRAPPER.format(stack=stack_size, body=body)
    proc = subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(**(env or {})),
        check=False,
    )
    return ChildResult(proc.returncode, proc.stdout, proc.stderr)
