"""Which of two copies of an entry wins when tiers disagree (conflict resolution).

A read that finds a key in more than one tier below L1 with different versions (after
a failover, a partition, a Redis restarted from an old AOF) keeps the winner, and the
manager writes it over the loser (counted as ``repairs``). The rule is the manager's
``resolve=`` option:

- ``"highest_version"`` (default): the greater :class:`~.hlc.Version` (stamp, then
  writer id). The hybrid clock makes a write that follows another (in time, in any
  process whose clock is within a minute of the others, or after reading it) greater.
- ``"last_writer_wins"``: the later wall-clock time of the write (milliseconds), then
  the writer id; the logical counter is ignored.
- a callable ``resolve(a, b) -> Versioned`` given the two copies as :class:`Versioned`
  (value, version, tier); it returns one of them. A callable that raises or returns
  something else makes the read keep ``a``, the copy of the higher tier (counted as
  ``resolve_errors``).

A delete is a copy too: its tombstone carries the delete's version and a value of
:data:`DELETED`, so "highest version" never brings back a key deleted after its last
write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, TypeAlias

from ..errors import ConfigurationError
from .hlc import Version

__all__ = [
    "DELETED",
    "HIGHEST_VERSION",
    "LAST_WRITER_WINS",
    "Resolution",
    "Resolver",
    "Versioned",
    "resolver",
]

HIGHEST_VERSION = "highest_version"
LAST_WRITER_WINS = "last_writer_wins"


class _Deleted:
    """The value of a deleted entry (a tombstone) in a :class:`Versioned`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DELETED"

    def __reduce__(self) -> str:
        return "DELETED"


DELETED: Any = _Deleted()


class Versioned(NamedTuple):
    """A value with its version metadata (what ``manager.get_versioned`` returns).

    ``tier``: where it was read (``"local"``, ``"remote"``, ``"store"``); ``remaining``:
    seconds left before it expires (``None``: no expiry). A value served from L1 carries
    the version it was read or written with."""

    value: Any
    version: Version
    tier: str
    remaining: float | None = None

    @property
    def deleted(self) -> bool:
        """Whether this copy is a delete's tombstone."""
        return self.value is DELETED


Resolver: TypeAlias = Callable[[Versioned, Versioned], Versioned]
Resolution: TypeAlias = "Literal['highest_version', 'last_writer_wins'] | Resolver"


def _highest(a: Versioned, b: Versioned) -> Versioned:
    return b if b.version > a.version else a


def _latest(a: Versioned, b: Versioned) -> Versioned:
    ka = (a.version.stamp >> 16, a.version.writer)
    kb = (b.version.stamp >> 16, b.version.writer)
    return b if kb > ka else a


def resolver(option: Resolution) -> Resolver:
    """The rule named by ``option`` (see the module); ``ConfigurationError`` for
    anything else."""
    if option == HIGHEST_VERSION:
        return _highest
    if option == LAST_WRITER_WINS:
        return _latest
    if callable(option):
        return option
    raise ConfigurationError(
        f"resolve must be 'highest_version', 'last_writer_wins' or a callable, not {option!r}"
    )
