"""Fixtures of the domain-cache tests: every test runs on the synchronous and the asyncio
caches (``kind``) and on three stacks (``backend``): the embedded default (L1 + SQLite),
L1 + a real Redis + SQLite, and L1 + a real PostgreSQL store. No mocks: the servers are
the tier tests' (started on free loopback ports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tiers.pg_server import postgres_dsn, postgres_server
from tiers.redis_servers import redis_base, redis_standalone

from ._env import Env

__all__ = ["env", "postgres_dsn", "postgres_server", "redis_base", "redis_standalone"]

BACKENDS = ("embedded", "redis", "postgres")


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(kind: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """An :class:`Env`: builds managers and caches of ``kind`` on ``backend``."""
    url = request.getfixturevalue("redis_standalone").url if backend == "redis" else None
    dsn = request.getfixturevalue("postgres_dsn") if backend == "postgres" else None
    return Env(kind, backend, tmp_path, url, dsn)
