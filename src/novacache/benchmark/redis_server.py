"""A throwaway ``redis-server`` for the manager section of ``novacache bench``.

Started on a free loopback port in 15000-22000 (never 6379), from its own temp dir, with
no persistence (``save ""``, ``appendonly no``), optionally pinned to one CPU (with
``taskset`` where it is installed, else ``sched_setaffinity`` in the child before it
execs). It dies with the process that started it (``PR_SET_PDEATHSIG`` on Linux), and
:meth:`RedisServer.stop` ends it (SIGTERM, then SIGKILL) and removes its directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["PORT_RANGE", "RedisServer", "find_redis_server"]

PORT_RANGE = (15000, 22000)


def find_redis_server() -> str | None:
    """The path of ``redis-server``, or ``None`` when it is not on ``PATH``."""
    return shutil.which("redis-server")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    for _ in range(500):
        port = random.randint(*PORT_RANGE)
        if port != 6379 and _port_free(port):
            return port
    raise RuntimeError("no free loopback port in 15000-22000")


def ping(port: int) -> bool:
    """Whether a Redis server on ``127.0.0.1:port`` answers PING (0.2 s at most)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _child_setup(cpu: int | None) -> Callable[[], None]:
    def setup() -> None:  # pragma: no cover - runs in the child, between fork and exec
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    return setup


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1``; :meth:`start` it, :meth:`stop` it."""

    def __init__(self, cpu: int | None = None) -> None:
        self.cpu = cpu
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir: Path | None = None
        #: How the server was pinned: "taskset", "sched_setaffinity" or "" (not pinned).
        self.pinned_with = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait (bounded) until it answers PING.

        ``RuntimeError`` when ``redis-server`` is missing or does not come up."""
        program = find_redis_server()
        if program is None:
            raise RuntimeError("redis-server is not installed (or not on PATH)")
        last = ""
        for _ in range(3):  # a port taken between the probe and the bind: try another
            self.port = _free_port()
            self.workdir = Path(tempfile.mkdtemp(prefix="novacache-bench-redis-"))
            conf = self.workdir / "redis.conf"
            log = self.workdir / "redis.log"
            conf.write_text(
                "\n".join(
                    [
                        f"port {self.port}",
                        "bind 127.0.0.1",
                        f'dir "{self.workdir}"',
                        f'logfile "{log}"',
                        "daemonize no",
                        'save ""',
                        "appendonly no",
                    ]
                )
                + "\n"
            )
            args = [program, str(conf)]
            taskset = shutil.which("taskset")
            if self.cpu is not None and taskset is not None:
                args = [taskset, "-c", str(self.cpu), *args]
                self.pinned_with = "taskset"
            elif self.cpu is not None and hasattr(os, "sched_setaffinity"):
                self.pinned_with = "sched_setaffinity"
            self.proc = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_child_setup(None if taskset else self.cpu),
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._ping():
                    return self
                time.sleep(0.01)
            last = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            self.stop()
            if "Address already in use" not in last:
                break
        raise RuntimeError(f"redis-server did not start:\n{last}")

    def _ping(self) -> bool:
        return ping(self.port)

    def affinity(self) -> set[int] | None:
        """The CPUs the server may run on (``None`` where that cannot be read)."""
        if self.proc is None or not hasattr(os, "sched_getaffinity"):
            return None
        try:
            return set(os.sched_getaffinity(self.proc.pid))
        except OSError:
            return None

    def version(self) -> str:
        """``redis_version`` as the server reports it (``"?"`` when it does not answer)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(b"INFO server\r\n")
                data = b""
                while b"redis_version:" not in data or not data.endswith(b"\r\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return "?"
        for line in data.decode(errors="replace").splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1].strip()
        return "?"

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after 5 s) and remove its directory."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
