"""One adapter per implementation the benchmark compares.

An :class:`Implementation` says how to build a bounded LRU mapping of ``n`` entries
(``make``), one whose entries carry a TTL (``make_ttl``), and a memoizing decorator
(``memoize``); ``None`` where the implementation has no such thing. Every peer is
imported here and only here: a peer that is not installed becomes an implementation
with ``status = "not installed"``, and the compiled core when it was not built gets
``"n/a: not built"``. Nothing in this module raises because a peer is missing.

The TTL used everywhere is :data:`LONG_TTL`: long enough that no entry expires during
a run, so a TTL hit measures the price of *checking* a deadline, not of expiring.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LONG_TTL", "Implementation", "discover", "version_of"]

#: Seconds; far beyond any benchmark run.
LONG_TTL = 3600.0

Factory = Callable[[int], Any]
TTLFactory = Callable[[int, float], Any]
Decorator = Callable[[Callable[[Any], Any], int], Callable[[Any], Any]]


@dataclass(frozen=True)
class Implementation:
    """How to build the containers of one implementation.

    ``name`` is the stable identifier (JSON, ``--impl``); ``label`` is what the table
    prints. ``status`` is ``None`` when the implementation can be measured, otherwise
    the reason it cannot ("not installed", "n/a: not built").
    """

    name: str
    label: str
    status: str | None = None
    make: Factory | None = None
    make_ttl: TTLFactory | None = None
    memoize: Decorator | None = None
    #: What it can stand in for, installed or not: "mapping" (a bounded LRU or a
    #: baseline mapping), "ttl" (entries with a deadline), "memoize" (a decorator).
    roles: frozenset[str] = frozenset({"mapping"})
    #: ``False`` for a container that is not bounded (dict and the floor grow).
    bounded: bool = True
    #: Documented as unsafe without a lock held by the caller.
    thread_safe: bool = True
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        """``True`` when this implementation was imported and can be measured."""
        return self.status is None


def version_of(distribution: str) -> str | None:
    """The installed version of ``distribution``, or ``None``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _import(module: str) -> Any:
    """Import ``module`` or return ``None`` (any failure to import counts as absent)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _dict() -> Implementation:
    return Implementation(
        name="dict",
        label="dict",
        make=lambda n: {},
        bounded=False,
        notes={"set-new": "grows: plain dict insert", "hit-ttl": "no TTL: plain d[k]"},
    )


def _floor() -> Implementation:
    mod = _import("novacache._floor")
    if mod is None:
        return Implementation(name="floor", label="floor", status="n/a: not built")
    cls = mod.FloorMapping
    return Implementation(
        name="floor",
        label="floor",
        make=lambda n: cls(),
        bounded=False,
        notes={"set-new": "grows: dict insert", "hit-ttl": "no TTL: plain m[k]"},
    )


_ALL = frozenset({"mapping", "ttl", "memoize"})


def _novacache(module: str, name: str, label: str, missing: str) -> Implementation:
    mod = _import(module)
    if mod is None:
        return Implementation(name=name, label=label, status=missing, roles=_ALL)
    cls = mod.LocalCache
    memoize = mod.memoize
    return Implementation(
        name=name,
        label=label,
        make=lambda n: cls(maxsize=n),
        make_ttl=lambda n, ttl: cls(maxsize=n, ttl=ttl),
        memoize=lambda f, n: memoize(maxsize=n)(f),
        roles=_ALL,
    )


def _novacache_tinylfu() -> Implementation:
    mod = _import("novacache._core")
    if mod is None:
        return Implementation(
            name="novacache-tinylfu",
            label="novacache tinylfu",
            status="n/a: not built",
            roles=frozenset({"mapping", "ttl"}),
        )
    cls = mod.LocalCache
    return Implementation(
        name="novacache-tinylfu",
        label="novacache tinylfu",
        make=lambda n: cls(maxsize=n, policy="tinylfu"),
        make_ttl=lambda n, ttl: cls(maxsize=n, ttl=ttl, policy="tinylfu"),
        roles=frozenset({"mapping", "ttl"}),
        notes={"set-new": "admission: a new key may be rejected"},
    )


def _functools() -> Implementation:
    return Implementation(
        name="functools",
        label="functools.lru_cache",
        roles=frozenset({"memoize"}),
        memoize=lambda f, n: functools.lru_cache(maxsize=n)(f),
    )


def _cachetools() -> Implementation:
    mod = _import("cachetools")
    if mod is None:
        return Implementation(
            name="cachetools", label="cachetools", status="not installed", roles=_ALL
        )
    lru, ttl, cached = mod.LRUCache, mod.TTLCache, mod.cached
    return Implementation(
        name="cachetools",
        label=f"cachetools {version_of('cachetools') or ''}".strip(),
        make=lambda n: lru(maxsize=n),
        make_ttl=lambda n, t: ttl(maxsize=n, ttl=t),
        memoize=lambda f, n: cached(lru(maxsize=n))(f),
        thread_safe=False,
        roles=_ALL,
        notes={"threads": "not thread-safe: measured without a lock"},
    )


def _lru_dict() -> Implementation:
    mod = _import("lru")
    if mod is None:
        return Implementation(name="lru-dict", label="lru-dict", status="not installed")
    cls = mod.LRU
    return Implementation(
        name="lru-dict",
        label=f"lru-dict {version_of('lru-dict') or ''}".strip(),
        make=lambda n: cls(n),
    )


def _cachebox() -> Implementation:
    mod = _import("cachebox")
    if mod is None:
        return Implementation(name="cachebox", label="cachebox", status="not installed", roles=_ALL)
    lru, ttl, cached = mod.LRUCache, mod.TTLCache, mod.cached
    return Implementation(
        name="cachebox",
        label=f"cachebox {version_of('cachebox') or ''}".strip(),
        make=lambda n: lru(n),
        make_ttl=lambda n, t: ttl(n, t),
        # Note that cachebox.cached is used with its defaults (lock=True, copies of
        # mutable results): what a user of the decorator gets.
        memoize=lambda f, n: cached(lru(n))(f),
        roles=_ALL,
        notes={"hit-ttl": "TTLCache (FIFO order, not LRU)"},
    )


def discover() -> list[Implementation]:
    """Every implementation the table knows, in table order, usable or not."""
    return [
        _dict(),
        _floor(),
        _novacache("novacache._core", "novacache", "novacache (compiled)", "n/a: not built"),
        _novacache_tinylfu(),
        _novacache("novacache._local_py", "novacache-pure", "novacache (pure)", "not installed"),
        _functools(),
        _cachetools(),
        _lru_dict(),
        _cachebox(),
    ]
