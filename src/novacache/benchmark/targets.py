"""The in-process cache's speed targets, judged on a run of ``novacache bench``.

The targets of the eviction-policy work (issue 20; docs/policies.md): a tinylfu hit no
dearer than an LRU hit, the cache-aside loop (LRU against cachebox and the unbounded
``dict`` loop, tinylfu against LRU) and a hit in big caches against ``dict``. Each is a
ratio of two entries of one row and column, judged as the manager section judges its
own (docs/benchmarks.md): the median of the per-round ratios (the rounds are
interleaved, so round ``i`` of both entries ran side by side), with a 95% confidence
interval of that median (:func:`~novacache.benchmark.stats.median_interval`); a target
is *met* when the median is within it and *decided* when the interval lies wholly on
one side of it.

>>> from novacache.benchmark.results import Entry, Row
>>> row = Row("aside", "cache-aside", "ns/op", ["10,000"], ["novacache"])
>>> row.entries = [
...     Entry("novacache", "LRU", {"10,000": 60.0}, samples={"10,000": [60.0] * 11}),
...     Entry("novacache-tinylfu", "tinylfu", {"10,000": 66.0},
...           samples={"10,000": [66.0 + 0.5 * i for i in range(-5, 6)]}),
... ]
>>> [v] = [v for v in judge([row]) if v.target.entry == "novacache-tinylfu"]
>>> round(v.ratio, 3), v.met, v.decided
(1.1, True, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from .results import Row
from .stats import median_interval, verdict

__all__ = ["L1_TARGETS", "Target", "Verdict", "judge", "render"]


@dataclass(frozen=True)
class Target:
    """``entry`` / ``reference`` in row ``row`` is at most ``bound`` in each of
    ``columns`` (every column of the row when empty)."""

    row: str
    entry: str
    reference: str
    bound: float
    columns: tuple[str, ...] = ()
    issue: int = 20


#: The targets of issue 20 that the default rows measure.
L1_TARGETS: tuple[Target, ...] = (
    Target("hit-int", "novacache-tinylfu", "novacache", 1.10),
    Target("aside", "novacache", "cachebox", 1.00),
    Target("aside", "novacache", "dict", 1.10),
    Target("aside", "novacache-tinylfu", "novacache", 1.15),
    Target("hit-big", "novacache", "dict", 1.15, ("1,000,000", "5,000,000")),
    Target("hit-big", "novacache-tinylfu", "dict", 1.15, ("1,000,000", "5,000,000")),
)


@dataclass(frozen=True)
class Verdict:
    """One target in one column of a run."""

    target: Target
    column: str
    ratio: float  # median of the per-round ratios
    low: float  # its 95% interval
    high: float
    rounds: int

    @property
    def met(self) -> bool:
        return verdict(self.ratio, (self.low, self.high), self.target.bound)[0]

    @property
    def decided(self) -> bool:
        """Whether the interval lies wholly on one side of the bound."""
        return verdict(self.ratio, (self.low, self.high), self.target.bound)[1]

    def to_json(self) -> dict[str, Any]:
        t = self.target
        return {
            "issue": t.issue,
            "row": t.row,
            "column": self.column,
            "entry": t.entry,
            "reference": t.reference,
            "bound": t.bound,
            "ratio": self.ratio,
            "ratio_interval": [self.low, self.high],
            "rounds": self.rounds,
            "met": self.met,
            "decided": self.decided,
        }


def _per_round(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=False) if y > 0]


def judge(rows: Iterable[Row], targets: Sequence[Target] = L1_TARGETS) -> list[Verdict]:
    """The verdict of every target whose row, entries and columns the run measured
    (with the rounds of both entries recorded), in the order of ``targets``."""
    by_id = {row.id: row for row in rows}
    verdicts = []
    for t in targets:
        row = by_id.get(t.row)
        if row is None:
            continue
        mine, ref = row.entry(t.entry), row.entry(t.reference)
        if mine is None or ref is None:
            continue
        for column in t.columns or tuple(row.columns):
            ratios = _per_round(mine.samples.get(column, ()), ref.samples.get(column, ()))
            if not ratios:
                continue
            low, high = median_interval(ratios)
            verdicts.append(Verdict(t, column, median(ratios), low, high, len(ratios)))
    return verdicts


def render(verdicts: Sequence[Verdict]) -> str:
    """The verdicts as a block of the report ("" when there are none)."""
    if not verdicts:
        return ""
    lines = [
        "Targets (median of the per-round ratios, 95% interval; 'undecided' when the"
        " interval spans the bound)"
    ]
    for v in verdicts:
        t = v.target
        where = f"{t.row} {v.column}"
        what = f"{t.entry} / {t.reference}"
        verdict = ("met" if v.met else "NOT met") + ("" if v.decided else ", undecided")
        lines.append(
            f"  #{t.issue} {where:<20} {what:<32} x{v.ratio:.3f} ({v.low:.2f}-{v.high:.2f})"
            f"  <= {t.bound:.2f}  {verdict}"
        )
    return "\n".join(lines)
