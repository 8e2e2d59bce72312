"""Helpers of the cachetools contract tests: the packages under test, a fake timer,
user subclasses."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

PACKAGES = {"reference": "cachetools", "novacache": "novacache.cachetools"}


def load_package(name: str) -> ModuleType:
    """Import a cachetools-like package together with its keys and func submodules."""
    package = importlib.import_module(name)
    importlib.import_module(f"{name}.keys")
    importlib.import_module(f"{name}.func")
    return package


def core_serves(cache: Any) -> bool:
    """Whether the compiled core serves ``cache`` (else the general path does)."""
    try:
        from novacache._core import _CachetoolsCore, _ct_mode
    except ImportError:
        return False
    return isinstance(cache, _CachetoolsCore) and _ct_mode(cache) is None


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


# -- user subclasses (tests/cachetools/test_ct_subclass.py) ----------------------------


def user_subclasses(ct: ModuleType) -> dict[str, Any]:
    """User subclasses of ``ct``'s classes, made once per package and published in
    this module under unique names, so pickle finds them."""
    made = _MADE.get(ct.__name__)
    if made is None:
        made = _MADE[ct.__name__] = _make_classes(ct)
    return made


_MADE: dict[str, dict[str, Any]] = {}


def _make_classes(ct: ModuleType) -> dict[str, Any]:
    class FixedTTL(ct.TTLCache):  # type: ignore[misc,name-defined]
        """Only __init__ is overridden, with zero-argument super()."""

        def __init__(self, maxsize: int, **kwargs: Any) -> None:
            kwargs.setdefault("timer", FakeTimer())
            super().__init__(maxsize, 10, **kwargs)
            self.note = "made"

        def describe(self) -> str:
            return f"{type(self).__name__}/{self.note}/{len(self)}"

    class CountingLRU(ct.LRUCache):  # type: ignore[misc,name-defined]
        """Overrides the eviction hook."""

        def __init__(self, maxsize: int, **kwargs: Any) -> None:
            super().__init__(maxsize, **kwargs)
            self.evicted: list[Any] = []

        def popitem(self) -> Any:
            item = super().popitem()
            self.evicted.append(item)
            return item

    class MissingMixin:
        def __missing__(self, key: Any) -> Any:
            return ("default", key)

    class MixedFIFO(MissingMixin, ct.FIFOCache):  # type: ignore[misc,name-defined]
        """A hook comes from a mixin placed before the cache class."""

    class SubFixedTTL(FixedTTL):
        def __init__(self, maxsize: int, **kwargs: Any) -> None:
            super().__init__(maxsize, **kwargs)
            self.note = "sub"

    for cls in (FixedTTL, CountingLRU, MixedFIFO, SubFixedTTL):
        cls.__qualname__ = cls.__name__ = f"{cls.__name__}_{ct.__name__.replace('.', '_')}"
        cls.__module__ = __name__
        globals()[cls.__name__] = cls
    return {
        "FixedTTL": FixedTTL,
        "CountingLRU": CountingLRU,
        "MixedFIFO": MixedFIFO,
        "SubFixedTTL": SubFixedTTL,
    }
