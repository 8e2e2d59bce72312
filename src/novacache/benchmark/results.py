"""What a run of ``novacache bench`` produces: rows of entries, and their JSON form.

A :class:`Row` is one operation (``c[k]`` hit, memory, throughput...). Its ``columns``
are the conditions it was measured under (key orders, or the two memory methods), and
its ``refs`` the implementations every entry is compared with, measured in the same run.
An :class:`Entry` is one implementation (or a reference loop such as the empty loop) in
that row: a number per column, or a ``status`` that says why there is none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BenchResults", "Entry", "Row"]


@dataclass
class Entry:
    """One implementation in one row."""

    name: str
    label: str
    values: dict[str, float] = field(default_factory=dict)
    status: str | None = None
    note: str | None = None
    #: Every counted round, by column (the value is their median), for the JSON.
    samples: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Row:
    """One operation, measured for every implementation it applies to.

    ``higher_is_better`` is ``True`` for throughput: ratios are then ``value / ref``
    either way, and the legend says which direction is good.
    """

    id: str
    title: str
    unit: str
    columns: list[str]
    refs: list[str]
    entries: list[Entry] = field(default_factory=list)
    higher_is_better: bool = False

    def entry(self, name: str) -> Entry | None:
        """The entry of implementation ``name``, or ``None``."""
        return next((e for e in self.entries if e.name == name), None)

    def ratio(self, entry: Entry, column: str, ref: str) -> float | None:
        """``entry``'s value over ``ref``'s value in ``column``; ``None`` if either is missing."""
        other = self.entry(ref)
        value = entry.values.get(column)
        base = None if other is None else other.values.get(column)
        if value is None or not base:
            return None
        return value / base

    def to_json(self) -> dict[str, Any]:
        """A plain-data form of this row, ratios included."""
        return {
            "id": self.id,
            "title": self.title,
            "unit": self.unit,
            "columns": list(self.columns),
            "refs": list(self.refs),
            "higher_is_better": self.higher_is_better,
            "entries": [
                {
                    "name": e.name,
                    "label": e.label,
                    "status": e.status,
                    "note": e.note,
                    "values": dict(e.values),
                    "samples": {column: list(v) for column, v in e.samples.items()},
                    "ratios": {
                        column: {ref: self.ratio(e, column, ref) for ref in self.refs}
                        for column in self.columns
                    },
                }
                for e in self.entries
            ],
        }


@dataclass
class BenchResults:
    """A whole run: how it was measured, and the rows."""

    method: dict[str, Any]
    rows: list[Row] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A plain-data form of the run, for ``--json``."""
        return {"method": dict(self.method), "rows": [row.to_json() for row in self.rows]}
