"""Stores: a new key into a full cache (each set evicts one), and overwrite of a key."""

from __future__ import annotations

from typing import Any

import pytest

from l1_support import KeySets, available, fill, params
from novacache.benchmark.timing import compile_loop


@pytest.mark.parametrize("name", params("mapping"))
def test_set_new(benchmark: Any, keysets: KeySets, order: str, name: str) -> None:
    impl = available(name)
    make = impl.make
    assert make is not None
    keys = keysets.absent[order]
    loop = compile_loop("setitem")

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        # A fresh full cache for every round: the set of keys it holds changes.
        return (fill(make(keysets.n), keysets.ints["insertion"]), keys, None), {}

    benchmark.group = f"set new key into a full cache, {order} order"
    benchmark.extra_info["ops"] = len(keys)
    rounds = 1 if benchmark.disabled else 7
    benchmark.pedantic(loop, setup=setup, rounds=rounds, warmup_rounds=0 if rounds == 1 else 1)


@pytest.mark.parametrize("name", params("mapping"))
def test_overwrite(benchmark: Any, keysets: KeySets, order: str, name: str) -> None:
    impl = available(name)
    assert impl.make is not None
    cache = fill(impl.make(keysets.n), keysets.ints["insertion"])
    keys = keysets.ints[order]
    benchmark.group = f"overwrite, {order} order"
    benchmark.extra_info["ops"] = len(keys)
    benchmark(compile_loop("setitem"), cache, keys, object())
