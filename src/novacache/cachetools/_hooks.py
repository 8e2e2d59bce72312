"""Which of the cachetools subclass hooks a class overrides.

A compiled core may stand in for the storage of an exact, library-defined cache class,
but only while every hook a user can override still is the library's own: a subclass
that overrides ``popitem`` (the eviction hook), ``getsizeof``, ``expire`` or
``__missing__``, or any mapping method, must take the general path, which calls the
hook exactly where cachetools does. This module is the one place that decides it.
"""

from __future__ import annotations

__all__ = ("HOOKS", "overridden_hooks")

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

_PACKAGE = __name__.rpartition(".")[0]


def _is_ours(module: str) -> bool:
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")


def _overrides(cls: type, name: str) -> bool:
    """Whether ``cls`` resolves ``name`` to a definition made outside this package.

    The first class in the MRO that defines ``name`` wins, as for attribute lookup;
    a definition in one of our own modules is the library's, anything else is a
    user's override.
    """
    for klass in cls.__mro__:
        if name in vars(klass):
            return not _is_ours(klass.__module__)
    return False


def overridden_hooks(cls: type) -> frozenset[str]:
    """The names in :data:`HOOKS` that ``cls`` overrides.

    Note that this is decided when the class is created: assigning a method to the
    class afterwards is not seen (cachetools gives no such guarantee either).
    """
    return frozenset(name for name in HOOKS if _overrides(cls, name))
