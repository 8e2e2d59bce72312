"""The metaclass of the fast classes (``LRUCache``, ``FIFOCache``, ``TTLCache`` on the
compiled core) and of their users' subclasses.

A user's subclass of a fast class is an ordinary subclass: its instances are of it, its
``__init__`` and ``__init_subclass__`` run once, and whatever is set on it later is
seen. Which path serves an instance, the core or the general one, is decided per
instance (see :mod:`._fast`). This metaclass only keeps that decision current and the
class's face as cachetools':

* a hook (:data:`._hooks.HOOKS`) set on or deleted from such a class after it was made
  (``Sub.popitem = ...``, ``mock.patch.object(Sub, "expire", ...)``) tells the core,
  so that instances it serves check their class again at their next operation;
* ``dir()`` of the class leaves out the names of ``LocalCache``'s own API, which the
  class hides (see :class:`Absent`), as ``hasattr`` does.
"""

from __future__ import annotations

from abc import ABCMeta
from typing import Any

from .._core import _ct_hooks_changed
from ._hooks import HOOKS

__all__ = ("Absent", "FastMeta")

_HOOK_NAMES = frozenset(HOOKS)


class Absent:
    """An attribute of ``LocalCache`` that cachetools' class does not have: reading it
    raises ``AttributeError``, so ``hasattr`` and duck typing answer as with cachetools
    (code that probes ``hasattr(cache, "expire")`` for a TTL cache must not mistake an
    ``LRUCache`` for one)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        raise AttributeError(
            f"{(owner or type(obj)).__name__!r} object has no attribute {self._name!r}"
        )


def absent(cls: type, name: str) -> bool:
    """Whether ``name`` is hidden on ``cls`` (resolves to an :class:`Absent`)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return isinstance(vars(klass)[name], Absent)
    return False


class FastMeta(ABCMeta):
    """See the module."""

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in _HOOK_NAMES:
            _ct_hooks_changed()

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        if name in _HOOK_NAMES:
            _ct_hooks_changed()

    def __dir__(cls) -> list[str]:
        return [name for name in super().__dir__() if not absent(cls, name)]
