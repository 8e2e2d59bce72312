"""User subclasses, stated for cachetools and for our drop-in (the ``ct`` fixture).

Our drop-in serves an instance of a subclass on the compiled core unless it has a hook
or arguments the core does not serve, and on the general path otherwise; whichever it
takes, the instance is of the subclass and behaves as with cachetools.
"""

from __future__ import annotations

import copy
import pickle
from types import ModuleType
from typing import Any
from unittest import mock

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


# -- a subclass is itself, whichever path serves it (issue 18, item 9) -----------------

_SERVED = {
    "plain": {},
    "sized": {"getsizeof": len},
}


def _counting_subclass(ct: ModuleType) -> Any:
    """A subclass of ``ct.LRUCache`` that counts its ``__init__`` and
    ``__init_subclass__`` calls."""
    calls: dict[str, int] = {"init": 0, "init_subclass": 0}

    class Base(ct.LRUCache):  # type: ignore[misc,name-defined]
        def __init_subclass__(cls, **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)
            calls["init_subclass"] += 1

    class Counted(Base):
        def __init__(self, maxsize: Any, **kwargs: Any) -> None:
            calls["init"] += 1
            super().__init__(maxsize, **kwargs)

        def describe(self) -> str:
            return "original"

    return Counted, calls


@pytest.mark.parametrize(
    "args",
    [(3,), (3.5,), (0,), (3, len)],
    ids=["int", "float", "zero", "getsizeof"],
)
def test_subclass_instance_is_of_the_subclass(ct: ModuleType, args: tuple[Any, ...]) -> None:
    cls, calls = _counting_subclass(ct)
    assert calls["init_subclass"] == 1
    kwargs = {"getsizeof": args[1]} if len(args) > 1 else {}
    cache = cls(args[0], **kwargs)
    assert type(cache) is cls
    assert calls == {"init": 1, "init_subclass": 1}
    # Attributes added to the class later, and patches, are seen by the instance.
    cls.added_later = lambda self: "added"
    assert cache.added_later() == "added"
    with mock.patch.object(cls, "describe", return_value="patched"):
        assert cache.describe() == "patched"
    assert cache.describe() == "original"
    for clone in (copy.copy(cache), copy.deepcopy(cache)):  # (pickles: ct_fidelity_app)
        assert type(clone) is cls
    assert calls["init"] == 1


@pytest.mark.parametrize("kwargs", list(_SERVED.values()), ids=list(_SERVED))
def test_a_hook_patched_after_the_instance_was_made_is_called(
    ct: ModuleType, kwargs: dict[str, Any]
) -> None:
    class Plain(ct.LRUCache):  # type: ignore[misc,name-defined]
        pass

    cache = Plain(2, **kwargs)
    cache["a"] = "x"
    cache["b"] = "y"
    evicted: list[Any] = []
    original = Plain.popitem

    def popitem(self: Any) -> Any:
        item = original(self)
        evicted.append(item)
        return item

    with mock.patch.object(Plain, "popitem", popitem):
        cache["c"] = "z"
        assert evicted == [("a", "x")]
    cache["d"] = "w"
    assert evicted == [("a", "x")]
    assert list(cache.items()) == [("c", "z"), ("d", "w")]


def test_a_hook_set_on_the_instance_is_called(ct: ModuleType) -> None:
    cache = ct.TTLCache(2, 10, timer=lambda: 0)
    cache["a"] = 1
    seen: list[Any] = []
    cache.expire = lambda time=None: seen.append(time) or []
    cache["b"] = 2
    assert seen == [0]
    assert len(cache) == 2
    assert seen == [0, 0]
    assert sorted(cache.items()) == [("a", 1), ("b", 2)]


def test_a_missing_hook_from_a_mixin_added_later(ct: ModuleType) -> None:
    class Lookup(ct.LRUCache):  # type: ignore[misc,name-defined]
        pass

    cache = Lookup(2)
    with pytest.raises(KeyError):
        cache["k"]
    Lookup.__missing__ = lambda self, key: f"made {key}"
    assert cache["k"] == "made k"
    assert ct.cached(cache)(lambda x: x)("q") == "made ('q',)"
