"""The serializers a codec can write with, and the registry of custom ones.

Each serializer has a one-byte id written into every frame, so a frame is always read
back with the serializer that wrote it, whatever the reading codec writes with.

===========  ====  ==================================================================
name          id   reads back
===========  ====  ==================================================================
(bytes)        0   exact ``bytes`` values, no serializer call
(str)          1   exact ``str`` values (UTF-8, lone surrogates kept), no call
``msgpack``    2   see :class:`MsgpackSerializer`; the default
``json``       3   JSON types only: tuples come back as lists, dict keys as str
``pickle``     4   anything picklable; only with a ``pickle_key`` (HMAC-SHA256)
custom      64+    whatever a :func:`register_serializer` serializer promises
===========  ====  ==================================================================
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import pickle
import threading
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import msgpack  # type: ignore[import-untyped]

from ..errors import ConfigurationError, SerializerRefused, SignatureMismatch
from ._framing import scan_msgpack
from .frame import SER_JSON, SER_MSGPACK, SER_PICKLE
from .msgpack_layout import (
    EXT_BIGINT,
    EXT_DATACLASS_MARK,
    EXT_DATE,
    EXT_DATETIME,
    EXT_DECIMAL,
    EXT_FROZENSET_MARK,
    EXT_SET_MARK,
    EXT_TIME,
    EXT_TIMEDELTA,
    EXT_TUPLE_MARK,
    EXT_UUID,
    HAS_OLD,
    upgrade,
)
from .nesting import MAX_DEPTH, check_json_nesting

__all__ = [
    "CUSTOM_MIN_ID",
    "JsonSerializer",
    "MsgpackSerializer",
    "PickleSerializer",
    "Serializer",
    "register_serializer",
    "registered_serializers",
]

CUSTOM_MIN_ID = 64


@runtime_checkable
class Serializer(Protocol):
    """What a serializer provides: a frame id, a name, and two functions.

    ``loads`` may raise any exception on bad input: the codec turns it into
    :class:`~novacache.errors.CorruptFrame`. ``dumps`` may raise any exception for a
    value it cannot encode: the codec turns it into
    :class:`~novacache.errors.SerializerRefused`.
    """

    id: int
    name: str

    def dumps(self, value: Any, /) -> bytes: ...

    def loads(self, data: bytes, /) -> Any: ...


# -- msgpack ------------------------------------------------------------------------------

_packb = msgpack.packb
_Packer = msgpack.Packer
_unpackb = msgpack.unpackb
_ExtType = msgpack.ExtType
_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1


class _Mark:
    """What the first element of an inline container decodes to, until the array
    completes and is turned into its type (see :mod:`.msgpack_layout`)."""

    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code

    def __repr__(self) -> str:
        return f"<novacache container mark {self.code}>"


_MARK_OBJECTS = {code: _Mark(code) for code in range(EXT_TUPLE_MARK, EXT_DATACLASS_MARK + 1)}
_TUPLE_MARK = _ExtType(EXT_TUPLE_MARK, b"")
_SET_MARK = _ExtType(EXT_SET_MARK, b"")
_FROZENSET_MARK = _ExtType(EXT_FROZENSET_MARK, b"")
_DATACLASS_MARK = _ExtType(EXT_DATACLASS_MARK, b"")


class MsgpackSerializer:
    """msgpack with extension types, so more than JSON's types come back as they went in.

    Round-trips, nested up to :data:`~novacache.codec.nesting.MAX_DEPTH` levels:
    ``None``, ``bool``, ``int`` (any size), ``float``, ``str``, ``bytes``, ``list``,
    ``dict`` (any hashable keys that are themselves supported), ``tuple``, ``set``,
    ``frozenset``, ``datetime.datetime`` / ``date`` / ``time`` / ``timedelta`` (a
    ``tzinfo`` comes back as a fixed-offset ``datetime.timezone``), ``uuid.UUID``,
    ``decimal.Decimal``, and instances of the dataclasses given to the constructor
    (restored field by field, without calling ``__init__`` or ``__post_init__``). The
    payload layout is in :mod:`novacache.codec.msgpack_layout`.

    Subclasses of ``dict``, ``list``, ``str``, ``bytes``, ``int`` and ``float`` (an
    ``IntEnum`` member, an ``OrderedDict``) come back as the base type; ``bytearray``
    and ``memoryview`` come back as ``bytes``. Any other type, and a dataclass that was
    not registered, is refused on encode: nothing is ever imported or constructed by
    name from a frame.
    """

    id = SER_MSGPACK
    name = "msgpack"

    def __init__(
        self,
        dataclasses: Iterable[type] = (),
        *,
        scan: Callable[[bytes, int], int] | None = None,
    ) -> None:
        self._by_type: dict[type, str] = {}
        self._by_name: dict[str, type] = {}
        for cls in dataclasses:
            self.register_dataclass(cls)
        self._default_fn = self._default
        self._local = threading.local()  # this thread's msgpack Packer (see dumps)
        self._ext_hook_fn = self._ext_hook
        self._list_hook_fn = self._list_hook
        # The nesting scan of novacache._codec, or its pure twin (PureCodec passes it).
        self._scan = scan if scan is not None else scan_msgpack

    def register_dataclass(self, cls: type) -> None:
        """Let instances of the dataclass ``cls`` round-trip (under its qualified name)."""
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ConfigurationError(f"{cls!r} is not a dataclass type")
        name = f"{cls.__module__}.{cls.__qualname__}"
        other = self._by_name.get(name)
        if other is not None and other is not cls:
            raise ConfigurationError(f"another dataclass is registered as {name}")
        self._by_type[cls] = name
        self._by_name[name] = cls

    def dumps(self, value: Any) -> bytes:
        """Return the msgpack bytes of ``value``; ``TypeError`` for an unsupported type,
        :class:`~novacache.errors.SerializerRefused` for a str that holds a lone
        surrogate (a str value stored alone, outside any container, keeps it: the codec
        writes it as UTF-8 with ``surrogatepass``, without msgpack)."""
        # A Packer of this thread's own, made once: msgpack.packb makes (and frees) one
        # per call, which costs more than packing a small value. It is taken out while
        # in use, so a re-entrant call on this thread (from a hook) makes its own; a
        # Packer empties its buffer when packing fails, so the next call starts clean.
        local = self._local
        packer = getattr(local, "packer", None)
        if packer is None:
            packer = _Packer(default=self._default_fn, strict_types=True)
        local.packer = None
        try:
            out: bytes = packer.pack(value)
        except UnicodeEncodeError as exc:
            # Note that msgpack reports the str it met, not the value it was given: name
            # the str, since the value may be a wrapper (the manager's envelope list).
            char = exc.object[exc.start] if isinstance(exc.object, str) else "?"
            raise SerializerRefused(
                f"msgpack cannot encode a str holding a lone surrogate (U+{ord(char):04X} "
                f"at index {exc.start}): its strings are UTF-8, which has no form for it"
            ) from None
        finally:
            local.packer = packer
        return out

    def loads(self, data: bytes) -> Any:
        """Return the value in ``data``; raises on anything that is not our msgpack, and
        on a payload nested deeper than :data:`~novacache.codec.nesting.MAX_DEPTH`."""
        found = self._scan(data, MAX_DEPTH)
        if not found:  # no tuple, set or dataclass: no list hook, no call per array
            return _unpackb(data, ext_hook=self._ext_hook_fn, strict_map_key=False)
        if found & HAS_OLD:
            data = upgrade(data, MAX_DEPTH)
        return _unpackb(
            data,
            ext_hook=self._ext_hook_fn,
            list_hook=self._list_hook_fn,
            strict_map_key=False,
        )

    def _pack(self, value: Any) -> bytes:
        out: bytes = _packb(value, default=self._default_fn, strict_types=True)
        return out

    def _default(self, obj: Any) -> Any:
        # Note that strict_types=True sends tuples and subclasses of the native types
        # here, instead of msgpack silently writing a tuple as a list.
        # Containers come back as a marked list that msgpack packs in place (see
        # msgpack_layout): never a nested packb, whose stack use would add up per level.
        tp = type(obj)
        if tp is tuple:
            return [_TUPLE_MARK, *obj]
        if tp is set:
            return [_SET_MARK, *obj]
        if tp is frozenset:
            return [_FROZENSET_MARK, *obj]
        if tp is dt.datetime:
            return _ExtType(EXT_DATETIME, obj.isoformat().encode())
        if tp is dt.date:
            return _ExtType(EXT_DATE, obj.isoformat().encode())
        if tp is dt.time:
            return _ExtType(EXT_TIME, obj.isoformat().encode())
        if tp is dt.timedelta:
            return _ExtType(EXT_TIMEDELTA, self._pack([obj.days, obj.seconds, obj.microseconds]))
        if tp is uuid.UUID:
            return _ExtType(EXT_UUID, obj.bytes)
        if tp is Decimal:
            return _ExtType(EXT_DECIMAL, str(obj).encode())
        if tp is int:  # beyond 64 bits: msgpack hands it to us (two's complement, LE)
            return _ExtType(
                EXT_BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True)
            )
        name = self._by_type.get(tp)
        if name is not None:
            out = [_DATACLASS_MARK, name]
            for f in dataclasses.fields(obj):
                out += (f.name, getattr(obj, f.name))
            return out
        if dataclasses.is_dataclass(obj):
            raise SerializerRefused(
                f"dataclass {tp.__qualname__} is not registered with this codec "
                "(pass it in Codec(dataclasses=[...]))"
            )
        return self._base_of(obj)

    def _base_of(self, obj: Any) -> Any:
        # Subclasses of supported types come back as the base type. Note that msgpack
        # calls ``default`` once per object, so what we return must be packable as is.
        if isinstance(obj, int):
            value = int(obj)
            return value if _INT_MIN <= value <= _UINT_MAX else self._default(value)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, bytes):
            return bytes(obj)
        if isinstance(obj, dict):
            return dict(obj)
        if isinstance(obj, list):
            return list(obj)
        if isinstance(obj, tuple):
            return self._default(tuple(obj))
        if isinstance(obj, frozenset):
            return self._default(frozenset(obj))
        if isinstance(obj, set):
            return self._default(set(obj))
        tp = type(obj)
        raise TypeError(f"msgpack cannot encode {tp.__module__}.{tp.__qualname__}")

    def _ext_hook(self, code: int, data: bytes) -> Any:
        mark = _MARK_OBJECTS.get(code)
        if mark is not None:
            if data:
                raise ValueError("a container mark carries data")
            return mark
        if code == EXT_DATETIME:
            return dt.datetime.fromisoformat(data.decode())
        if code == EXT_DATE:
            return dt.date.fromisoformat(data.decode())
        if code == EXT_TIME:
            return dt.time.fromisoformat(data.decode())
        if code == EXT_TIMEDELTA:
            # Note that its data is unpacked with no hooks: whatever it holds, this is
            # one more unpack, never one per level.
            days, seconds, micros = _unpackb(data)
            if not type(days) is type(seconds) is type(micros) is int:
                raise ValueError("a timedelta that is not three ints")
            return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
        if code == EXT_UUID:
            return uuid.UUID(bytes=data)
        if code == EXT_DECIMAL:
            return Decimal(data.decode())
        if code == EXT_BIGINT:
            return int.from_bytes(data, "little", signed=True)
        # The old nested containers (1, 2, 3, 10) never get here: the scan reported
        # them and loads() upgraded the payload.
        raise ValueError(f"unknown msgpack extension type {code}")

    def _list_hook(self, items: list[Any]) -> Any:
        # Called by the unpacker as each array completes, innermost first, so the
        # items of a marked array are already what they will be.
        if not items or type(items[0]) is not _Mark:
            return items
        code = items[0].code
        del items[0]  # the list is ours: cheaper than copying a slice
        if code == EXT_TUPLE_MARK:
            return tuple(items)
        if code == EXT_SET_MARK:
            return set(items)
        if code == EXT_FROZENSET_MARK:
            return frozenset(items)
        if not len(items) % 2:
            raise ValueError("a dataclass that is not [mark, name, field, value...]")
        name: Any = items[0]  # (mypy still sees the mark, deleted above)
        cls = self._by_name.get(name) if type(name) is str else None
        if cls is None:
            raise SerializerRefused(
                f"frame holds dataclass {name!r}, which is not registered with this codec"
            )
        return _restore_dataclass(cls, dict(zip(items[1::2], items[2::2], strict=True)))


def _restore_dataclass(cls: type, fields: Any) -> Any:
    if type(fields) is not dict:
        raise ValueError("dataclass fields are not a map")
    names = {f.name for f in dataclasses.fields(cls)}
    if set(fields) != names:
        raise ValueError(f"fields of {cls.__qualname__} do not match the frame")
    obj: Any = object.__new__(cls)
    for name, value in fields.items():
        # object.__setattr__ also restores frozen and slotted dataclasses.
        object.__setattr__(obj, name, value)
    return obj


# -- json ---------------------------------------------------------------------------------


class JsonSerializer:
    """Plain JSON (UTF-8). Only JSON's types round-trip: a tuple comes back as a list and
    non-string dict keys as strings; ``NaN`` and infinities are refused on encode."""

    id = SER_JSON
    name = "json"

    def dumps(self, value: Any) -> bytes:
        """Return the compact UTF-8 JSON of ``value``; raises for a non-JSON type."""
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
            "utf-8", "surrogatepass"
        )

    def loads(self, data: bytes) -> Any:
        """Return the value of the JSON document ``data``; ``ValueError`` when it nests
        deeper than :data:`~novacache.codec.nesting.MAX_DEPTH`."""
        check_json_nesting(data, MAX_DEPTH)
        return json.loads(data.decode("utf-8", "surrogatepass"))


# -- pickle -------------------------------------------------------------------------------

_PICKLE_CONTEXT = b"novacache.pickle.v1\x00"
_DIGEST_SIZE = 32


class PickleSerializer:
    """pickle, signed: the payload is ``HMAC-SHA256(key, context | pickle) | pickle``.

    :meth:`loads` checks the HMAC with :func:`hmac.compare_digest` before anything is
    unpickled, and raises :class:`~novacache.errors.SignatureMismatch` when it does not
    match: a frame written by anyone without the key is never unpickled. The signature
    does not bind the cache key; encryption (whose associated data includes it) does.
    """

    id = SER_PICKLE
    name = "pickle"

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
            raise ConfigurationError("a pickle_key is at least 16 bytes")
        self._key = bytes(key)

    def _sign(self, data: bytes) -> bytes:
        return hmac.new(self._key, _PICKLE_CONTEXT + data, hashlib.sha256).digest()

    def dumps(self, value: Any) -> bytes:
        """Return the signed pickle of ``value`` (highest protocol)."""
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return self._sign(data) + data

    def loads(self, data: bytes) -> Any:
        """Return the unpickled value, only after its HMAC has been verified."""
        if len(data) < _DIGEST_SIZE:
            raise SignatureMismatch("pickle payload carries no signature: refused")
        body = data[_DIGEST_SIZE:]
        if not hmac.compare_digest(data[:_DIGEST_SIZE], self._sign(body)):
            raise SignatureMismatch("pickle payload signature does not match: refused")
        return pickle.loads(body)

    def __repr__(self) -> str:
        return "PickleSerializer(key=<hidden>)"


# -- registry -----------------------------------------------------------------------------

_CUSTOM: dict[int, Serializer] = {}
_BUILTIN_NAMES = frozenset({"msgpack", "json", "pickle", "bytes", "str"})


def register_serializer(serializer: Serializer) -> None:
    """Register a custom serializer, so codecs can write with it by name and read its frames.

    Its ``id`` must be in 64..255 and its ``id`` and ``name`` unused. Registration is
    process-wide; a codec reads the custom frames whose serializer was registered when
    the codec was built.
    """
    if not isinstance(serializer, Serializer):
        raise ConfigurationError("a serializer has id, name, dumps and loads")
    sid, name = serializer.id, serializer.name
    if type(sid) is not int or not CUSTOM_MIN_ID <= sid <= 255:
        raise ConfigurationError(f"a custom serializer id is in {CUSTOM_MIN_ID}..255")
    if sid in _CUSTOM or name in _BUILTIN_NAMES or any(s.name == name for s in _CUSTOM.values()):
        raise ConfigurationError(f"serializer id {sid} or name {name!r} is already taken")
    _CUSTOM[sid] = serializer


def registered_serializers() -> dict[int, Serializer]:
    """Return the custom serializers registered so far, by id."""
    return dict(_CUSTOM)


def loaders_for(serializers: Iterable[Serializer]) -> dict[int, Callable[[bytes], Any]]:
    """Return the ``{id: loads}`` table of ``serializers``."""
    return {s.id: s.loads for s in serializers}
