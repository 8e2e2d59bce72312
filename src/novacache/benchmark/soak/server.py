"""The soak's own ``redis-server``: on a free loopback port, with an append-only file, and
the faults the soak injects (SIGKILL and restart empty, SIGKILL and restart from the AOF,
SIGSTOP/SIGCONT). It dies with the process that started it (``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ..redis_server import _child_setup, _free_port, find_redis_server, ping

__all__ = ["SoakRedis", "rss"]


class SoakRedis:
    """One ``redis-server`` on ``127.0.0.1`` that keeps its port across restarts.

    :param workdir: its directory (config, log and ``appendonlydir``).
    :param program: the ``redis-server`` binary (default: the one on ``PATH``).
    """

    def __init__(self, workdir: Path, program: str | None = None) -> None:
        found = program or find_redis_server()
        if found is None:
            raise RuntimeError("redis-server is not installed (or not on PATH); see --redis-server")
        self.program = found
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.workdir / "redis.log"

    def _conf(self) -> Path:
        conf = self.workdir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f'dir "{self.workdir}"',
                    f'logfile "{self.log}"',
                    "daemonize no",
                    'save ""',
                    "appendonly yes",
                    "appendfsync everysec",
                    'appenddirname "appendonlydir"',
                ]
            )
            + "\n"
        )
        return conf

    def start(self, timeout: float = 15.0) -> SoakRedis:
        """Start it (on a new free port the first time, the same port afterwards) and
        wait, bounded, until it answers PING; ``RuntimeError`` when it does not."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        first = self.port == 0
        for _ in range(3 if first else 1):
            if first:
                self.port = _free_port()
            self.proc = subprocess.Popen(
                [self.program, str(self._conf())],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_child_setup(None),
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.ping():
                    self.starts += 1
                    return self
                time.sleep(0.005)
            self.kill()
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no log)"
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")

    def ping(self) -> bool:
        return ping(self.port)

    def kill(self) -> None:
        """SIGKILL (after SIGCONT, should it be frozen) and reap."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=10)

    def drop_data(self) -> None:
        """Remove the append-only files: the next start is empty."""
        shutil.rmtree(self.workdir / "appendonlydir", ignore_errors=True)

    def pause(self) -> None:
        """SIGSTOP: it keeps its sockets and answers nothing."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def rss(self) -> int:
        """The server's resident set size in bytes (0 when unknown)."""
        return _rss(self.proc.pid) if self.proc is not None else 0


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return 4096


_PAGE = _page_size()


def _rss(pid: int | str) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def rss(pid: int | str = "self") -> int:
    """Resident set size of ``pid`` (default: this process) in bytes, from ``/proc``;
    0 where that cannot be read."""
    return _rss(pid)
