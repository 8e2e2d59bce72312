"""The bulk-path helpers of the tiers: compiled (``ext/_tierkit.pyx``) or this twin.

``prefixed(prefix, names)``: ``[prefix + name for name in names]``, ``TypeError`` naming
the type of a key that is not ``str``; a key with a lone surrogate (no strict UTF-8)
comes as its ``bytes`` instead (UTF-8 with ``"surrogatepass"``, the tiers' one key
encoding, see :mod:`._keys`), so the client never has to encode it. ``encoded(prefix,
names)``: the same with a ``bytes`` prefix and every key as ``bytes``.
``present(names, values)``: the ``{name: value}`` pairs whose value is not ``None``. Both
twins behave the same; the compiled one is used unless ``NOVACACHE_NO_EXTENSIONS`` is set
or it is not built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from .._select import NO_EXTENSIONS

__all__ = ["encoded", "prefixed", "present"]


def _prefixed(prefix: str, names: list[str]) -> list[str | bytes]:
    try:
        keys = [prefix + name for name in names]
    except TypeError:
        # The first bad key in order decides the error, as in the compiled twin.
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"a key must be str, not {type(name).__name__}") from None
        raise
    out = cast("list[str | bytes]", keys)
    for i, key in enumerate(keys):
        if not key.isascii():
            try:
                key.encode()
            except UnicodeEncodeError:  # a lone surrogate: its bytes (see ._keys)
                out[i] = key.encode("utf-8", "surrogatepass")
    return out


def _encoded(prefix: bytes, names: list[str]) -> list[bytes]:
    try:
        return [prefix + name.encode() for name in names]
    except AttributeError:
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"a key must be str, not {type(name).__name__}") from None
        raise
    except UnicodeEncodeError:
        pass
    out = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"a key must be str, not {type(name).__name__}")
        out.append(prefix + name.encode("utf-8", "surrogatepass"))
    return out


def _present(names: list[str], values: list[bytes | None]) -> dict[str, bytes]:
    if len(values) != len(names):
        raise ValueError("names and values differ in length")
    return {name: value for name, value in zip(names, values, strict=True) if value is not None}


prefixed = _prefixed
encoded = _encoded
present = _present

if not TYPE_CHECKING and not NO_EXTENSIONS:
    try:
        from .._tierkit import encoded, prefixed, present
    except ImportError:  # a pure build
        pass
