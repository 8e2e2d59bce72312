"""Selects the implementation of the in-process cache: compiled core or pure-Python twin.

The compiled core (``novacache._core``, built from ``ext/_core.pyx``) is used when it
imports. The pure-Python twin (``novacache._local_py``) is used when
``NOVACACHE_NO_EXTENSIONS`` is set to a non-empty value other than ``0``, on
interpreters other than CPython, or when the extension is missing; ``IMPORT_ERROR``
then keeps the reason. Type checkers always see the twin, which carries the annotations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._select import NO_EXTENSIONS

__all__ = ["IMPORT_ERROR", "LocalCache", "Memoized", "compiled", "default_weigher", "memoize"]

IMPORT_ERROR: ImportError | None = None

if TYPE_CHECKING:
    from ._local_py import LocalCache, Memoized, default_weigher, memoize

    compiled: bool
else:
    compiled = False
    if not NO_EXTENSIONS:
        try:
            from ._core import LocalCache, Memoized, default_weigher, memoize

            compiled = True
        except ImportError as exc:  # the wheel was built pure, or the build failed
            IMPORT_ERROR = exc
    if not compiled:
        from ._local_py import LocalCache, Memoized, default_weigher, memoize
