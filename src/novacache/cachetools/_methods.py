"""The descriptor behind ``@cachedmethod``, and the wrappers it hands out.

Accessed on an instance, the descriptor builds a wrapper bound to that instance and
keeps it in the instance's ``__dict__`` under the method's name, so that later
lookups find the wrapper directly (and its statistics are per instance). A lookup
that reaches the descriptor without it being the class's own attribute (``super()``,
or the attribute deleted from the class) keeps the wrapper in a per-instance table
instead, keyed by descriptor, so that an override's wrapper is neither reused nor
replaced. Accessed on the class, it gives a shared callable taking the instance as
first argument.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Hashable
from typing import Any, cast

from ._memo import Statistics, discipline

__all__ = ("method_descriptor",)

# The name of the per-instance table, as in cachetools: pickles made by one load
# with the other.
_TABLE = "__cachetools_cachedmethods"


def _no_lock(obj: object) -> None:
    return None


class _BoundMethodWrapper:
    """A cached method bound to one instance; ``cache``, ``cache_lock`` and
    ``cache_condition`` are looked up on the instance at every access."""

    def __init__(
        self,
        obj: object,
        descriptor: _CachedMethodDescriptor,
        method: Callable[..., Any],
        cache: Callable[[Any], Any],
        key: Callable[..., Hashable],
        lock: Callable[[Any], Any] | None,
        condition: Callable[[Any], Any] | None,
        info: bool,
    ) -> None:
        functools.update_wrapper(cast(Any, self), method)
        self.__obj = obj
        self.__descriptor = descriptor
        self.__cache = cache
        self.__lock = lock if lock is not None else _no_lock
        self.__condition = condition if condition is not None else _no_lock
        self.cache_key = functools.partial(key, obj)
        self._memo_target = types.MethodType(method, obj)
        self._memo_counting = info
        self._memo_hits = self._memo_misses = 0
        self._memo_pending: set[Hashable] = set()

    @property
    def cache(self) -> Any:
        return self.__cache(self.__obj)

    @property
    def cache_lock(self) -> Any:
        return self.__lock(self.__obj)

    @property
    def cache_condition(self) -> Any:
        return self.__condition(self.__obj)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through the descriptor (the statistics start again from zero):
        # the wrapped method, a lock or a lambda may not pickle.
        return (self.__descriptor.__get__, (self.__obj,))

    def __repr__(self) -> str:
        wrapped = self.__wrapped__  # type: ignore[attr-defined]
        return f"<cachedmethod {wrapped!r} of {object.__repr__(self.__obj)}>"


_WRAPPER_TYPES: dict[tuple[type, bool], type[Any]] = {}


def _bound_wrapper(discipline_type: type, info: bool) -> type[Any]:
    """The wrapper class combining ``_BoundMethodWrapper``, a discipline and, with ``info``,
    the statistics."""
    known = _WRAPPER_TYPES.get((discipline_type, info))
    if known is not None:
        return known
    bases = (_BoundMethodWrapper, discipline_type) + ((Statistics,) if info else ())
    name = f"_CachedMethod{discipline_type.__name__}{'WithInfo' if info else ''}"
    made = type(name, bases, {"__module__": __name__})
    return _WRAPPER_TYPES.setdefault((discipline_type, info), made)


class _CachedMethodDescriptor:
    """What ``@cachedmethod`` puts in the class body."""

    __wrapped__: Callable[..., Any]

    def __init__(self, make_wrapper: Callable[[Any, _CachedMethodDescriptor], Any]) -> None:
        self.__owner: type | None = None
        self.__name: str | None = None
        self.__unbound: _UnboundCachedMethod | None = None
        self.__make_wrapper = make_wrapper

    def __set_name__(self, owner: type, name: str) -> None:
        if self.__name is None:
            self.__owner = owner
            self.__name = name
        elif name != self.__name:
            # The same name in another class is fine; two names would share state.
            raise TypeError(
                f"Cannot assign the same cachedmethod to two different names "
                f"({self.__name!r} and {name!r})."
            )

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        name = self.__name
        if name is None:
            if isinstance(obj, type):
                # Before Python 3.13, @classmethod calls __get__(cls, type(cls)) and
                # never forwards __set_name__: report what 3.13 reports.
                self()
            raise TypeError("Cannot use cachedmethod instance without calling __set_name__ on it")
        if obj is None:
            if self.__unbound is None:
                self.__unbound = _UnboundCachedMethod(self)
            return self.__unbound
        for klass in type(obj).__mro__:
            if name in vars(klass):
                found = vars(klass)[name]
                break
        else:
            found = None  # deleted from the class since
        if found is self:
            # Cache the wrapper under the method's name; should another thread have
            # done so first, its wrapper wins.
            wrapper = self.__make_wrapper(obj, self)
            try:
                return obj.__dict__.setdefault(name, wrapper)
            except (AttributeError, TypeError) as exc:
                raise _no_instance_dict(obj, name, exc) from None
        try:
            table = obj.__dict__.setdefault(_TABLE, {})
        except (AttributeError, TypeError) as exc:
            raise _no_instance_dict(obj, name, exc) from None
        wrapper = table.get(self)
        if wrapper is None:
            wrapper = table.setdefault(self, self.__make_wrapper(obj, self))
        return wrapper

    def __reduce__(self) -> tuple[Any, ...]:
        # By reference, like a function: wrappers and table keys then pickle too.
        return (_class_attribute, (self.__owner, self.__name))

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        # Reached when another decorator wraps the descriptor (@classmethod since
        # Python 3.13, @staticmethod, @property, functools.wraps, ...).
        raise TypeError(
            "A @cachedmethod descriptor cannot be called directly: @cachedmethod must "
            "be the outermost decorator, and cannot cache a class method, a static "
            "method or a property"
        )


def _no_instance_dict(obj: object, name: str, error: Exception) -> TypeError:
    """The error for an instance whose ``__dict__`` cannot hold the wrapper."""
    kind = type(obj).__name__
    if isinstance(error, AttributeError):  # no __dict__, e.g. with __slots__
        return TypeError(f"No '__dict__' attribute on {kind!r} instance to cache {name!r}")
    return TypeError(
        f"The '__dict__' attribute on {kind!r} instance does not support item "
        f"assignment for caching {name!r}"
    )


def _class_attribute(owner: type, name: str) -> Any:
    return vars(owner)[name]


class _UnboundCachedMethod:
    """A cached method looked up on its class: call it with the instance first.

    Deliberately not a function: ``unittest.mock.create_autospec()`` strips the
    receiver only from plain functions found on a class, so that a function here
    would keep ``self`` in an autospecced instance's signature.
    """

    def __init__(self, descriptor: _CachedMethodDescriptor) -> None:
        functools.update_wrapper(cast(Any, self), descriptor.__wrapped__)
        self.__descriptor = descriptor
        self.__receiver: str | None = None  # the method's first parameter's name

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__descriptor.__get__, (None,))

    def __repr__(self) -> str:
        return f"<cachedmethod {self.__wrapped__!r}>"  # type: ignore[attr-defined]

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        # An alias in another class body binds like the method itself.
        if obj is None:
            return self
        return self.__descriptor.__get__(obj)

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        if args:
            obj, *rest = args
            return self.__descriptor.__get__(obj)(*rest, **kwargs)
        obj = kwargs.pop(self.__receiver_name(), _ABSENT)
        if obj is _ABSENT:
            raise TypeError("Cannot call a @cachedmethod through its class without an instance")
        return self.__descriptor.__get__(obj)(**kwargs)

    def __receiver_name(self) -> str:
        # The instance may come by keyword, as for a plain function, when the
        # method's first parameter is not positional-only.
        if self.__receiver is None:
            self.__receiver = ""
            try:
                first = next(iter(inspect.signature(self).parameters.values()))
            except (ValueError, StopIteration):
                pass
            else:
                if first.kind is first.POSITIONAL_OR_KEYWORD:
                    self.__receiver = first.name
        return self.__receiver


_ABSENT: Any = object()


def method_descriptor(
    method: Callable[..., Any],
    cache: Callable[[Any], Any],
    key: Callable[..., Hashable],
    lock: Callable[[Any], Any] | None,
    condition: Callable[[Any], Any] | None,
    info: bool,
) -> _CachedMethodDescriptor:
    """The descriptor ``@cachedmethod(cache, key, lock, condition, info)`` makes."""
    if condition is not None and lock is None:
        lock = condition
    wrapper_type = _bound_wrapper(discipline(lock, condition), info)

    def make_wrapper(obj: Any, descriptor: _CachedMethodDescriptor) -> Any:
        return wrapper_type(obj, descriptor, method, cache, key, lock, condition, info)

    descriptor = _CachedMethodDescriptor(make_wrapper)
    functools.update_wrapper(descriptor, method)
    return descriptor
