"""``NOVACACHE_CACHETOOLS_IMPL`` selects the implementation when the package is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import novacache


def _import_with(value: str) -> subprocess.CompletedProcess[str]:
    src = Path(novacache.__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    env["NOVACACHE_CACHETOOLS_IMPL"] = value
    code = "import novacache.cachetools as c; print(c._implementation)"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("value", ["pure", "auto", ""])
def test_known_values_import(value: str) -> None:
    result = _import_with(value)
    assert result.returncode == 0, result.stderr
    # "auto" (the default) takes the compiled fast path whenever the core is active.
    expected = "compiled" if value != "pure" and novacache.compiled else "pure"
    assert result.stdout.strip() == expected


def test_auto_serves_lru_and_fifo_from_the_core() -> None:
    import novacache.cachetools as ct

    if not novacache.compiled:
        if os.environ.get("CI"):
            pytest.fail("CI is set but the compiled core is not active")
        pytest.skip("the compiled core is not built")
    if ct._implementation != "compiled":
        pytest.skip("NOVACACHE_CACHETOOLS_IMPL=pure in this run")
    from ct_helpers import core_serves

    for cls in (ct.LRUCache, ct.FIFOCache):
        cache = cls(3)
        assert core_serves(cache)
        assert isinstance(cache, ct.Cache)
    # What the core does not serve takes the general path, in the same class.
    sized = ct.LRUCache(3, getsizeof=len)
    assert not core_serves(sized)
    assert type(sized) is ct.LRUCache

    class Hooked(ct.LRUCache[int, int]):
        def popitem(self) -> tuple[int, int]:
            return super().popitem()

    assert not core_serves(Hooked(2))
    assert type(Hooked(2)) is Hooked
    assert issubclass(Hooked, ct.LRUCache)


def test_unknown_value_is_refused() -> None:
    result = _import_with("compiled-please")
    assert result.returncode != 0
    assert "NOVACACHE_CACHETOOLS_IMPL='compiled-please'" in result.stderr


def test_cached_on_a_fast_cache_uses_the_compiled_wrapper() -> None:
    import threading

    import novacache.cachetools as ct

    if ct._implementation != "compiled":
        if os.environ.get("CI") and novacache.compiled:
            pytest.fail("CI is set and the core is active, but the fast path is off")
        pytest.skip("no compiled fast path in this run")
    calls: list[int] = []

    def double(x: int, *, extra: int = 0) -> int:
        calls.append(x)
        return 2 * x + extra

    plain = ct.cached(ct.LRUCache(2))(double)
    counted = ct.cached(ct.LRUCache(2), info=True)(double)
    locked = ct.cached(ct.LRUCache(2), lock=threading.Lock())(double)
    sized = ct.cached(ct.LRUCache(2, getsizeof=lambda v: 1))(double)
    assert type(plain).__name__ == type(counted).__name__ == "_CachedCall"
    assert type(locked).__name__ != "_CachedCall"  # a lock: the general wrapper
    assert type(sized).__name__ != "_CachedCall"  # a pure cache: the general wrapper
    assert not hasattr(plain, "cache_info")
    assert plain(3) == plain(3) == 6
    assert plain(3, extra=1) == 7
    assert plain.cache[(3,)] == 6
    assert calls == [3, 3]
    assert counted(1) == counted(1) == 2
    assert counted.cache_info() == ct.CacheInfo(1, 1, 2, 1)
    counted.cache_clear()
    assert counted.cache_info() == ct.CacheInfo(0, 0, 2, 0)
    assert plain.__wrapped__ is double
    assert plain.__name__ == "double"
    assert (plain.cache_key, plain.cache_lock, plain.cache_condition) == (
        ct.keys.hashkey,
        None,
        None,
    )
