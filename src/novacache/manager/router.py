"""The router: which tiers a write goes to, by key prefix or by encoded size.

Three destinations:

- ``"all"``: L1, L2 and L3 (the default);
- ``"remote"``: L2 and L3 only, never the process-local L1 (large values, values that
  must be the same in every process);
- ``"local"``: L1 only (per-process values: nothing is encoded or sent anywhere).

Rules are tried in order; the first that matches decides, otherwise ``default`` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from ..errors import ConfigurationError

__all__ = ["LOCAL", "REMOTE", "STORE", "Destination", "Route", "Router"]

Destination = Literal["all", "remote", "local"]

LOCAL: Final = "local"
REMOTE: Final = "remote"
STORE: Final = "store"

_TIERS: dict[str, frozenset[str]] = {
    "all": frozenset((LOCAL, REMOTE, STORE)),
    "remote": frozenset((REMOTE, STORE)),
    "local": frozenset((LOCAL,)),
}


@dataclass(frozen=True)
class Route:
    """One rule: keys beginning with ``prefix`` (when given) whose encoded frame is at
    least ``min_size`` bytes (when given) go to ``to``."""

    to: Destination
    prefix: str | None = None
    min_size: int | None = None

    def __post_init__(self) -> None:
        if self.to not in _TIERS:
            raise ConfigurationError(f"a route goes to 'all', 'remote' or 'local', not {self.to!r}")
        if self.prefix is None and self.min_size is None:
            raise ConfigurationError("a route needs a prefix, a min_size or both")
        if self.min_size is not None and (
            isinstance(self.min_size, bool)
            or not isinstance(self.min_size, int)
            or self.min_size < 0
        ):
            raise ConfigurationError("min_size is an int >= 0")


class Router:
    """Picks the tiers a write goes to (see the module docstring)."""

    __slots__ = ("_default", "_prefix_only", "_rules", "everywhere")

    def __init__(self, rules: Iterable[Route] = (), default: Destination = "all") -> None:
        if default not in _TIERS:
            raise ConfigurationError(f"default is 'all', 'remote' or 'local', not {default!r}")
        self._rules = tuple(rules)
        for rule in self._rules:
            if not isinstance(rule, Route):
                raise ConfigurationError("rules are novacache.manager.Route objects")
        self._prefix_only = all(r.min_size is None for r in self._rules)
        self._default: Destination = default
        #: Every key goes to every tier (no rules, default "all"): the read path skips
        #: asking where a promoted value may go.
        self.everywhere = not self._rules and default == "all"

    @property
    def default(self) -> Destination:
        """Where a key that no rule matches goes."""
        return self._default

    @property
    def rules(self) -> tuple[Route, ...]:
        """The rules, in the order they are tried."""
        return self._rules

    def destination(self, key: str, size: int | None) -> Destination:
        """Where a write of ``key`` goes; ``size`` is the encoded frame's length, or
        ``None`` when it is not known (then rules with a ``min_size`` do not match)."""
        for rule in self._rules:
            if rule.prefix is not None and not key.startswith(rule.prefix):
                continue
            if rule.min_size is not None and (size is None or size < rule.min_size):
                continue
            return rule.to
        return self._default

    @property
    def sizes_matter(self) -> bool:
        """Whether some rule looks at the encoded size (then a write encodes before it
        routes; otherwise a write routed ``"local"`` is never encoded)."""
        return not self._prefix_only

    def tiers(self, key: str, size: int | None) -> frozenset[str]:
        """The tier slots (``"local"``, ``"remote"``, ``"store"``) a write of ``key`` goes to."""
        return _TIERS[self.destination(key, size)]

    def __repr__(self) -> str:
        return f"Router(rules={list(self._rules)!r}, default={self.default!r})"
