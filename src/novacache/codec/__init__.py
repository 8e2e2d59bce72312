"""The codec: what leaves the process, framed, compressed, encrypted and checked.

Every value stored in Redis (L2) or on disk (L3) is turned into one frame by
:meth:`Codec.encode` and read back by :meth:`Codec.decode`. The frame layout is
documented in :mod:`novacache.codec.frame`; the framing runs compiled
(``novacache._codec``) unless ``NOVACACHE_NO_EXTENSIONS`` is set or the extension is
missing, and then runs on its pure-Python twin, which writes the same bytes.

Guarantees:

- ``decode`` returns the value that was encoded, or raises a
  :class:`~novacache.errors.CodecError` subclass, for any bytes whatsoever.
- Nothing is unpickled unless the codec was given a ``pickle_key`` and the frame's HMAC
  matches it.
- With a :class:`KeyRing`, frames are AES-256-GCM encrypted; the header and the cache key
  are authenticated, so an edited frame, or a frame copied to another key, does not
  decrypt. Such a codec refuses unencrypted frames.
- Values and frames nest at most :data:`MAX_DEPTH` (128) levels: a deeper value is
  refused on encode (``SerializerRefused``), a deeper frame on decode (``CorruptFrame``),
  so neither call can exhaust the C stack of a thread (see
  :mod:`novacache.codec.nesting`).

The contract, its errors and an example: ``docs/codec.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import CodecError, ConfigurationError
from . import msgpack_layout
from ._framing import IMPORT_ERROR, FrameEngine, compiled, scan_msgpack
from .compression import compress as lz4_compress
from .compression import decompress as lz4_decompress
from .crypto import KeyRing
from .frame import MAX_PAYLOAD
from .frame import FrameEngine as PureFrameEngine
from .nesting import MAX_DEPTH
from .serializers import (
    JsonSerializer,
    MsgpackSerializer,
    PickleSerializer,
    Serializer,
    register_serializer,
    registered_serializers,
)

__all__ = [
    "IMPORT_ERROR",
    "MAX_DEPTH",
    "Codec",
    "CodecAPI",
    "KeyRing",
    "PureCodec",
    "Serializer",
    "compiled",
    "register_serializer",
]

DEFAULT_MAX_SIZE = 32 * 1024 * 1024
DEFAULT_COMPRESS_MIN = 512


if TYPE_CHECKING:
    _EngineBase = PureFrameEngine
else:
    _EngineBase = object


class CodecAPI(_EngineBase):
    """The public face of :class:`Codec`, over either implementation of the framing.

    Note that this is a mixin: ``Codec`` puts it before the selected ``FrameEngine``
    (compiled or pure), and ``PureCodec`` before the pure one, so ``encode`` and
    ``decode`` are the engine's own methods, with no Python frame in between.

    :param serializer: ``"msgpack"`` (default), ``"json"``, ``"pickle"`` (needs
        ``pickle_key``), the name of a registered serializer, or a serializer object.
        ``bytes`` and ``str`` values always skip it.
    :param compression: ``"lz4"`` (default) or ``None``. A payload of at least
        ``compress_min`` bytes is compressed, and kept compressed only if that made it
        smaller.
    :param keyring: a :class:`KeyRing` to encrypt every frame with AES-256-GCM.
    :param pickle_key: an HMAC key (16+ bytes) that lets this codec read, and with
        ``serializer="pickle"`` write, signed pickle frames.
    :param max_size: the largest serialized value, in bytes, accepted on encode
        (:class:`~novacache.errors.ValueTooLarge` above it) and on decode.
    :param dataclasses: dataclass types whose instances round-trip through msgpack.
    """

    __slots__ = ()

    def __init__(
        self,
        serializer: str | Serializer = "msgpack",
        compression: str | None = "lz4",
        compress_min: int = DEFAULT_COMPRESS_MIN,
        keyring: KeyRing | None = None,
        pickle_key: bytes | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        *,
        dataclasses: Iterable[type] = (),
        _nonce_source: Callable[[int], bytes] | None = None,
    ) -> None:
        if compression not in ("lz4", None):
            raise ConfigurationError(f"unknown compression {compression!r} (lz4 or None)")
        if type(compress_min) is not int or compress_min < 0:
            raise ConfigurationError("compress_min is an int >= 0")
        if type(max_size) is not int or not 0 < max_size <= MAX_PAYLOAD:
            raise ConfigurationError(f"max_size is an int in 1..{MAX_PAYLOAD}")
        if keyring is not None and not isinstance(keyring, KeyRing):
            raise ConfigurationError("keyring must be a novacache.KeyRing")
        # Note that PureCodec scans msgpack payloads with the pure twin of the scan too.
        pure = isinstance(self, PureFrameEngine)
        msgpack_ser = MsgpackSerializer(
            dataclasses, scan=msgpack_layout.scan if pure else scan_msgpack
        )
        readers: list[Serializer] = [msgpack_ser, JsonSerializer()]
        readers += registered_serializers().values()
        if pickle_key is not None:
            readers.append(PickleSerializer(pickle_key))
        writer = self._resolve(serializer, readers, pickle_key)
        if writer not in readers:
            readers.append(writer)
        self._serializer_name = writer.name
        self._compression = compression
        self._pickle = pickle_key is not None
        super().__init__(
            default_id=writer.id,
            dumps=writer.dumps,
            loaders={s.id: s.loads for s in readers},
            compress=lz4_compress if compression else None,
            decompress=lz4_decompress,
            compress_min=compress_min,
            max_size=max_size,
            keyring=keyring,
            nonce_source=_nonce_source,
        )
        self._keyring_ref = keyring
        self._settings = (compress_min, max_size)

    @staticmethod
    def _resolve(
        serializer: str | Serializer, readers: list[Serializer], pickle_key: bytes | None
    ) -> Serializer:
        if isinstance(serializer, str):
            if serializer == "pickle" and pickle_key is None:
                raise ConfigurationError(
                    'serializer="pickle" needs a pickle_key: pickle frames are HMAC-signed'
                )
            for candidate in readers:
                if candidate.name == serializer:
                    return candidate
            raise ConfigurationError(f"unknown serializer {serializer!r}")
        if not isinstance(serializer, Serializer):
            raise ConfigurationError("a serializer has id, name, dumps and loads")
        if serializer.id == PickleSerializer.id and not isinstance(serializer, PickleSerializer):
            raise ConfigurationError("serializer id 4 is reserved for signed pickle")
        if not 0 < serializer.id <= 255 or serializer.id == 1:
            raise ConfigurationError("a serializer id is in 2..255")
        return serializer

    def encode_many(self, items: Mapping[str, Any]) -> dict[str, bytes]:
        """Return ``{key: frame}`` for every ``key: value`` of ``items``.

        Raises on the first value that cannot be encoded; nothing is returned then.
        """
        encode = self.encode
        return {key: encode(key, value) for key, value in items.items()}

    def decode_many(
        self, frames: Mapping[str, bytes], *, skip_invalid: bool = False
    ) -> dict[str, Any]:
        """Return ``{key: value}`` for every ``key: frame`` of ``frames``.

        With ``skip_invalid``, a frame that raises :class:`~novacache.errors.CodecError`
        is left out of the result (a miss, for the caller); without it, the first such
        error is raised.
        """
        decode = self.decode
        if not skip_invalid:
            return {key: decode(key, frame) for key, frame in frames.items()}
        out: dict[str, Any] = {}
        for key, frame in frames.items():
            try:
                out[key] = decode(key, frame)
            except CodecError:
                continue
        return out

    def __repr__(self) -> str:
        ring = self._keyring_ref
        compress_min, max_size = self._settings
        return (
            f"Codec(serializer={self._serializer_name!r}, compression={self._compression!r}, "
            f"compress_min={compress_min}, max_size={max_size}, "
            f"keyring={ring!r}, pickle={self._pickle}, "
            f"compiled={not isinstance(self, PureFrameEngine)})"
        )

    def __reduce__(self) -> Any:
        raise TypeError("a Codec cannot be pickled (it may hold keys)")


class Codec(CodecAPI, FrameEngine):
    """Encodes values into frames for L2/L3 and decodes them back (see :class:`CodecAPI`
    for the parameters), on the compiled framing when it is available."""


class PureCodec(CodecAPI, PureFrameEngine):
    """:class:`Codec` on the pure-Python framing, whatever is installed; same frames."""
