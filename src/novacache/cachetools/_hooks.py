"""Which of the cachetools subclass hooks a class overrides.

cachetools calls a few methods of its own instances where a subclass may override
them: ``popitem`` (to evict), ``getsizeof`` (to size an item), ``expire`` (before a
write, ``len``, ``repr``), ``__missing__`` (on a miss), and the mapping methods through
one another. The compiled core does that work in C, so it serves a cache only while
all of them are the library's own; otherwise the general path (the pure classes, which
call each hook exactly where cachetools does) serves it. This module is the one place
that tells a library definition from a user's.
"""

from __future__ import annotations

__all__ = ("HOOKS", "is_library", "overrides")

#: The names a subclass may override and that the general path honours.
HOOKS: tuple[str, ...] = (
    "popitem",
    "getsizeof",
    "expire",
    "__missing__",
    "__getitem__",
    "__setitem__",
    "__delitem__",
    "__contains__",
    "__iter__",
    "__len__",
    "get",
    "pop",
    "setdefault",
    "clear",
)

# Modules whose definitions are the library's (novacache's own, and the bases it builds
# on), not a user's override.
_LIBRARY_MODULES = frozenset(("builtins", "abc", "collections.abc", "typing"))


def is_library(module: str) -> bool:
    """Whether a definition made in ``module`` is the library's own."""
    return module in _LIBRARY_MODULES or module == "novacache" or module.startswith("novacache.")


def overrides(cls: type, name: str) -> bool:
    """Whether ``cls`` resolves ``name`` to a definition made outside the library.

    The first class in the MRO that defines ``name`` wins, as for attribute lookup. It
    is looked up now: a method assigned to a class after it was made counts.
    """
    for klass in cls.__mro__:
        if name in vars(klass):
            return not is_library(klass.__module__)
    return False
