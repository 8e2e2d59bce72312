"""Forged envelopes (issue 18): every field is validated, and a malformed envelope is a
counted corrupt read (a miss), never a value that outlives its deadline.

Before the fix, an envelope whose deadline or TTL was NaN or an infinity passed the
"never extend" cap (``min(x, nan)`` is ``x``) and its value sat in L1 with no expiry.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacache import LocalCache
from novacache.codec import Codec
from novacache.consistency import hlc
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.manager.envelope import Envelope, open_envelope, seal
from novacache.tiers import AsyncSQLiteTier, SQLiteTier

from ._support import Clock

NOW = 1_700_000_000.0
NAN, INF = math.nan, math.inf

FORGED: list[Any] = [
    [1, NAN, 10.0, "v"],  # the case: min(deadline - now, nan) kept the deadline
    [1, NOW + 10, NAN, "v"],  # ... and min(x, nan) is x
    [1, INF, INF, "v"],
    [1, NOW + 10, INF, "v"],
    [1, INF, 10.0, "v"],
    [1, -INF, 10.0, "v"],
    [1, NOW + 10, -5.0, "v"],
    [1, NOW + 10, 0, "v"],
    [1, NOW + 10, True, "v"],  # a bool is not a number here
    [1, "tomorrow", 10.0, "v"],
    [1, NOW + 10, None, "v"],  # a deadline without a lifetime
    [1, None, 10.0, "v"],  # a lifetime without a deadline
    [True, None, None, "v"],  # the version must be the int 1
    [1.0, None, None, "v"],
    [2, None, None, "v", NOW + 5, 0.1, 1.0],  # freshness without a deadline
    [2, NOW + 10, 10.0, "v", NAN, 0.1, 1.0],
    [2, NOW + 10, 10.0, "v", INF, 0.1, 1.0],
    [2, NOW + 10, 10.0, "v", NOW + 5, NAN, 1.0],
    [2, NOW + 10, 10.0, "v", NOW + 5, 0.1, INF],
    [2, NOW + 10, 10.0, "v", NOW + 5, -0.1, 1.0],
    [2, NOW + 10, 10.0, "v", NOW + 5, 0.1, -1.0],
    [2, NOW + 10, 10.0, "v", NOW + 5, 0.1],
    [3, NOW + 10, 10.0, "v"],
    [1, NOW + 10, 10.0],
    [],
    {"not": "a list"},
]


def _frame(decoded: Any) -> bytes:
    return Codec().encode("k", decoded)


@pytest.mark.parametrize("decoded", FORGED, ids=repr)
def test_open_envelope_refuses_forged_fields(decoded: Any) -> None:
    with pytest.raises(ValueError):
        open_envelope(decoded, lambda: NOW)


@pytest.mark.parametrize("decoded", FORGED, ids=repr)
def test_sync_manager_counts_a_forged_envelope_as_corrupt(decoded: Any, tmp_path: Path) -> None:
    clock = Clock(NOW)
    store = SQLiteTier(tmp_path / "l3.db", clock=clock)
    with CacheManager(local=LocalCache(10, timer=clock), store=store, clock=clock) as m:
        store.set("k", _frame(decoded))
        assert m.get("k", "default") == "default"
        assert m.stats.get("store", "corrupt") == 1
        assert m.local is not None
        assert "k" not in m.local
        assert m.get_many(["k"]) == {}
        assert m.get_or_load("k", lambda: "loaded") == "loaded"
        assert m.stats.get("store", "corrupt") == 4  # get, get_many, and twice in get_or_load


@pytest.mark.parametrize("decoded", FORGED, ids=repr)
def test_async_manager_counts_a_forged_envelope_as_corrupt(decoded: Any, tmp_path: Path) -> None:
    clock = Clock(NOW)

    async def main() -> None:
        store = AsyncSQLiteTier(tmp_path / "l3.db", clock=clock)
        local = LocalCache(10, timer=clock)
        async with AsyncCacheManager(local=local, store=store, clock=clock) as m:
            await store.set("k", _frame(decoded))
            assert await m.get("k", "default") == "default"
            assert m.stats.get("store", "corrupt") == 1
            assert "k" not in local
            assert await m.get_many(["k"]) == {}

            async def load() -> str:
                return "loaded"

            assert await m.get_or_load("k", load) == "loaded"
            assert m.stats.get("store", "corrupt") == 4

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_valid_envelope_still_reads(tmp_path: Path) -> None:
    """The checks refuse nothing the manager writes: both versions, with and without a
    deadline, ints where floats are expected."""
    w = hlc.writer()
    assert open_envelope(seal("v", None, NOW, stamp=7), lambda: NOW) == Envelope(
        "v", None, stamp=7, writer=w
    )
    assert open_envelope(seal("v", 10, NOW, stamp=7), lambda: NOW) == Envelope(
        "v", 10.0, stamp=7, writer=w
    )
    env = open_envelope(seal("v", 10, NOW, stale=5, delta=0.5, beta=1, stamp=8), lambda: NOW)
    assert env == Envelope("v", 15.0, 10.0, 0.5, 1.0, 8, w)
    assert open_envelope([1, int(NOW) + 10, 10, "v"], lambda: NOW) == Envelope("v", 10.0)
    assert open_envelope([1, NOW - 1, 10.0, "v"], lambda: NOW) is None  # expired: not corrupt


_FIELD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.just(10**400),
)


@settings(max_examples=2000, deadline=None)
@given(
    version=st.sampled_from([1, 2, True, 1.0, 0, 3, 4, 5]),
    fields=st.lists(_FIELD, min_size=2, max_size=8),
)
def test_any_decoded_envelope_is_refused_or_bounded(version: Any, fields: list[Any]) -> None:
    """Whatever a frame decodes to, the envelope either is refused with ``ValueError``
    or has a finite remaining life no longer than its lifetime field."""
    decoded = [version, *fields[:2], "v", *fields[2:]]
    try:
        env = open_envelope(decoded, lambda: NOW)
    except ValueError:
        return
    if env is None or env.remaining is None:
        return
    assert math.isfinite(env.remaining)
    assert 0 < env.remaining <= float(decoded[2])
    if env.fresh is not None:
        assert math.isfinite(env.fresh)
        assert env.fresh <= env.remaining
        assert math.isfinite(env.delta)
        assert env.delta >= 0
        assert math.isfinite(env.beta)
        assert env.beta >= 0
