"""Versioned entries (issue 13, "consistency" item 1): the hybrid logical clock, the
versioned envelopes (3 and 4) read the same by the compiled and the pure reader, the
unversioned ones (1 and 2) still read as version 0, and tombstones."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacache.consistency import ZERO, Version, hlc
from novacache.consistency.hlc import MAX_AHEAD_MS
from novacache.manager import envelope
from novacache.manager.envelope import (
    Envelope,
    is_tombstone,
    open_envelope_py,
    read_tombstone,
    seal,
    tombstone,
)

NOW = 1_700_000_000.0
READERS = {"compiled": envelope.open_envelope, "pure": open_envelope_py}


@pytest.fixture(params=sorted(READERS))
def open_envelope(request: pytest.FixtureRequest) -> Any:
    return READERS[request.param]


def test_the_clock_never_goes_backwards() -> None:
    """Stamps increase even when the wall clock given steps back, or stands still."""
    now = time.time()
    stamps = [hlc.tick(now), hlc.tick(now), hlc.tick(now - 3600), hlc.tick(0.0), hlc.tick(now)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert hlc.last() == stamps[-1]
    assert Version(stamps[0], 1).timestamp == pytest.approx(now, abs=0.002)


def test_a_version_read_is_merged_so_the_next_write_is_newer(open_envelope: Any) -> None:
    """A stamp read from storage that is ahead of this process's clock (another machine's
    clock runs 30 s ahead) moves the clock: the next write's version is greater."""
    ahead = hlc.tick(time.time() + 30) + 5
    decoded = [3, None, None, "v", ahead, 9]
    env = open_envelope(decoded, time.time)
    assert env.version == Version(ahead, 9)
    assert hlc.tick(time.time()) > ahead


def test_a_forged_far_future_stamp_is_not_merged(open_envelope: Any) -> None:
    """A stamp more than MAX_AHEAD_MS ahead of the wall clock reads (it is a value) but
    does not drag the clock along (else one bad entry would freeze every version)."""
    far = ((int(time.time() * 1000) + 10 * MAX_AHEAD_MS) << 16) + 1
    env = open_envelope([3, None, None, "v", far, 1], time.time)
    assert env.stamp == far
    assert hlc.last() < far
    assert hlc.tick(time.time()) < far


@pytest.mark.parametrize(
    "decoded",
    [
        [3, None, None, "v", -1, 1],
        [3, None, None, "v", 2**63, 1],
        [3, None, None, "v", 1.0, 1],
        [3, None, None, "v", True, 1],
        [3, None, None, "v", 1, 2**32],
        [3, None, None, "v", 1, -1],
        [3, None, None, "v", 1, "w"],
        [3, None, None, "v", 1],
        [3, NOW + 10, 10.0, "v", NOW + 5, 0.1, 1.0, 1, 1],  # an SWR body under 3
        [4, NOW + 10, 10.0, "v", 1, 1],  # a plain body under 4
        [4, None, None, "v", NOW + 5, 0.1, 1.0, 1, 1],  # freshness without deadline
        [4, NOW + 10, 10.0, "v", NOW + 5, 0.1, 1.0, None, 1],
        [1, NOW + 10, 10.0, "v", 1, 1],  # an old version with version fields
    ],
)
def test_forged_version_fields_are_refused(open_envelope: Any, decoded: Any) -> None:
    with pytest.raises(ValueError, match="envelope"):
        open_envelope(decoded, lambda: NOW)


def test_unversioned_envelopes_read_as_version_zero(open_envelope: Any) -> None:
    """Entries written before versions existed keep reading, as the oldest version."""
    env = open_envelope([1, NOW + 10, 10.0, "v"], lambda: NOW)
    assert (env.value, env.remaining, env.version) == ("v", 10.0, ZERO)
    env = open_envelope([2, NOW + 10, 10.0, "v", NOW + 5, 0.5, 1.0], lambda: NOW)
    assert (env.fresh, env.delta, env.beta, env.version) == (5.0, 0.5, 1.0, ZERO)
    assert open_envelope([1, None, None, "v"], lambda: NOW).version == ZERO


def test_every_write_carries_a_new_version(open_envelope: Any) -> None:
    """seal() stamps each envelope with a new version of this process's writer."""
    a = open_envelope(seal("a", 10, NOW), lambda: NOW)
    b = open_envelope(seal("b", None, NOW), lambda: NOW)
    c = open_envelope(seal("c", 10, NOW, stale=5, beta=1.0), lambda: NOW)
    assert a.version < b.version < c.version
    assert {a.writer, b.writer, c.writer} == {hlc.writer()}
    assert (c.fresh, c.remaining) == (10.0, 15.0)


@settings(max_examples=1500, deadline=None)
@given(
    version=st.sampled_from([1, 2, 3, 4]),
    fields=st.lists(
        st.one_of(
            st.none(),
            st.integers(min_value=-(2**64), max_value=2**64),
            st.floats(allow_nan=True, allow_infinity=True),
            st.just(NOW + 10),
            st.just(10.0),
        ),
        min_size=2,
        max_size=8,
    ),
)
def test_the_compiled_and_the_pure_reader_agree(version: int, fields: list[Any]) -> None:
    """Both readers give the same envelope, or both refuse it with the same message."""
    decoded = [version, *fields[:2], "v", *fields[2:]]
    results = []
    for read in READERS.values():
        try:
            results.append(("ok", read(decoded, lambda: NOW)))
        except ValueError as exc:
            results.append(("refused", str(exc)))
    assert results[0] == results[1]


def test_versions_order_and_pack() -> None:
    a, b, c = Version(5, 9), Version(6, 1), Version(6, 2)
    assert ZERO < a < b < c
    assert sorted([c, a, b]) == [a, b, c]
    for v in (a, b, c, Version(2**63 - 1, 2**32 - 1)):
        assert Version.unpack(v.pack()) == v
    assert a.pack() < b.pack() < c.pack()  # byte order is the versions' order
    with pytest.raises(ValueError):
        Version.unpack(b"short")


def test_a_tombstone_records_the_delete_version() -> None:
    v = Version(hlc.tick(NOW), hlc.writer())
    t = tombstone(v)
    assert is_tombstone(t)
    assert read_tombstone(t) == v
    assert not is_tombstone(seal_frame())
    assert read_tombstone(seal_frame()) is None
    assert read_tombstone(b"NT") is None


def seal_frame() -> bytes:
    from novacache.codec import Codec

    return Codec().encode("k", seal("v", 10, NOW))


def test_the_envelope_reports_its_version() -> None:
    env = Envelope("v", None, stamp=3, writer=4)
    assert env.version == Version(3, 4)
    assert math.isclose(Version(1 << 16, 0).timestamp, 0.001)


@pytest.mark.parametrize("now", [math.nan, math.inf, -1.0, 1e12, 1e300])
def test_a_clock_reading_out_of_range_still_ticks(now: float) -> None:
    """A wall clock that reads nonsense (a broken or fake clock) never breaks the order
    nor overflows the 63 bits of a stamp."""
    before = hlc.tick(time.time())
    after = hlc.tick(now)
    assert before < after <= hlc.MAX_STAMP
    assert hlc.tick(time.time()) > after or after == hlc.MAX_STAMP
