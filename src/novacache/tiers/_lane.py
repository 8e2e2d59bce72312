"""A short lane for the synchronous Redis tier's single-key commands.

redis-py's ``Redis.execute_command`` takes a connection out of the pool and puts it back
for every command, times it for its observability hooks and wraps the call in closures
for its retry helper: on a loopback round trip that is more than half of what a client
spends on a ``GET`` or a ``SET`` (callgrind: 150k instructions per ``SET`` through
``execute_command``, 63k on a connection already in hand). A :class:`CommandLane` keeps a
few connections checked out of the client's own pool for the tier's lifetime and sends
``GET``/``SET``/``UNLINK`` on them directly:

- **Bounded.** At most ``size`` connections (a quarter of ``max_connections``, at most
  8; none when the pool has fewer than 2), taken from the pool as they are first needed
  and counted in its ``max_connections``: the server never sees more connections than
  configured. When every lane connection is busy (more threads than the lane has
  connections), a command goes through ``execute_command`` as before: the lane never
  waits.
- **The same retries.** A command that fails with a connection error or a timeout is
  retried on the same connection (redis-py reconnects it) with the tier's backoff, as
  ``execute_command`` does with the tier's ``Retry``: ``retries`` more attempts at most.
  A reply error (``WRONGTYPE``, ``OOM``, ...) is raised at once.
- **The same replies.** The raw reply of the command (``SET`` answers ``b"OK"``, where
  ``execute_command`` maps it to ``True``; the tier uses neither).
- **Reconnects as the pool does.** A lane connection that was dropped (an error, a pool
  reset after a failover) is connected with ``connect()`` before its next command, so a
  Sentinel-managed one asks the sentinels for the current master, as a connection taken
  from the pool would.
- **Fork and close.** A child process forgets the parent's lane connections (it must
  not write to the parent's sockets; its pool makes new ones); :meth:`close` hands the
  connections back to the pool, which the tier then disconnects.

Note that the lane is for the synchronous tier only (redis.asyncio has no pool round
trip of that cost), and not for Redis Cluster (whose client routes each command).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any

import redis

__all__ = ["CommandLane", "lane_size"]

#: What is retried: the errors redis-py's ``Retry`` retries by default.
_RETRIED = (redis.ConnectionError, redis.TimeoutError, TimeoutError, ConnectionError)

_lanes: weakref.WeakSet[CommandLane] = weakref.WeakSet()


def lane_size(max_connections: int) -> int:
    """How many connections a lane keeps for a pool of ``max_connections``."""
    if max_connections < 2:
        return 0
    return min(8, max(1, max_connections // 4))


class CommandLane:
    """``lane(*args)`` sends one command on a connection kept out of ``client``'s pool
    and returns its raw reply (see the module's docstring for what it promises)."""

    __slots__ = (
        "__weakref__",
        "_backoff",
        "_closed",
        "_fallback",
        "_idle",
        "_lock",
        "_made",
        "_pool",
        "_retries",
        "_size",
    )

    def __init__(self, client: Any, size: int, retries: int, backoff: Any) -> None:
        self._pool = client.connection_pool
        self._fallback = client.execute_command
        self._size = size
        self._retries = retries
        self._backoff = backoff
        self._idle: list[Any] = []
        self._made = 0
        self._lock = threading.Lock()
        self._closed = False
        _lanes.add(self)

    def __call__(self, *args: Any) -> Any:
        idle = self._idle
        try:
            conn = idle.pop()
        except IndexError:
            conn = self._take()
            if conn is None:
                return self._fallback(*args)
        try:
            if conn._sock is None:  # dropped (an error, a failover): connect as the pool does
                conn.connect()
            conn.send_command(*args)
            return conn.read_response()
        except _RETRIED as exc:
            return self._retry(conn, args, exc)
        finally:
            if self._closed:
                self._give_back(conn)
            else:
                idle.append(conn)

    def _take(self) -> Any:
        """A new lane connection out of the pool, or ``None`` when the lane is full."""
        with self._lock:
            if self._made >= self._size or self._closed:
                return None
            self._made += 1
        try:
            return self._pool.get_connection()
        except BaseException:
            with self._lock:
                self._made -= 1
            raise

    def _retry(self, conn: Any, args: tuple[Any, ...], error: BaseException) -> Any:
        failures = 1
        while True:
            conn.disconnect()  # redis-py has mostly done it; the next send reconnects
            if failures > self._retries:
                raise error
            time.sleep(self._backoff.compute(failures))
            try:
                # connect(), not the implicit reconnect of send_command: a Sentinel
                # connection asks for the current master there
                conn.connect()
                conn.send_command(*args)
                return conn.read_response()
            except _RETRIED as exc:
                error = exc
                failures += 1

    def _give_back(self, conn: Any) -> None:
        try:
            self._pool.release(conn)
        except Exception:  # a pool already torn down: nothing to return
            conn.disconnect()

    def close(self) -> None:
        """Hand every idle lane connection back to the pool (in-flight ones follow when
        their command ends); later commands go through ``execute_command``."""
        self._closed = True
        while self._idle:
            self._give_back(self._idle.pop())

    def _forget(self) -> None:
        """In a forked child: drop the parent's connections without touching them."""
        self._idle = []
        self._made = 0
        self._lock = threading.Lock()


def _after_fork() -> None:
    for lane in list(_lanes):
        lane._forget()


os.register_at_fork(after_in_child=_after_fork)
