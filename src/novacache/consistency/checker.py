"""A history checker: linearizability of single-key registers, and the session and
monotonic-read invariants (pure Python, no dependency).

A *history* is a list of :class:`Op`: what each process asked of the cache (read, write,
delete), the key, the value written or read (``None``: absent), an optional version, and
when the call started and returned (nanoseconds of one clock that every process shares:
``time.monotonic_ns()`` on Linux). An op that raised has a *status*:

- ``"ok"``: it returned; its value is known.
- ``"failed"``: it definitely did not take effect (e.g. refused before anything was sent).
  A failed op is not part of the history.
- ``"unknown"``: it may or may not have taken effect (a timeout, a lost connection): as
  Porcupine does, a write of unknown outcome may be linearized at any point after its
  start (its return is at infinity), and a read of unknown outcome constrains nothing.

:func:`check_linearizable` is a Wing & Gong search with Lowe's memoisation, as in
Porcupine (Athalye): the history is partitioned per key (a register per key), and the
search keeps a cache of (set of linearized ops, register state) so that equivalent
branches are explored once. It is bounded: a history that needs more than ``max_steps``
steps is reported as ``"too_long"`` (:attr:`CheckResult.ok` is ``None``), never as a
pass; :func:`assert_linearizable` raises on it.

:func:`check_sessions` and :func:`check_monotonic_reads` check, per session (or reader)
and key, in real time: a read never returns a value whose write *definitely precedes*
(returned before it started) a write the session made or a write whose value it already
read. Values written must be unique per key for these checks (the recorder makes them
so); a value read that nobody wrote is reported too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CheckResult",
    "HistoryViolation",
    "Op",
    "Violation",
    "assert_linearizable",
    "assert_monotonic_reads",
    "assert_sessions",
    "check_linearizable",
    "check_monotonic_reads",
    "check_sessions",
]

OpKind = Literal["read", "write", "delete"]
Status = Literal["ok", "failed", "unknown"]

#: The default bound of one key's search (steps of the Wing & Gong loop).
MAX_STEPS = 2_000_000
_INF = math.inf


@dataclass(frozen=True)
class Op:
    """One operation of a history (see the module docstring).

    ``value``: for a write, the value written; for a read, the value returned (``None``:
    absent); for a delete, ignored (it writes absence). ``start``/``end``: times on a
    clock shared by every process (``end`` is ignored unless ``status == "ok"``).
    ``session``: the session the op ran in (``None``: none).
    """

    process: Hashable
    kind: OpKind
    key: str
    value: Any
    start: int
    end: int
    status: Status = "ok"
    version: Any = None
    session: Hashable | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("read", "write", "delete"):
            raise ValueError(f"op kind is 'read', 'write' or 'delete', not {self.kind!r}")
        if self.status not in ("ok", "failed", "unknown"):
            raise ValueError(f"op status is 'ok', 'failed' or 'unknown', not {self.status!r}")
        if self.status == "ok" and self.end < self.start:
            raise ValueError(f"op ends ({self.end}) before it starts ({self.start})")

    @property
    def written(self) -> Any:
        """The register value this op writes (``None`` for a delete)."""
        return None if self.kind == "delete" else self.value


@dataclass(frozen=True)
class Violation:
    """One broken invariant: what, on which key, and the ops that show it."""

    key: str
    what: str
    ops: tuple[Op, ...] = ()

    def __str__(self) -> str:
        shown = "; ".join(_show(op) for op in self.ops)
        return f"{self.key!r}: {self.what}" + (f" [{shown}]" if shown else "")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check: ``ok`` is ``True`` (holds), ``False`` (violated, see
    ``violations``) or ``None`` (``too_long``: some key's search hit the bound; nothing
    is claimed about it)."""

    ok: bool | None
    violations: tuple[Violation, ...] = ()
    too_long: tuple[str, ...] = ()
    keys: int = 0
    ops: int = 0
    steps: int = 0
    notes: tuple[str, ...] = field(default=())

    def __bool__(self) -> bool:
        return self.ok is True

    def describe(self) -> str:
        """A short text for an assertion message."""
        if self.ok:
            return f"holds ({self.ops} ops on {self.keys} keys, {self.steps} steps)"
        lines = [str(v) for v in self.violations[:5]]
        if len(self.violations) > 5:
            lines.append(f"... and {len(self.violations) - 5} more")
        if self.too_long:
            lines.append(f"too long to check: keys {list(self.too_long)}")
        return "\n".join(lines)


class HistoryViolation(AssertionError):
    """A history breaks the invariant asserted (or was too long to check)."""

    def __init__(self, what: str, result: CheckResult) -> None:
        super().__init__(f"{what}: {result.describe()}")
        self.result = result


def _show(op: Op) -> str:
    end = "?" if op.status != "ok" else op.end
    return f"{op.process} {op.kind}({op.value!r}) [{op.start}, {end}] {op.status}"


def _by_key(history: Iterable[Op]) -> dict[str, list[Op]]:
    keys: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        keys[op.key].append(op)
    return keys


def _state(value: Any) -> Hashable:
    """A hashable stand-in of a register value for the memo (equal values, equal keys)."""
    try:
        hash(value)
    except TypeError:
        return ("unhashable", repr(value))
    return value  # type: ignore[no-any-return]


# -- linearizability -----------------------------------------------------------------


class _Entry:
    """A call or return event in the doubly linked list of Wing & Gong's search."""

    __slots__ = ("call", "id", "match", "next", "op", "prev", "time")

    def __init__(self, op: Op | None, id: int, call: bool, time: float) -> None:
        self.op = op
        self.id = id
        self.call = call
        self.time = time
        self.match: _Entry | None = None  # a call's return event
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _events(ops: Sequence[Op]) -> _Entry:
    """The events of ``ops`` in time order as a linked list behind a sentinel head.

    Note that at equal times calls come before returns: two ops that touch the same
    nanosecond count as concurrent, so ties never make a false violation."""
    events: list[tuple[float, int, int, _Entry]] = []
    for i, op in enumerate(ops):
        end = op.end if op.status == "ok" else _INF
        call = _Entry(op, i, True, op.start)
        ret = _Entry(op, i, False, end)
        call.match = ret
        events.append((op.start, 0, i, call))
        events.append((end, 1, i, ret))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, -1, False, -_INF)
    prev = head
    for _, _, _, entry in events:
        prev.next = entry
        entry.prev = prev
        prev = entry
    return head


def _lift(entry: _Entry) -> None:
    assert entry.prev is not None
    assert entry.match is not None
    entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev
    match = entry.match
    assert match.prev is not None
    match.prev.next = match.next
    if match.next is not None:
        match.next.prev = match.prev


def _unlift(entry: _Entry) -> None:
    match = entry.match
    assert match is not None
    assert match.prev is not None
    assert entry.prev is not None
    match.prev.next = match
    if match.next is not None:
        match.next.prev = match
    entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry


def _step(state: Any, op: Op) -> tuple[bool, Any]:
    """The register: a write sets it, a delete empties it, a read must see it."""
    if op.kind == "read":
        return _state(op.value) == state, state
    return True, _state(op.written)


def _check_register(
    ops: Sequence[Op], initial: Any, max_steps: int
) -> tuple[bool | None, int, tuple[Op, ...]]:
    """Wing & Gong with memoisation on one key: (linearizable or None when the bound was
    hit, steps taken, the ops of the longest prefix found linearizable when it is not)."""
    head = _events(ops)
    state = _state(initial)
    linearized = 0
    seen: set[tuple[int, Hashable]] = set()
    stack: list[tuple[_Entry, Any]] = []
    best: tuple[Op, ...] = ()
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return None, steps, ()
        assert entry is not None
        if entry.call:
            assert entry.op is not None
            ok, after = _step(state, entry.op)
            if ok:
                grown = linearized | (1 << entry.id)
                if (grown, after) not in seen:
                    seen.add((grown, after))
                    stack.append((entry, state))
                    state, linearized = after, grown
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # A return: its op was not linearized before it returned; backtrack.
            if len(stack) > len(best):
                best = tuple(e.op for e, _ in stack if e.op is not None)
            if not stack:
                return False, steps, best
            top, state = stack.pop()
            linearized &= ~(1 << top.id)
            _unlift(top)
            entry = top.next
    return True, steps, ()


def check_linearizable(
    history: Iterable[Op], *, initial: Any = None, max_steps: int = MAX_STEPS
) -> CheckResult:
    """Whether ``history`` is linearizable as one register per key, every register
    starting at ``initial`` (``None``: absent). Failed ops are left out, reads of unknown
    outcome too; writes of unknown outcome may take effect at any time after their start.

    ``max_steps`` bounds each key's search: a key that needs more is listed in
    ``too_long`` and the result's ``ok`` is ``None`` (unless another key is violated:
    then ``False``)."""
    violations: list[Violation] = []
    too_long: list[str] = []
    steps = 0
    count = 0
    keys = _by_key(history)
    for key, ops in sorted(keys.items()):
        kept = [
            op for op in ops if op.status == "ok" or (op.status == "unknown" and op.kind != "read")
        ]
        count += len(kept)
        ok, taken, prefix = _check_register(kept, initial, max_steps)
        steps += taken
        if ok is None:
            too_long.append(key)
        elif not ok:
            violations.append(
                Violation(key, "not linearizable (longest linearizable prefix shown)", prefix)
            )
    verdict: bool | None = False if violations else (None if too_long else True)
    return CheckResult(verdict, tuple(violations), tuple(too_long), len(keys), count, steps)


def assert_linearizable(history: Iterable[Op], **options: Any) -> CheckResult:
    """:func:`check_linearizable`, raising :class:`HistoryViolation` unless it holds (a
    history too long to check raises too: it is never a silent pass)."""
    result = check_linearizable(history, **options)
    if result.ok is not True:
        raise HistoryViolation("linearizability", result)
    return result


# -- sessions and monotonic reads ----------------------------------------------------


class _Writes:
    """The writes of one key by the value they wrote (``None``: the initial absence and
    every delete)."""

    def __init__(self, ops: Sequence[Op], initial: Any) -> None:
        self.by_value: dict[Hashable, list[Op]] = defaultdict(list)
        self.initial = _state(initial)
        for op in ops:
            if op.kind != "read" and op.status != "failed":
                self.by_value[_state(op.written)].append(op)

    def sources(self, value: Any) -> list[tuple[float, float]] | None:
        """The (start, end) of each write that may have written ``value`` (the initial
        value is a write that ended before time began); ``None``: nobody wrote it."""
        found: list[tuple[float, float]] = [
            (op.start, op.end if op.status == "ok" else _INF)
            for op in self.by_value.get(_state(value), ())
        ]
        if _state(value) == self.initial:
            found.append((-_INF, -_INF))
        return found or None


def _floor_check(
    key: str,
    ops: Sequence[Op],
    writes: _Writes,
    group: Callable[[Op], Hashable | None],
    count_writes: bool,
    what: str,
) -> list[Violation]:
    """Per group (session or reader): each read's source write must not definitely
    precede (end before the start of) a write the group made (``count_writes``) or the
    latest-starting source of a read it completed earlier."""
    violations: list[Violation] = []
    groups: dict[Hashable, list[Op]] = defaultdict(list)
    for op in ops:
        g = group(op)
        if g is not None and op.status == "ok":
            groups[g].append(op)
    for g, members in groups.items():
        members.sort(key=lambda op: op.start)
        # (floor, the op that set it): a later read's source must not end before floor
        done: list[tuple[int, float, Op]] = []  # (end, floor, op), by end
        for op in members:
            floor, why = -_INF, None
            for end, f, by in done:
                if end < op.start and f > floor:
                    floor, why = f, by
            if op.kind == "read":
                sources = writes.sources(op.value)
                if sources is None:
                    violations.append(Violation(key, f"read a value nobody wrote ({g})", (op,)))
                    continue
                if all(s_end < floor for _, s_end in sources):
                    assert why is not None
                    violations.append(Violation(key, f"{what} ({g})", (why, op)))
                # what this read saw: its source started no earlier than the earliest
                # candidate (a conservative floor when several writes wrote the value)
                done.append((op.end, min(s for s, _ in sources), op))
            elif count_writes:
                done.append((op.end, op.start, op))
    return violations


def _floors(
    history: Iterable[Op],
    group: Callable[[Op], Hashable | None],
    count_writes: bool,
    what: str,
    initial: Any,
) -> CheckResult:
    violations: list[Violation] = []
    keys = _by_key(history)
    count = 0
    for key, ops in sorted(keys.items()):
        count += len(ops)
        violations += _floor_check(key, ops, _Writes(ops, initial), group, count_writes, what)
    return CheckResult(not violations, tuple(violations), (), len(keys), count)


def check_sessions(history: Iterable[Op], *, initial: Any = None) -> CheckResult:
    """Read-your-writes and monotonic reads within each session (``Op.session``; ops
    without one are writers only): a read in a session never returns a value whose
    write definitely precedes a write of that session or the write of a value that
    session already read (both completed before the read started)."""
    return _floors(history, lambda op: op.session, True, "stale read in session", initial)


def check_monotonic_reads(
    history: Iterable[Op],
    *,
    reader: Callable[[Op], Hashable | None] = lambda op: op.process,
    initial: Any = None,
) -> CheckResult:
    """Monotonic reads per reader (by default per process): a read never returns a value
    whose write definitely precedes the write of a value the reader already read."""
    return _floors(history, reader, False, "read went back in time", initial)


def assert_sessions(history: Iterable[Op], **options: Any) -> CheckResult:
    """:func:`check_sessions`, raising :class:`HistoryViolation` unless it holds."""
    result = check_sessions(history, **options)
    if not result.ok:
        raise HistoryViolation("session guarantees", result)
    return result


def assert_monotonic_reads(history: Iterable[Op], **options: Any) -> CheckResult:
    """:func:`check_monotonic_reads`, raising :class:`HistoryViolation` unless it holds."""
    result = check_monotonic_reads(history, **options)
    if not result.ok:
        raise HistoryViolation("monotonic reads", result)
    return result
