"""Memoize hit: the whole call ``f(k)`` of a trivial one-argument function."""

from __future__ import annotations

from typing import Any

import pytest

from l1_support import KeySets, available, params
from novacache.benchmark.timing import compile_loop


def _identity(x: Any) -> Any:
    return x


@pytest.mark.parametrize("name", [*params("memoize"), pytest.param("bare-call", id="bare-call")])
def test_memoize_hit(benchmark: Any, keysets: KeySets, order: str, name: str) -> None:
    if name == "bare-call":
        f: Any = _identity  # the undecorated function: what the call itself costs
    else:
        decorate = available(name).memoize
        assert decorate is not None
        f = decorate(lambda x: x, keysets.n)
        for k in keysets.ints["insertion"]:
            f(k)
    keys = keysets.ints[order]
    benchmark.group = f"memoize hit, {order} order"
    benchmark.extra_info["ops"] = len(keys)
    benchmark(compile_loop("call"), f, keys, None)
