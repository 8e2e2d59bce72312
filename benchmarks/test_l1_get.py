"""Lookups: ``c[k]`` hit (int and str keys, with and without a TTL), ``c.get(k)`` hit and miss."""

from __future__ import annotations

from typing import Any

import pytest

from l1_support import KeySets, available, fill, params
from novacache.benchmark.peers import LONG_TTL
from novacache.benchmark.timing import compile_loop


def _run(benchmark: Any, group: str, operation: str, container: Any, keys: list[Any]) -> None:
    benchmark.group = group
    benchmark.extra_info["ops"] = len(keys)
    loop = compile_loop(operation)  # a fresh code object per test, as in `novacache bench`
    benchmark(loop, container, keys, None)


@pytest.mark.parametrize("name", params("mapping"))
@pytest.mark.parametrize("keytype", ["int", "str"])
def test_hit(benchmark: Any, keysets: KeySets, order: str, keytype: str, name: str) -> None:
    impl = available(name)
    assert impl.make is not None
    keys = keysets.ints if keytype == "int" else keysets.strs
    cache = fill(impl.make(keysets.n), keys["insertion"])
    _run(benchmark, f"c[k] hit, {keytype} keys, {order} order", "getitem", cache, keys[order])


@pytest.mark.parametrize("name", params("mapping"))
def test_hit_ttl(benchmark: Any, keysets: KeySets, order: str, name: str) -> None:
    impl = available(name)
    assert impl.make is not None
    if impl.make_ttl is not None:
        cache = impl.make_ttl(keysets.n, LONG_TTL)
    elif not impl.bounded:
        cache = impl.make(keysets.n)  # dict and floor: their plain hit, as the reference
    else:
        pytest.skip(f"{impl.label}: no TTL support")
    fill(cache, keysets.ints["insertion"])
    _run(benchmark, f"c[k] hit with TTL, {order} order", "getitem", cache, keysets.ints[order])


@pytest.mark.parametrize("name", params("mapping"))
@pytest.mark.parametrize("outcome", ["hit", "miss"])
def test_get(benchmark: Any, keysets: KeySets, order: str, outcome: str, name: str) -> None:
    impl = available(name)
    assert impl.make is not None
    cache = fill(impl.make(keysets.n), keysets.ints["insertion"])
    keys = keysets.ints if outcome == "hit" else keysets.absent
    _run(benchmark, f"c.get(k) {outcome}, {order} order", "get", cache, keys[order])
