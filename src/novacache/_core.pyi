# Stub of the compiled core (ext/_core.pyx): it has the same API as the pure-Python twin,
# which carries the annotations.
from ._local_py import LocalCache as LocalCache
from ._local_py import Memoized as Memoized
from ._local_py import default_weigher as default_weigher
from ._local_py import memoize as memoize

__all__ = ["LocalCache", "Memoized", "default_weigher", "memoize"]
