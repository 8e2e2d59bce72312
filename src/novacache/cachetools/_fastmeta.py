"""Where a user's subclass of a fast (compiled) cache class goes.

A subclass that overrides none of the hooks (:data:`._hooks.HOOKS`: ``popitem``,
``getsizeof``, ``expire``, ``__missing__``, the mapping methods) keeps the compiled
storage: overriding ``__init__`` to fix a ttl, or adding methods, costs nothing. A
subclass that overrides a hook is made on the pure class instead, which calls the hook
exactly where cachetools does.

A fast subclass still needs the pure class when it is constructed with arguments only
the pure class serves (a ``getsizeof``, a float ``maxsize``, a timer returning
``datetime``): its ``__init__`` then raises :class:`Unservable`, and
:meth:`FastMeta.__call__` builds the instance from the subclass's *pure twin*, the same
class body on the pure bases, made once when first needed. Functions of the body that
use zero-argument ``super()`` are re-made for the twin with their own ``__class__``
cell, so ``super()`` resolves on the twin's bases.

Both sides are registered as each other's virtual subclasses, so ``isinstance`` and
``issubclass`` answer as for one class.

Note that in that fallback a subclass's own ``__init__`` runs twice: first on the fast
instance, up to its call of the library ``__init__`` (which raises :class:`Unservable`),
then on the twin's instance. Code there before the ``super().__init__`` call with side
effects outside the instance (registering it somewhere) sees both.
"""

from __future__ import annotations

import copyreg
import types
from abc import ABCMeta
from typing import Any, SupportsIndex

from ._hooks import HOOKS

__all__ = ("FastMeta", "Unservable", "is_library_class")

_NEWOBJ = vars(copyreg)["__newobj__"]  # what object.__reduce_ex__ (protocol 2+) returns

# Classes whose definitions of a hook are the library's own (not a user's override).
_LIBRARY_MODULES = ("builtins", "abc", "collections.abc", "typing")


class Unservable(BaseException):
    """Raised by a fast class's ``__init__`` for a user's subclass whose arguments only
    the pure class serves; :meth:`FastMeta.__call__` catches it. A ``BaseException``,
    so that an ``except Exception`` in the user's ``__init__`` does not swallow it."""


def is_library_class(cls: type) -> bool:
    """Whether ``cls`` is one of the fast classes of the library itself."""
    return bool(vars(cls).get("_novacache_library", False))


def _defined_by_user(cls: type, name: str) -> bool:
    for klass in cls.__mro__:
        if name in vars(klass):
            module = klass.__module__
            return not (module.startswith("novacache.") or module in _LIBRARY_MODULES)
    return False


class FastMeta(ABCMeta):
    """The metaclass of the fast classes: places a user's subclass (see the module)."""

    #: On each fast library class: the pure class it stands for.
    _pure: type
    #: On a user's fast subclass: its body, to make the pure twin from.
    _novacache_recipe: tuple[Any, ...]
    #: On a user's fast subclass: a mixin overrides a hook, so instances are pure.
    _novacache_always_pure: bool

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any], **kw: Any) -> Any:
        if ns.get("_novacache_library") or not any(isinstance(b, FastMeta) for b in bases):
            return super().__new__(mcls, name, bases, ns, **kw)
        if any(hook in ns for hook in HOOKS):
            # Hooks are only honoured by the pure classes: make the class there.
            pure_bases = tuple(pure_twin(b) if isinstance(b, FastMeta) else b for b in bases)
            return ABCMeta(name, pure_bases, ns, **kw)
        recipe = (name, bases, dict(ns), kw, ns.get("__classcell__"))
        cls = super().__new__(mcls, name, bases, ns, **kw)
        cls._novacache_recipe = recipe
        # A hook overridden by a mixin base: every instance comes from the pure twin.
        # (The class itself must stay this one: its body's __class__ cell holds it.)
        cls._novacache_always_pure = any(_defined_by_user(cls, hook) for hook in HOOKS)
        return cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if is_library_class(cls):
            return super().__call__(*args, **kwargs)
        if cls._novacache_always_pure:
            return pure_twin(cls)(*args, **kwargs)
        try:
            return super().__call__(*args, **kwargs)
        except Unservable:
            return pure_twin(cls)(*args, **kwargs)


def pure_twin(cls: Any) -> type:
    """The pure class standing for a fast class: the library's own pure class for a
    library class, else the user subclass's twin (made once)."""
    if is_library_class(cls):
        return cls._pure  # type: ignore[no-any-return]
    twin = vars(cls).get("_novacache_twin")
    if twin is None:
        name, bases, ns, kw, cell = cls._novacache_recipe
        pure_bases = tuple(pure_twin(b) if isinstance(b, FastMeta) else b for b in bases)
        ns = _rebind_class_cell(ns, cell)
        ns["_novacache_fast"] = cls
        if "__reduce_ex__" not in ns:
            ns["__reduce_ex__"] = _twin_reduce_ex
        twin = ABCMeta(name, pure_bases, ns, **kw)
        cls.register(twin)
        cls._novacache_twin = twin
    return twin  # type: ignore[no-any-return]


def _twin_new(fast: Any, *args: Any) -> Any:
    """Unpickle an instance of a twin: the twin is found through its fast class (the
    one its module and name lead to)."""
    twin = pure_twin(fast)
    return twin.__new__(twin, *args)


def _twin_reduce_ex(self: Any, protocol: SupportsIndex) -> Any:
    """Pickle an instance of a twin under its fast class's name (protocol 2 and up)."""
    reduced = object.__reduce_ex__(self, protocol)
    if isinstance(reduced, tuple) and reduced[0] is _NEWOBJ:
        cls, *args = reduced[1]
        if cls is type(self):
            return (_twin_new, (cls._novacache_fast, *args), *reduced[2:])
    return reduced


def _rebind_class_cell(ns: dict[str, Any], cell: Any) -> dict[str, Any]:
    """A copy of a class body whose functions use a new ``__class__`` cell instead of
    ``cell`` (the one zero-argument ``super()`` reads), for a second class made from it."""
    out = dict(ns)
    if cell is None:
        return out
    new_cell = types.CellType()

    def rebind(obj: Any) -> Any:
        if isinstance(obj, types.FunctionType):
            closure = obj.__closure__
            if not closure or not any(c is cell for c in closure):
                return obj
            fn = types.FunctionType(
                obj.__code__,
                obj.__globals__,
                obj.__name__,
                obj.__defaults__,
                tuple(new_cell if c is cell else c for c in closure),
            )
            fn.__kwdefaults__ = obj.__kwdefaults__
            fn.__qualname__ = obj.__qualname__
            fn.__doc__ = obj.__doc__
            fn.__module__ = obj.__module__
            fn.__annotations__ = obj.__annotations__
            fn.__dict__.update(obj.__dict__)
            return fn
        if isinstance(obj, staticmethod):
            return staticmethod(rebind(obj.__func__))
        if isinstance(obj, classmethod):
            return classmethod(rebind(obj.__func__))
        if isinstance(obj, property):
            return property(rebind(obj.fget), rebind(obj.fset), rebind(obj.fdel), obj.__doc__)
        return obj

    for key, value in ns.items():
        out[key] = rebind(value)
    out["__classcell__"] = new_cell
    return out
