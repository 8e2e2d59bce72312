"""A private PostgreSQL server for the tests (Debian's ``postgresql`` binaries).

``initdb`` in a temp dir, ``pg_ctl start`` on a free loopback port in 15000-22000 (never
5432) with the unix socket in the temp dir, ``trust`` authentication for one user, and
``fsync``/``full_page_writes`` off: these tests want speed, not safety against a crash of
the machine. ``synchronous_commit`` stays on, so a committed row survives the server
being killed (the fault tests rely on it). initdb and postgres refuse to run
as root, so under root (CI) both run as the ``postgres`` user through ``runuser`` and the
temp dir belongs to that user.

When the binaries are missing the tests skip locally and fail when ``CI`` is set
(``scripts/system-deps`` installs them). The server is stopped when the session ends, and
by an ``atexit`` hook if pytest dies first.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PORT_RANGE = (15000, 22000)
USER = "novacache"

__all__ = ["PostgresServer", "find_bindir", "postgres_dsn", "postgres_server"]


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` with initdb and pg_ctl (or PATH's).

    Skips the test when there is none, but fails it when ``CI`` is set.
    """
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        bindir = Path(candidate)
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    message = "PostgreSQL server binaries not found (scripts/system-deps installs them)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PostgresServer:
    """One private server: ``start``, ``stop`` (``mode="immediate"`` is a crash-like stop
    without a shutdown checkpoint), ``destroy``; ``dsn`` connects over TCP loopback."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="novacache-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = 0
        self.running = False
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.base, entry.pw_uid, entry.pw_gid)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres connect_timeout=5"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.base, check=False
        )

    def initdb(self) -> None:
        done = self._run(
            "initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        """Start the server (on a new free port the first time, the same port after)."""
        tries = 1 if self.port else 20
        failure = ""
        for _ in range(tries):
            if tries > 1:
                self.port = random.randint(*PORT_RANGE)
                if not _port_free(self.port):
                    continue
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.base} -c fsync=off "
                "-c full_page_writes=off -c max_connections=60"
            )
            done = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                "-w", "-t", "60", "start",
            )  # fmt: skip
            if done.returncode == 0:
                self.running = True
                return
            failure = f"{done.stdout}\n{done.stderr}\n{self._log_tail()}"
            if tries == 1:
                break
        raise RuntimeError(f"pg_ctl start failed on port {self.port}:\n{failure}")

    def stop(self, mode: str = "fast") -> None:
        if not self.running:
            return
        done = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{done.stdout}\n{done.stderr}")
        self.running = False

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no server log)"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session."""
    server = PostgresServer(find_bindir())
    atexit.register(server.destroy)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        server.destroy()
        atexit.unregister(server.destroy)


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """The DSN of the session's private server."""
    return postgres_server.dsn
