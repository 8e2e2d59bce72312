"""SQLiteTier and AsyncSQLiteTier bound to the shared tier contract.

The tier gets an injected clock (``ManualClock``) and ``advance`` moves it: expiry is
tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from novacache.tiers import AsyncTier
from novacache.tiers.sqlite import AsyncSQLiteTier, SQLiteTier

from .contract import AsyncTierContract, TierContract


class ManualClock:
    """A wall clock the test moves by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def advance(clock: ManualClock) -> Callable[[float], None]:
    return clock.advance


class TestSQLiteContract(TierContract):
    @pytest.fixture
    def tier(self, tmp_path: Path, clock: ManualClock) -> Iterator[SQLiteTier]:
        tier = SQLiteTier(tmp_path / "store.db", clock=clock)
        yield tier
        tier.close()


class TestSQLiteBudgetContract(TierContract):
    """The same contract with a byte budget (access times recorded) that is never hit."""

    @pytest.fixture
    def tier(self, tmp_path: Path, clock: ManualClock) -> Iterator[SQLiteTier]:
        tier = SQLiteTier(tmp_path / "store.db", clock=clock, maxbytes=64 << 20, touch_batch=3)
        yield tier
        tier.close()


class TestAsyncSQLiteContract(AsyncTierContract):
    @pytest.fixture
    def atier(self, tmp_path: Path, clock: ManualClock) -> Callable[[], Awaitable[AsyncTier]]:
        async def make() -> AsyncTier:
            return await AsyncSQLiteTier.open(tmp_path / "store.db", clock=clock)

        return make
