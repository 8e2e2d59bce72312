"""Pickles across cachetools and ``novacache.cachetools``: loading one's as the other's.

Both packages pickle a cache the same way: its class by module and name, then its
instance ``__dict__`` in cachetools 8.0.2's layout (``_Cache__data``,
``_LRUCache__order``, ``_TTLCache__links``, ...; see :mod:`._base`), which each
class's ``__setstate__`` takes. Keys made with keyword arguments carry the class
``keys._HashedTuple`` as separator, also by module and name. So a pickle made by one
package loads as the other's objects once the module names are mapped:

* :func:`load`, :func:`loads` and :class:`Unpickler` load a pickle written by
  cachetools (names under ``cachetools``) as ``novacache.cachetools`` objects; the real
  cachetools need not be installed. A pickle written by novacache loads unchanged.
  ``into="cachetools"`` maps the other way, for a process going back to cachetools
  (which must then be installed).
* :func:`install` makes ``import cachetools`` (and ``cachetools.keys``,
  ``cachetools.func``) give ``novacache.cachetools`` for the rest of the process, so
  that code which unpickles by itself (``shelve``, ``diskcache``, a framework) loads
  cachetools' pickles as ours without a change.

Note that a plain ``pickle.load`` of a cachetools pickle gives cachetools' own objects
where the real package is installed, and fails where it is not: use one of the above.
"""

from __future__ import annotations

import copyreg
import importlib
import io
import pickle
import sys
from typing import IO, Any, Literal

__all__ = ("Unpickler", "install", "load", "loads")

_CACHETOOLS = "cachetools"
_NOVACACHE = "novacache.cachetools"
# The submodules whose names pickles may hold (classes, key markers, func's caches).
_SUBMODULES = ("keys", "func")
# Names that differ between the packages, by (submodule, name).
_RENAMED_TO_CACHETOOLS = {("keys", "_KeywordsFollow"): "_HashedTuple"}

Target = Literal["novacache", "cachetools"]


def _split(module: str, package: str) -> str | None:
    """The submodule part of ``module`` ("" for the package itself) when it lies in
    ``package``; else None."""
    if module == package:
        return ""
    if module.startswith(package + "."):
        return module[len(package) + 1 :]
    return None


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (what protocols 0 and 1 call to make an instance),
    also for our classes on the compiled core, which ``object.__new__`` cannot make."""
    if base is object and isinstance(cls, type) and getattr(cls, "_novacache_hooks", None):
        return cls.__new__(cls)  # type: ignore[call-overload]
    return copyreg._reconstructor(cls, base, state)  # type: ignore[attr-defined]


class Unpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that loads cachetools' pickles as
    ``novacache.cachetools`` objects (``into="novacache"``, the default), or ours as
    cachetools' (``into="cachetools"``). Other names load as usual."""

    def __init__(self, file: IO[bytes], *, into: Target = "novacache", **kwargs: Any) -> None:
        if into not in ("novacache", "cachetools"):
            raise ValueError(f"into must be 'novacache' or 'cachetools', not {into!r}")
        super().__init__(file, **kwargs)
        self._into = into

    def find_class(self, module: str, name: str) -> Any:
        if self._into == "novacache":
            sub = _split(module, _CACHETOOLS)
            if sub is not None and sub in ("", *_SUBMODULES):
                module = _NOVACACHE + (f".{sub}" if sub else "")
            elif module in ("copyreg", "copy_reg") and name == "_reconstructor":
                return _reconstructor
        else:
            sub = _split(module, _NOVACACHE)
            if sub is not None:
                name = _RENAMED_TO_CACHETOOLS.get((sub, name), name)
                # Our private modules hold only what cachetools keeps in its package.
                module = _CACHETOOLS + (f".{sub}" if sub in _SUBMODULES else "")
        return super().find_class(module, name)


def load(file: IO[bytes], *, into: Target = "novacache", **kwargs: Any) -> Any:
    """``pickle.load(file)``, with cachetools' names mapped as :class:`Unpickler`
    maps them."""
    return Unpickler(file, into=into, **kwargs).load()


def loads(data: bytes, /, *, into: Target = "novacache", **kwargs: Any) -> Any:
    """``pickle.loads(data)``, with cachetools' names mapped as :class:`Unpickler`
    maps them."""
    return load(io.BytesIO(data), into=into, **kwargs)


def install() -> None:
    """Make ``cachetools``, ``cachetools.keys`` and ``cachetools.func`` name
    ``novacache.cachetools`` and its submodules for the rest of the process: every
    ``import cachetools`` then gives ours, and every unpickler loads cachetools'
    pickles as our objects.

    Call it before anything imports cachetools: once the real package is imported,
    its objects exist beside ours, and this raises ``RuntimeError``. Calling it again
    does nothing.
    """
    ours = importlib.import_module(_NOVACACHE)
    present = sys.modules.get(_CACHETOOLS)
    if present is ours:
        return
    if present is not None:
        raise RuntimeError(
            "the real cachetools is already imported: call "
            "novacache.cachetools.compat.install() before anything imports cachetools"
        )
    sys.modules[_CACHETOOLS] = ours
    for sub in _SUBMODULES:
        sys.modules[f"{_CACHETOOLS}.{sub}"] = importlib.import_module(f"{_NOVACACHE}.{sub}")
