"""Bodies of the child processes of the multi-process manager tests (started with the
``spawn`` method, so they are importable module-level functions)."""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

from novacache import LocalCache
from novacache.manager import CacheManager
from novacache.tiers import PostgresTier, RedisTier


def tag_in_postgres(conn: Connection, dsn: str, table: str, keys: list[str], tag: str) -> None:
    """Write ``keys`` under ``tag`` through a manager of L1 + PostgresTier, report what the
    store holds, then wait for ("read",) and answer with what this process reads now
    (its L1 is bypassed: it reads the store), and exit on ("stop",)."""
    store = PostgresTier(dsn, table=table, timeout=5)
    with CacheManager(local=LocalCache(100), store=store) as m:
        m.set_many({key: f"value of {key}" for key in keys}, ttl=60, tags=[tag])
        conn.send(sorted(store.get_many(keys)))
        while True:
            cmd = conn.recv()
            if cmd[0] == "read":
                assert m.local is not None
                m.local.clear()  # a cold L1: what is left in the shared tiers
                conn.send(m.get_many(keys))
            else:
                conn.send("bye")
                return


def load_with_lease(
    conn: Connection, url: str, prefix: str, key: str, log: str, go: Event, pause: float
) -> None:
    """A manager of L1 + RedisTier: once ``go`` is set, ``get_or_load(key, lease=10)``
    with a loader that appends this process's pid to ``log`` and takes ``pause``
    seconds; sends back the value it got and the manager's load count."""
    with CacheManager(local=LocalCache(100), remote=RedisTier(url, prefix=prefix)) as m:
        m.get("warm-up")  # connect before the race starts
        conn.send("ready")
        if not go.wait(20):
            conn.send(("no go", 0))
            return

        def loader() -> str:
            with Path(log).open("a") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(pause)  # a slow source: the other process arrives meanwhile
            return f"loaded for {key}"

        value = m.get_or_load(key, loader, ttl=60, lease=10)
        conn.send((value, m.stats.loads))
