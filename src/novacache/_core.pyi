# Stub of the compiled core (ext/_core.pyx): it has the same API as the pure-Python twin,
# which carries the annotations.
from ._local_py import LocalCache as LocalCache
from ._local_py import Memoized as Memoized
from ._local_py import default_weigher as default_weigher
from ._local_py import memoize as memoize

__all__ = ["LocalCache", "Memoized", "default_weigher", "memoize"]

# Private, compiled only (novacache.cachetools' fast path).
def _cachetools_mode(cache: LocalCache, read_refreshes: bool) -> None: ...
def _insertion_snapshot(cache: LocalCache, what: int) -> list: ...  # type: ignore[type-arg]
def clock_info() -> tuple[str, float]: ...
