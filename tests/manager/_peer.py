"""A second process for the invalidation tests and the staleness benchmark: a manager
with its own L1 and bus on the same Redis, driven through a pipe."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from typing import Any

from novacache import LocalCache
from novacache.manager import CacheManager, InvalidationBus
from novacache.tiers import RedisTier


def serve(conn: Connection, url: str, prefix: str) -> None:
    """Commands: ("load", key, published) -> (value, held in L1), once the bus has
    received ``published`` messages from the writer (so none still on its way removes
    the key afterwards); ("watch", key) -> monotonic time at which the key left L1
    (polled every 50 µs), or None after 5 s; ("stop",)."""
    remote = RedisTier(url, prefix=prefix)
    bus = InvalidationBus(remote)
    local = LocalCache(10_000)
    with CacheManager(local=local, remote=remote, bus=bus) as m:
        deadline = time.monotonic() + 10
        while not bus.healthy and time.monotonic() < deadline:
            time.sleep(0.005)
        conn.send(bus.healthy)
        while True:
            cmd: Any = conn.recv()
            if cmd[0] == "load":
                limit = time.monotonic() + 5
                while bus.received < cmd[2] and time.monotonic() < limit:
                    time.sleep(0.0005)
                # a read that raced an invalidation does not fill L1: read again
                for _ in range(200):
                    value = m.get(cmd[1])
                    if cmd[1] in local:
                        break
                    time.sleep(0.005)
                conn.send((value, cmd[1] in local))
            elif cmd[0] == "watch":
                key = cmd[1]
                conn.send("watching")
                limit = time.monotonic() + 5
                while key in local and time.monotonic() < limit:
                    time.sleep(0.00005)
                conn.send(time.monotonic() if key not in local else None)
            else:
                conn.send("bye")
                return
