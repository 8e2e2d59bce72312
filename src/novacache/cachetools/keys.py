"""Key functions for memoizing decorators."""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ("hashkey", "methodkey", "typedkey", "typedmethodkey")


class _HashedTuple(tuple):  # type: ignore[type-arg]
    """Marks where the keyword arguments start in a key (cachetools' name and role).

    The class itself is the marker: it is unique, and pickles by reference, so a key
    keeps its meaning across processes. A key pickled by cachetools names
    ``cachetools.keys._HashedTuple``; :mod:`novacache.cachetools.compat` loads it as
    this class, so the loaded key equals (and hashes as) the key made here.
    """


#: The separator between positional and keyword arguments in a key.
_kwmark: tuple[Hashable, ...] = (_HashedTuple,)

# The marker's name in earlier development builds (pickles naming it still load).
_KeywordsFollow = _HashedTuple


def hashkey(*args: Hashable, **kwargs: Hashable) -> tuple[Hashable, ...]:
    """Return a cache key for the specified hashable arguments.

    The key is a plain tuple: the positional arguments, then, if there are keyword
    arguments, a marker and the ``(name, value)`` pairs sorted by name.
    """
    if not kwargs:
        return args
    return args + _kwmark + tuple(sorted(kwargs.items()))


def methodkey(self: object, /, *args: Hashable, **kwargs: Hashable) -> tuple[Hashable, ...]:
    """Return a cache key for use with cached methods (``self`` is not part of it)."""
    if not kwargs:
        return args
    return args + _kwmark + tuple(sorted(kwargs.items()))


def typedkey(*args: Hashable, **kwargs: Hashable) -> tuple[Hashable, ...]:
    """Return a typed cache key for the specified hashable arguments.

    As :func:`hashkey`, followed by the types of the keyword values and then of the
    positional arguments, so that ``f(1)`` and ``f(1.0)`` get distinct keys.
    """
    if not kwargs:
        return args + tuple(map(type, args))
    named = tuple(sorted(kwargs.items()))
    return (
        args + _kwmark + named + tuple(type(value) for _, value in named) + tuple(map(type, args))
    )


def typedmethodkey(self: object, /, *args: Hashable, **kwargs: Hashable) -> tuple[Hashable, ...]:
    """Return a typed cache key for use with cached methods (``self`` is not part)."""
    return typedkey(*args, **kwargs)
