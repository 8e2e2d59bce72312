"""The history checker on hand-built histories that must pass and must fail, and on
histories generated from a sequential register (hypothesis): always accepted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacache.consistency.checker import (
    HistoryViolation,
    Op,
    assert_linearizable,
    assert_monotonic_reads,
    assert_sessions,
    check_linearizable,
    check_monotonic_reads,
    check_sessions,
)


def w(p: str, v: object, start: int, end: int, key: str = "k", **kw: object) -> Op:
    return Op(p, "write", key, v, start, end, **kw)  # type: ignore[arg-type]


def r(p: str, v: object, start: int, end: int, key: str = "k", **kw: object) -> Op:
    return Op(p, "read", key, v, start, end, **kw)  # type: ignore[arg-type]


def d(p: str, start: int, end: int, key: str = "k", **kw: object) -> Op:
    return Op(p, "delete", key, None, start, end, **kw)  # type: ignore[arg-type]


# -- linearizability: must pass ------------------------------------------------------


def test_sequential_history_is_linearizable() -> None:
    h = [w("a", 1, 0, 1), r("b", 1, 2, 3), w("a", 2, 4, 5), r("b", 2, 6, 7), d("a", 8, 9)]
    h.append(r("b", None, 10, 11))
    result = assert_linearizable(h)
    assert result.ok is True
    assert result.ops == 6
    assert result.keys == 1


def test_read_concurrent_with_a_write_may_see_either_value() -> None:
    base = [w("a", 1, 0, 1), w("a", 2, 10, 20)]
    assert check_linearizable([*base, r("b", 1, 12, 14)]).ok is True
    assert check_linearizable([*base, r("b", 2, 12, 14)]).ok is True


def test_reads_order_concurrent_writes_consistently() -> None:
    # two overlapping writes; readers after both agree on the last one
    h = [w("a", 1, 0, 10), w("b", 2, 0, 10), r("c", 2, 11, 12), r("d", 2, 13, 14)]
    assert check_linearizable(h).ok is True
    h = [w("a", 1, 0, 10), w("b", 2, 0, 10), r("c", 1, 11, 12), r("d", 1, 13, 14)]
    assert check_linearizable(h).ok is True


def test_ops_touching_the_same_nanosecond_count_as_concurrent() -> None:
    assert check_linearizable([w("a", 1, 0, 5), r("b", None, 5, 6)]).ok is True


def test_keys_are_independent_registers() -> None:
    h = [w("a", 1, 0, 1, key="x"), w("a", 2, 2, 3, key="y"), r("b", 1, 4, 5, key="x")]
    h.append(r("b", 2, 6, 7, key="y"))
    result = check_linearizable(h)
    assert result.ok is True
    assert result.keys == 2


def test_failed_write_is_not_part_of_the_history() -> None:
    h = [w("a", 1, 0, 1), w("a", 2, 2, 3, status="failed"), r("b", 1, 4, 5)]
    assert check_linearizable(h).ok is True
    assert check_linearizable([*h[:2], r("b", 2, 4, 5)]).ok is False


def test_write_of_unknown_outcome_may_or_may_not_take_effect() -> None:
    h = [w("a", 1, 0, 1), w("a", 2, 2, 3, status="unknown")]
    assert check_linearizable([*h, r("b", 1, 10, 11)]).ok is True
    assert check_linearizable([*h, r("b", 2, 10, 11)]).ok is True
    # but once seen, it cannot be un-seen
    seen = [*h, r("b", 2, 10, 11), r("b", 1, 12, 13)]
    assert check_linearizable(seen).ok is False
    # and it cannot take effect before it was called
    early = [w("a", 1, 0, 1), r("b", 2, 2, 3), w("a", 2, 4, 5, status="unknown")]
    assert check_linearizable(early).ok is False


def test_read_of_unknown_outcome_constrains_nothing() -> None:
    h = [w("a", 1, 0, 1), r("b", 99, 2, 3, status="unknown"), r("b", 1, 4, 5)]
    assert check_linearizable(h).ok is True


# -- linearizability: must fail ------------------------------------------------------


def test_stale_read_after_write_is_not_linearizable() -> None:
    # a completed write of 2, then a read (that starts later) still returns 1
    h = [w("a", 1, 0, 1), w("a", 2, 2, 3), r("b", 1, 4, 5)]
    result = check_linearizable(h)
    assert result.ok is False
    assert result.violations[0].key == "k"
    with pytest.raises(HistoryViolation, match="not linearizable"):
        assert_linearizable(h)


def test_non_linearizable_concurrent_pair() -> None:
    # two readers overlap a write; one sees the new value and finishes, the other then
    # starts and sees the old one: no single point can order both
    h = [w("a", 1, 0, 1), w("a", 2, 10, 100), r("b", 2, 20, 30), r("c", 1, 40, 50)]
    assert check_linearizable(h).ok is False


def test_readers_disagree_on_the_order_of_two_writes() -> None:
    h = [w("a", 1, 0, 10), w("b", 2, 0, 10)]
    h += [r("c", 1, 11, 12), r("c", 2, 13, 14), r("d", 1, 15, 16)]
    assert check_linearizable(h).ok is False


def test_read_of_a_value_never_written_is_not_linearizable() -> None:
    assert check_linearizable([w("a", 1, 0, 1), r("b", 7, 2, 3)]).ok is False


def test_read_of_absence_after_a_write_is_not_linearizable() -> None:
    assert check_linearizable([w("a", 1, 0, 1), r("b", None, 2, 3)]).ok is False


def test_too_long_to_check_is_not_a_pass() -> None:
    h = [w(str(i), i, 0, 100) for i in range(12)] + [r("z", 5, 101, 102)]
    result = check_linearizable(h, max_steps=10)
    assert result.ok is None
    assert result.too_long == ("k",)
    assert not result
    with pytest.raises(HistoryViolation, match="too long to check"):
        assert_linearizable(h, max_steps=10)
    assert check_linearizable(h).ok is True  # with the default bound it finishes


def test_violation_wins_over_too_long() -> None:
    bad = [w("a", 1, 0, 1, key="x"), r("b", 2, 2, 3, key="x")]
    long = [w(str(i), i, 0, 100, key="y") for i in range(12)] + [r("z", 5, 101, 102, key="y")]
    assert check_linearizable(bad + long, max_steps=10).ok is False


def test_ops_are_validated() -> None:
    with pytest.raises(ValueError, match="kind"):
        Op("a", "cas", "k", 1, 0, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status"):
        Op("a", "read", "k", 1, 0, 1, status="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="before it starts"):
        Op("a", "read", "k", 1, 5, 1)


def test_unhashable_values_compare_by_equality() -> None:
    assert check_linearizable([w("a", [1], 0, 1), r("b", [1], 2, 3)]).ok is True
    assert check_linearizable([w("a", [1], 0, 1), r("b", [2], 2, 3)]).ok is False


# -- sessions and monotonic reads ----------------------------------------------------


def test_read_your_writes_holds_and_fails() -> None:
    ok = [w("a", 1, 0, 1, session="s"), r("b", 1, 2, 3, session="s")]
    assert assert_sessions(ok).ok is True
    # the session wrote 2 after 1 was written; reading 1 back is not reading its write
    stale = [w("x", 1, 0, 1), w("a", 2, 2, 3, session="s"), r("b", 1, 4, 5, session="s")]
    result = check_sessions(stale)
    assert result.ok is False
    assert "stale read in session" in result.violations[0].what
    with pytest.raises(HistoryViolation):
        assert_sessions(stale)
    # reading absence (the initial value) after its own write is stale too
    assert (
        check_sessions([w("a", 2, 0, 1, session="s"), r("a", None, 2, 3, session="s")]).ok is False
    )
    # another session is not bound by s's writes
    assert check_sessions([*stale[:2], r("b", 1, 4, 5, session="t")]).ok is True


def test_session_may_see_a_concurrent_or_newer_write() -> None:
    h = [w("a", 1, 0, 10, session="s"), w("x", 2, 5, 8), r("a", 2, 11, 12, session="s")]
    assert check_sessions(h).ok is True  # 2 did not end before 1 started: concurrent
    h = [w("a", 1, 0, 1, session="s"), w("x", 2, 5, 8), r("a", 2, 11, 12, session="s")]
    assert check_sessions(h).ok is True  # a newer write


def test_session_monotonic_reads() -> None:
    h = [w("x", 1, 0, 1), w("x", 2, 2, 3), r("a", 2, 4, 5, session="s")]
    assert check_sessions([*h, r("b", 2, 6, 7, session="s")]).ok is True
    assert check_sessions([*h, r("b", 1, 6, 7, session="s")]).ok is False


def test_monotonic_reads_per_reader() -> None:
    h = [w("x", 1, 0, 1), w("x", 2, 2, 3), r("a", 2, 4, 5)]
    assert assert_monotonic_reads([*h, r("a", 2, 6, 7), r("b", 1, 6, 7)]).ok is True
    bad = [*h, r("a", 1, 6, 7)]
    assert check_monotonic_reads(bad).ok is False
    with pytest.raises(HistoryViolation, match="monotonic reads"):
        assert_monotonic_reads(bad)
    # overlapping reads of one reader (threads) are not ordered
    assert check_monotonic_reads([*h, r("a", 1, 4, 5)]).ok is True


def test_read_of_a_value_nobody_wrote_is_reported() -> None:
    result = check_monotonic_reads([w("x", 1, 0, 1), r("a", 9, 2, 3)])
    assert result.ok is False
    assert "nobody wrote" in result.violations[0].what


# -- property: histories of a sequential register are accepted -----------------------

_ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["p0", "p1", "p2"]),
        st.sampled_from(["read", "write", "delete"]),
        st.sampled_from(["k0", "k1"]),
        st.integers(0, 25),  # how far the call starts before the op takes effect
        st.integers(0, 25),  # how far it returns after
    ),
    max_size=40,
)


def _history(actions: list[tuple[str, str, str, int, int]]) -> list[Op]:
    """Ops applied one at a time to real registers at times 10, 20, ...; each call is
    stretched around its point by a few ticks (overlap without reordering the effect)."""
    state: dict[str, object] = {}
    ops = []
    for i, (proc, kind, key, before, after) in enumerate(actions):
        point = 10 * (i + 1)
        if kind == "write":
            state[key] = value = i
        elif kind == "delete":
            state.pop(key, None)
            value = None
        else:
            value = state.get(key)
        ops.append(Op(proc, kind, key, value, point - before, point + after, session=proc))  # type: ignore[arg-type]
    return ops


@settings(max_examples=300, deadline=None)
@given(_ACTIONS)
def test_sequential_register_histories_are_accepted(
    actions: list[tuple[str, str, str, int, int]],
) -> None:
    h = _history(actions)
    assert check_linearizable(h).ok is True
    assert check_sessions(h).ok is True
    assert check_monotonic_reads(h).ok is True


@settings(max_examples=200, deadline=None)
@given(_ACTIONS, st.data())
def test_a_read_moved_after_a_newer_write_is_rejected(
    actions: list[tuple[str, str, str, int, int]], data: st.DataObject
) -> None:
    h = _history(actions)
    # a read that returns a value overwritten (by a write that completed before the read
    # started) is never linearizable
    writes = [op for op in h if op.kind == "write"]
    later = [
        (old, new)
        for old in writes
        for new in writes
        if new.key == old.key and new.start > old.end and new.value != old.value
    ]
    if not later:
        return
    old, new = data.draw(st.sampled_from(later))
    stale = Op("z", "read", old.key, old.value, new.end + 1, new.end + 2)
    assert check_linearizable([*h, stale]).ok is False
