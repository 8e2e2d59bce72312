"""One test body for both kinds of cache: :class:`Env` builds the manager and the caches,
and wraps the synchronous ones so that the test awaits their calls as it awaits the
asyncio ones (the call itself is made as it is, synchronously)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from novacache import LocalCache, novacron
from novacache.manager import AsyncCacheManager, CacheManager


async def maybe(value: Any) -> Any:
    """``value``, awaited when it is awaitable (a call of either kind of tier)."""
    if inspect.isawaitable(value):
        return await value
    return value


class Awaiting:
    """A synchronous object whose method calls return awaitables of their results
    (a generator becomes an async iterator), so one async test body drives both."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value) or inspect.isclass(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if inspect.isgenerator(result):
                return _aiter(result)
            return _ready(result)

        return call


async def _ready(value: Any) -> Any:
    return value


async def _aiter(gen: Any) -> AsyncIterator[Any]:
    for item in gen:
        yield item


class Env:
    """Builds managers and domain caches of one kind on one backend."""

    def __init__(
        self, kind: str, backend: str, tmp: Path, url: str | None, dsn: str | None
    ) -> None:
        self.kind = kind
        self.backend = backend
        self.tmp = tmp
        self.url = url
        self.dsn = dsn
        self.prefix = f"nc-{uuid.uuid4().hex[:10]}:"
        self.table = f"nc_{uuid.uuid4().hex[:10]}"
        self.managers: list[Any] = []

    @property
    def is_async(self) -> bool:
        return self.kind == "async"

    async def manager(
        self,
        *,
        clock: Callable[[], float] | None = None,
        store_options: dict[str, Any] | None = None,
        path: Path | None = None,
        kind: str | None = None,
        **options: Any,
    ) -> Any:
        """A manager of this kind (or ``kind``) on this backend, with the NovaCron codec;
        ``path``: the SQLite file of another manager (to share its store)."""
        is_async = (kind or self.kind) == "async"
        from novacache.tiers import (
            AsyncPostgresTier,
            AsyncRedisTier,
            AsyncSQLiteTier,
            PostgresTier,
            RedisTier,
            SQLiteTier,
        )

        extra: dict[str, Any] = {"codec": novacron.codec(), **options}
        if clock is not None:
            extra["clock"] = clock
        self.path = path = path or self.tmp / f"{uuid.uuid4().hex[:8]}.db"
        remote: Any = None
        store: Any
        more = dict(store_options or {})
        if self.backend == "postgres":
            assert self.dsn is not None
            cls = AsyncPostgresTier if is_async else PostgresTier
            store = cls(self.dsn, table=self.table, unlogged=False, timeout=5, **more)
        else:
            if clock is not None:
                more["clock"] = clock
            if is_async:
                store = await AsyncSQLiteTier.open(path, **more)
            else:
                store = SQLiteTier(path, **more)
        if self.backend == "redis":
            assert self.url is not None
            cls = AsyncRedisTier if is_async else RedisTier
            remote = cls(self.url, prefix=self.prefix)
        local = LocalCache(10_000, **({"timer": clock} if clock else {}))
        manager_cls = AsyncCacheManager if is_async else CacheManager
        manager = manager_cls(local=local, remote=remote, store=store, **extra)
        self.managers.append(manager)
        return manager

    def store_reader(self) -> Any:
        """A new synchronous store tier on the same file or table (a fresh connection)."""
        from novacache.tiers import PostgresTier, SQLiteTier

        if self.backend == "postgres":
            return PostgresTier(self.dsn, table=self.table, unlogged=False, timeout=5)
        return SQLiteTier(self.path)

    def wrap(self, cache: Any) -> Any:
        return cache if self.is_async else Awaiting(cache)

    def vm_cache(self, manager: Any, *args: Any, **kwargs: Any) -> Any:
        cls = novacron.AsyncVMMetadataCache if self.is_async else novacron.VMMetadataCache
        return self.wrap(cls(manager, *args, **kwargs))

    def resource_cache(self, manager: Any, *args: Any, **kwargs: Any) -> Any:
        cls = (
            novacron.AsyncResourceAllocationCache
            if self.is_async
            else novacron.ResourceAllocationCache
        )
        return self.wrap(cls(manager, *args, **kwargs))

    def migration_cache(self, manager: Any, *args: Any, **kwargs: Any) -> Any:
        cls = novacron.AsyncMigrationStateCache if self.is_async else novacron.MigrationStateCache
        return self.wrap(cls(manager, *args, **kwargs))

    async def close(self) -> None:
        for manager in self.managers:
            await maybe(manager.close())


def run(env: Env, body: Callable[[], Any]) -> Any:
    """Run the async test ``body()`` in a fresh loop, closing the managers after."""
    import asyncio

    async def main() -> Any:
        try:
            return await body()
        finally:
            await env.close()

    return asyncio.run(main())


def count_calls(tier: Any, method: str) -> list[Any]:
    """Count the calls of ``tier.method`` (the real method still runs): a list that
    grows by the arguments of each call."""
    real = getattr(tier, method)
    seen: list[Any] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append(args)
        return real(*args, **kwargs)

    setattr(tier, method, counted)
    return seen


def redis_commands(url: str) -> dict[str, int]:
    """``{command: calls}`` from the server's INFO commandstats."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
