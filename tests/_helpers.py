"""Helpers shared by the L1 tests (imported by conftest and by test modules)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import pytest

IMPLEMENTATIONS = {"compiled": "novacache._core", "pure": "novacache._local_py"}


def load_impl(name: str) -> ModuleType:
    """Import the implementation ``name`` ("compiled" or "pure").

    When it does not import: skip locally, but fail when ``CI`` is set (CI must never
    silently run only the twin).
    """
    module = IMPLEMENTATIONS[name]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {module} does not import: {exc!r}", pytrace=False)
        pytest.skip(f"{module} is not built: {exc}")


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a child interpreter that must import novacache from where
    this process did (the installed wheel in CI, ``src/`` in a development tree)."""
    import sys

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.update(overrides)
    return env


class FakeTimer:
    """A timer the test advances by hand (``tick``): expiry tests never sleep()."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds

    def __reduce__(self) -> tuple[type[FakeTimer], tuple[float]]:
        return (FakeTimer, (self.now,))


ABSENT: Any = object()


def check_invariants(c: Any, *, exact_weights: bool = True) -> None:
    """Assert the invariants every operation leaves intact (call on a quiescent cache).

    Ends with ``expire()``, after which ``len(keys()) == len(c)``.
    """
    if c.maxsize is not None:
        assert len(c) <= c.maxsize
    if c.maxbytes is not None:
        assert c.currbytes <= c.maxbytes
    assert c.currsize == len(c)
    assert len(c.keys()) <= len(c)
    for k, v in c.items():
        assert k in c
        assert c.peek(k, ABSENT) is v
    c.expire()
    items = c.items()
    assert len(items) == len(c) == len(c.keys()) == len(c.values())
    assert [k for k, _ in items] == c.keys() == list(c)
    if c.weigher is None:
        assert c.currbytes == 0
    elif exact_weights:
        assert c.currbytes == sum(c.weigher(k, v) for k, v in items)
    stats = c.stats
    assert stats.currsize == len(c)
    assert stats.currbytes == c.currbytes
    assert min(stats.hits, stats.misses, stats.evictions, stats.expirations) >= 0
