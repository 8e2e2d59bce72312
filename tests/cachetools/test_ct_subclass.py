"""User subclasses, stated for cachetools and for our drop-in (the ``ct`` fixture).

Our drop-in keeps a subclass on the compiled core unless it overrides a hook, and falls
back to a pure twin of the subclass for arguments the core does not serve; whichever it
takes, a subclass must behave as it does with cachetools.
"""

from __future__ import annotations

import copy
import pickle
from types import ModuleType
from typing import Any

import pytest
from ct_helpers import user_subclasses as _classes


@pytest.mark.parametrize("sized", [False, True], ids=["unsized", "sized"])
def test_subclass_overriding_init_only(ct: ModuleType, sized: bool) -> None:
    cls = _classes(ct)["FixedTTL"]
    kwargs = {"getsizeof": lambda v: 1} if sized else {}
    cache = cls(2, **kwargs)
    assert isinstance(cache, cls)
    assert isinstance(cache, ct.TTLCache)
    assert cache.note == "made"
    assert cache.ttl == 10
    cache["a"] = 1
    cache["b"] = 2
    cache["c"] = 3
    assert sorted(cache) == ["b", "c"]
    assert cache.describe().endswith("/made/2")
    cache.timer.tick(10)
    assert "b" not in cache
    assert len(cache) == 0
    sub = _classes(ct)["SubFixedTTL"](3, **kwargs)
    assert isinstance(sub, cls)
    assert sub.note == "sub"


def test_subclass_pickles_and_copies_as_itself(ct: ModuleType) -> None:
    for kwargs in ({}, {"getsizeof": len}):
        cache = _classes(ct)["FixedTTL"](4, **kwargs)
        cache["ab"] = "xy"
        cache["cd"] = "zw"
        for clone in (pickle.loads(pickle.dumps(cache)), copy.copy(cache), copy.deepcopy(cache)):
            assert type(clone) is type(cache)
            assert dict(clone.items()) == {"ab": "xy", "cd": "zw"}
            assert clone.note == "made"
            assert repr(clone) == repr(cache)


def test_subclass_overriding_the_eviction_hook_sees_every_eviction(ct: ModuleType) -> None:
    cache = _classes(ct)["CountingLRU"](2)
    for k in range(5):
        cache[k] = k * 10
    _ = cache[3]
    cache[5] = 50
    assert cache.evicted == [(0, 0), (1, 10), (2, 20), (4, 40)]
    assert sorted(cache.items()) == [(3, 30), (5, 50)]


def test_hook_from_a_mixin_is_honoured(ct: ModuleType) -> None:
    cache = _classes(ct)["MixedFIFO"](2)
    assert cache["nope"] == ("default", "nope")
    assert isinstance(cache, ct.FIFOCache)


def test_an_exception_in_a_subclass_init_propagates(ct: ModuleType) -> None:
    class Broken(ct.LRUCache):  # type: ignore[misc,name-defined]
        def __init__(self, maxsize: Any) -> None:
            try:
                super().__init__(maxsize, getsizeof=lambda v: 1)
            except Exception:  # must not see novacache's internal fallback signal
                raise AssertionError("unexpected") from None
            raise RuntimeError("user init failed")

    with pytest.raises(RuntimeError, match="user init failed"):
        Broken(3)
