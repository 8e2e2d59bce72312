"""The bulk-path helpers of the tiers: compiled (``ext/_tierkit.pyx``) or this twin.

``prefixed(prefix, names)``: ``[prefix + name for name in names]``, ``TypeError`` naming
the type of a key that is not ``str``; a key with a lone surrogate (no strict UTF-8)
comes as its ``bytes`` instead (UTF-8 with ``"surrogatepass"``, the tiers' one key
encoding, see :mod:`._keys`), so the client never has to encode it. ``encoded(prefix,
names)``: the same with a ``bytes`` prefix and every key as ``bytes``.
``present(names, values)``: the ``{name: value}`` pairs whose value is not ``None``.
``raw_key(prefix, key, limit)``: ``prefix + key`` in UTF-8 (a lone surrogate passed
through), ``TypeError`` for a key that is not ``str``, ``EntryTooLarge`` past ``limit``
bytes (Redis' bulk limit by default).
``ttl_ms(ttl)``: the ``PX`` milliseconds of a TTL in seconds (see :func:`_ttl_ms`).
``Histogram(bounds)`` and ``Timed(fn, histogram)``: raw latency counts of tier calls and
a tier method timed into them (novacache.ops.metrics; see :class:`_Histogram`). Both
twins behave the same; the compiled one is used unless ``NOVACACHE_NO_EXTENSIONS`` is set
or it is not built.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from .._counters import ThreadArrays
from .._select import NO_EXTENSIONS
from ..errors import EntryTooLarge
from ._checks import MAX_TTL

__all__ = [
    "MAX_BULK_BYTES",
    "Histogram",
    "Timed",
    "encoded",
    "prefixed",
    "present",
    "raw_key",
    "ttl_ms",
]

#: Redis' default ``proto-max-bulk-len``: no key or value may be longer.
MAX_BULK_BYTES = 512 * 1024 * 1024


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


def _raw_key(prefix: bytes, key: str, limit: int = MAX_BULK_BYTES) -> bytes:
    if type(key) is not str and not isinstance(key, str):
        raise TypeError(f"a key must be str, not {type(key).__name__}")
    try:
        raw = prefix + key.encode()
    except UnicodeEncodeError:
        raw = prefix + key.encode("utf-8", "surrogatepass")
    if len(raw) > limit:
        raise EntryTooLarge(len(raw), limit)  # the key alone
    return raw


def _ttl_ms(ttl: float | None) -> int | None:
    """Seconds to the millisecond count for ``PX``; ``None``, ``inf`` and any TTL above
    :data:`~novacache.tiers._checks.MAX_TTL` (100 years) mean no expiry.

    Any real number is accepted (int, float, Fraction, Decimal); ``bool``, ``str`` and
    ``bytes`` are a ``TypeError``; ``<= 0`` and NaN a ``ValueError``. A positive TTL
    never rounds down to 0 ms ("no expiry" would be the opposite of what was asked).
    """
    if ttl is None:
        return None
    if type(ttl) is not float and type(ttl) is not int:
        if isinstance(ttl, (bool, str, bytes, bytearray, complex)):
            raise TypeError(f"ttl must be a number of seconds or None, not {type(ttl).__name__}")
        try:
            ttl = float(ttl)
        except OverflowError:  # a Fraction or Decimal beyond the floats
            ttl = math.inf if ttl > 0 else -math.inf
        except (TypeError, ValueError):
            raise TypeError(
                f"ttl must be a number of seconds or None, not {type(ttl).__name__}"
            ) from None
    if not ttl > 0:  # also NaN
        raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")
    if ttl > MAX_TTL:
        return None
    ms = round(ttl * 1000)
    return ms if ms > 0 else 1


class _Histogram(ThreadArrays):
    """Raw latency counts: one per upper bound (``bounds``, seconds, increasing, > 0),
    then +Inf, and the sum of the seconds. Each thread counts into an array of its own
    (``x[i] += 1`` on a shared list can lose an update between threads), a read sums them
    (:class:`novacache._counters.ThreadArrays`, as the counters do).
    """

    __slots__ = ("__weakref__", "_bounds")

    def __init__(self, bounds: Sequence[float]) -> None:
        values = [float(b) for b in bounds]
        if (
            not values
            or any(not b > 0 for b in values)
            or any(not b > a for a, b in itertools.pairwise(values))
        ):
            raise ValueError("buckets must be increasing upper bounds > 0 (seconds)")
        self._bounds = tuple(values)
        super().__init__(len(values) + 2)

    def record(self, seconds: float) -> None:
        """Count one call that took ``seconds``."""
        try:
            array: list[float] = self._local.array
        except AttributeError:
            array = self._register()
        bounds, i, n = self._bounds, 0, len(self._bounds)
        while i < n and seconds > bounds[i]:
            i += 1
        array[i] += 1
        array[-1] += seconds

    def snapshot(self) -> tuple[list[int], float]:
        """``([count per bucket, then +Inf], sum of seconds)``: not cumulative."""
        out = self._sums()
        return [int(c) for c in out[:-1]], float(out[-1])


def _Timed(wrapped: Callable[..., Any], histogram: _Histogram) -> Callable[..., Any]:
    """``wrapped`` with each call timed into ``histogram`` (the same arguments, result
    and exceptions; a failed call is timed too); the result's ``wrapped`` and
    ``histogram`` attributes are the two arguments. (A closure, not a class with
    ``__call__``: a call costs one Python frame less.)"""
    if not isinstance(histogram, _Histogram):
        raise TypeError("histogram must be a Histogram")
    local, make, bounds = histogram._local, histogram._register, histogram._bounds
    n, clock = len(bounds), time.monotonic

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return wrapped(*args, **kwargs)
        finally:
            seconds = clock() - t0
            try:
                array = local.array
            except AttributeError:
                array = make()
            i = 0
            while i < n and seconds > bounds[i]:
                i += 1
            array[i] += 1
            array[-1] += seconds

    timed.wrapped = wrapped  # type: ignore[attr-defined]
    timed.histogram = histogram  # type: ignore[attr-defined]
    return timed


prefixed = _prefixed
encoded = _encoded
present = _present
raw_key = _raw_key
ttl_ms = _ttl_ms
Histogram = _Histogram
Timed = _Timed

if not TYPE_CHECKING and not NO_EXTENSIONS:
    try:
        from .._tierkit import Histogram, Timed, encoded, prefixed, present, raw_key, ttl_ms
    except ImportError:  # a pure build
        pass
