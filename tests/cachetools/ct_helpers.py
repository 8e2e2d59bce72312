"""Helpers of the cachetools contract tests: the packages under test, a fake timer."""

from __future__ import annotations

import importlib
from types import ModuleType

PACKAGES = {"reference": "cachetools", "novacache": "novacache.cachetools"}


def load_package(name: str) -> ModuleType:
    """Import a cachetools-like package together with its keys and func submodules."""
    package = importlib.import_module(name)
    importlib.import_module(f"{name}.keys")
    importlib.import_module(f"{name}.func")
    return package


class FakeTimer:
    """A timer that only moves when told to (``tick``)."""

    def __init__(self, now: float = 0) -> None:
        self.now = now
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += seconds
