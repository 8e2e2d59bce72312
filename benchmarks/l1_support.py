"""Helpers shared by the L1 benchmark suites: implementations, key lists, fill.

Imported by the test modules as ``l1_support`` (pytest puts this directory on
``sys.path``); the fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from novacache.benchmark.peers import Implementation, discover

IMPLEMENTATIONS: dict[str, Implementation] = {impl.name: impl for impl in discover()}
ORDERS = ("insertion", "random")


def params(role: str) -> list[Any]:
    """One pytest param per implementation that has ``role`` (installed or not)."""
    return [pytest.param(name, id=name) for name, i in IMPLEMENTATIONS.items() if role in i.roles]


def available(name: str) -> Implementation:
    """The implementation called ``name``; skips the test when it cannot be measured."""
    impl = IMPLEMENTATIONS[name]
    if not impl.available:
        pytest.skip(f"{impl.label}: {impl.status}")
    return impl


class KeySets:
    """Key lists of one size, each in insertion and in random (seeded shuffle) order."""

    def __init__(self, n: int, seed: int = 1234) -> None:
        rng = random.Random(seed)

        def orders(keys: list[Any]) -> dict[str, list[Any]]:
            shuffled = list(keys)
            rng.shuffle(shuffled)
            return {"insertion": keys, "random": shuffled}

        self.n = n
        self.ints = orders(list(range(n)))
        self.strs = orders([f"key:{i}" for i in range(n)])
        self.absent = orders(list(range(n, 2 * n)))


def fill(container: Any, keys: list[Any]) -> Any:
    """Store ``k -> k`` for every key, in order; returns the container."""
    for k in keys:
        container[k] = k
    return container
