"""PostgresTier and AsyncPostgresTier bound to the shared tier contract, against the
private server of ``pg_server.py``.

Expiry uses the server's clock (``now()``), so ``advance`` sleeps: the contract's longest
wait is 0.6 s. Each test gets its own table, dropped afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from novacache.tiers import AsyncTier
from novacache.tiers.postgres import AsyncPostgresTier, PostgresTier

from .contract import AsyncTierContract, TierContract


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[str]:
    """A fresh table name; the table is dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def advance() -> Callable[[float], None]:
    return time.sleep


class TestPostgresContract(TierContract):
    SET_IF_MANY = False

    @pytest.fixture
    def tier(self, postgres_dsn: str, table: str) -> Iterator[PostgresTier]:
        tier = PostgresTier(postgres_dsn, table=table)
        yield tier
        tier.close()


class TestPostgresBudgetContract(TierContract):
    """The contract with a byte budget checked after every write, never reached."""

    SET_IF_MANY = False

    @pytest.fixture
    def tier(self, postgres_dsn: str, table: str) -> Iterator[PostgresTier]:
        tier = PostgresTier(
            postgres_dsn, table=table, unlogged=False, maxbytes=64 << 20, evict_every=1,
            touch_batch=3,
        )  # fmt: skip
        yield tier
        tier.close()


class TestAsyncPostgresContract(AsyncTierContract):
    SET_IF_MANY = False

    @pytest.fixture
    def atier(self, postgres_dsn: str, table: str) -> Callable[[], Awaitable[AsyncTier]]:
        async def make() -> AsyncTier:
            return AsyncPostgresTier(postgres_dsn, table=table)

        return make
