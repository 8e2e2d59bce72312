"""The manager section's peers, each set up as its own documentation tells a user to.

- **dogpile.cache** (sync): ``make_region().configure("dogpile.cache.redis", ...)`` with
  ``expiration_time`` and ``redis_expiration_time`` both the section's TTL. Its values are
  pickled (a ``CachedValue``: the value plus its creation time). It gets a
  ``connection_pool`` (a documented argument) of the same kind and size as the Redis
  tier's, so the pools do not differ.
- **cashews** (asyncio): ``Cache().setup("redis://...", max_connections=...)`` (its own
  ``BlockingConnectionPool``; default 10 connections, set to the tier's size); pickle
  is its serializer. ``client_side=True`` is its L1 (an in-process ``Memory`` cache kept
  coherent by Redis ``CLIENT TRACKING`` in broadcast mode, keys under ``cashews:``): a
  row of its own. Its ``@cache(ttl=..., key=...)`` decorator is used with its defaults:
  ``protected=True`` runs every call of the decorated function as an asyncio task (a
  guard against concurrent computations of the same key), which is most of its cost.
- **aiocache** (asyncio): ``Cache(Cache.REDIS, endpoint=..., port=..., namespace=...)``,
  which is a ``RedisCache`` with its default ``JsonSerializer`` and its default
  unbounded ``redis.asyncio.ConnectionPool`` (a bound of 64 makes 100 concurrent tasks
  fail: that pool raises instead of waiting), every call wrapped in its default 5 s
  ``asyncio.wait_for`` timeout.

None of them is a dependency of novacache: they are the ``peers`` extra
(``pip install novacache[peers]``). A peer that is not installed is reported as such.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PEERS",
    "Peer",
    "RedisTarget",
    "aiocache_cache",
    "cashews_cache",
    "dogpile_region",
    "installed",
    "version",
]

#: Distribution name -> module to import.
PEERS: dict[str, str] = {
    "dogpile.cache": "dogpile.cache",
    "cashews": "cashews",
    "aiocache": "aiocache",
}


@dataclass(frozen=True)
class RedisTarget:
    """Where the section's Redis is (a standalone server over TCP)."""

    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        auth = ""
        if self.password is not None:
            from urllib.parse import quote

            auth = f"{quote(self.username or '')}:{quote(self.password)}@"
        return f"redis://{auth}{self.host}:{self.port}/{self.db}"


@dataclass
class Peer:
    """A peer set up for the bench: its object, how its keys are named in Redis, a note
    on its setup (pool, serializer) and how to close it."""

    name: str
    obj: Any
    raw_key: Callable[[str], str]
    note: str
    close: Callable[[], Any]
    backend: Any = None


def version(dist: str) -> str | None:
    """The installed version of the distribution ``dist``, or ``None``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed(dist: str) -> bool:
    """Whether the peer ``dist`` (a key of :data:`PEERS`) imports."""
    try:
        importlib.import_module(PEERS[dist])
    except ImportError:
        return False
    return True


def _module(name: str) -> Any:
    """A peer's module, untyped (peers are optional; the bench uses them as their docs
    show, and their annotations, where they have any, vary by release)."""
    return importlib.import_module(name)


def dogpile_region(pool: Any, ttl: float) -> Peer:
    """A dogpile.cache region on Redis over ``pool`` (a ``redis.ConnectionPool``)."""
    make_region = _module("dogpile.cache").make_region
    region = make_region().configure(
        "dogpile.cache.redis",
        expiration_time=int(ttl),
        arguments={"connection_pool": pool, "redis_expiration_time": int(ttl)},
    )
    return Peer(
        "dogpile.cache",
        region,
        lambda key: key,
        f"make_region().configure('dogpile.cache.redis', expiration_time={int(ttl)}, "
        f"redis_expiration_time={int(ttl)}, connection_pool=<same pool as the floor's kind>);"
        " values pickled (CachedValue)",
        pool.disconnect,
    )


def cashews_cache(target: RedisTarget, *, client_side: bool, max_connections: int) -> Peer:
    """A cashews ``Cache`` on Redis, or with ``client_side=True`` its client-side L1.

    Call it inside the event loop that will use it (its pool binds to that loop)."""
    cache = _module("cashews").Cache()
    extra: dict[str, Any] = {"client_side": True} if client_side else {}
    backend = cache.setup(target.url, max_connections=max_connections, **extra)
    prefix = "cashews:" if client_side else ""

    async def close() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await cache.close()

    what = "client_side=True (Memory L1 + CLIENT TRACKING BCAST), " if client_side else ""
    return Peer(
        "cashews client_side" if client_side else "cashews",
        cache,
        lambda key: prefix + key,
        f"Cache().setup(url, {what}max_connections={max_connections}): "
        "BlockingConnectionPool; values pickled"
        + (
            "; its @cache decorator with its defaults (protected=True: each call runs as an"
            " asyncio task)"
            if client_side
            else ""
        ),
        close,
        backend,
    )


def aiocache_cache(target: RedisTarget, namespace: str) -> Peer:
    """An aiocache ``Cache(Cache.REDIS, ...)`` (a ``RedisCache``) under ``namespace``."""
    Cache = _module("aiocache").Cache
    cache = Cache(
        Cache.REDIS,
        endpoint=target.host,
        port=target.port,
        db=target.db,
        password=target.password,
        namespace=namespace,
    )

    async def close() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await cache.close()

    return Peer(
        "aiocache",
        cache,
        lambda key: str(cache.build_key(key)),
        f"Cache(Cache.REDIS, namespace=...): {type(cache.serializer).__name__} (its default),"
        " redis.asyncio.ConnectionPool unbounded (its default), 5 s wait_for per call",
        close,
    )
