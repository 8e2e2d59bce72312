"""The frame format, and the pure-Python twin of the compiled framing (``ext/_codec.pyx``).

Both implementations of :class:`FrameEngine` produce byte-identical frames and raise the
same errors; the test suite runs against both. Every multi-byte integer is little-endian.

Unencrypted frame (``flags & ENCRYPTED == 0``)::

    0      2        3      4       5       6            10          10+n        18+n
    | "NC" | version | ser | flags | key_id | length n  | payload ... | xxh3-64   |
    | magic|  = 1    | id  |       |  = 0   | (u32)     |  n bytes    | (u64)     |

Encrypted frame (``flags & ENCRYPTED``)::

    0 ........ 10        22                      10+n
    | header   | nonce   | ciphertext + GCM tag |      n = 12 + len(plaintext) + 16
               | 12 B    |                      |

- ``ser``: the serializer id (``SER_BYTES``, ``SER_STR``, ``SER_MSGPACK``, ``SER_JSON``,
  ``SER_PICKLE``, or a registered custom id in 64..255).
- ``flags``: ``COMPRESSED`` (the payload is ``uncompressed size (u32) | lz4 block``,
  see :mod:`novacache.codec.compression`; the size is checked against ``max_size``
  before anything is decompressed) and ``ENCRYPTED`` (compression comes first). Any
  other bit set means a newer format: the frame is refused with
  :class:`~novacache.errors.UnknownFormat`.
- ``key_id``: the :class:`~novacache.codec.crypto.KeyRing` id of the AES-256-GCM key, 0
  when the frame is not encrypted.
- The checksum is xxh3-64 of the payload seeded with the 8 header bytes after the magic,
  so it covers the header and the payload in one pass without copying them together.
  Encrypted frames carry no checksum: the GCM tag authenticates the header (as associated
  data, together with the UTF-8 cache key) and the ciphertext.
- A frame whose version byte is not 1 is refused with ``UnknownFormat`` as soon as the
  first three bytes are read: a future version may change everything after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from xxhash import xxh3_64_intdigest

from ..errors import (
    ChecksumMismatch,
    CodecError,
    CorruptFrame,
    DecryptionFailed,
    FrameTooLarge,
    SerializerRefused,
    UnknownFormat,
    ValueTooLarge,
)
from .nesting import check_nesting

if TYPE_CHECKING:
    from .crypto import KeyRing

__all__ = [
    "COMPRESSED",
    "ENCRYPTED",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_PAYLOAD",
    "NONCE_SIZE",
    "SER_BYTES",
    "SER_JSON",
    "SER_MSGPACK",
    "SER_PICKLE",
    "SER_STR",
    "TAG_SIZE",
    "TRAILER_SIZE",
    "FrameEngine",
    "pack_plain",
]

MAGIC = b"NC"
FORMAT_VERSION = 1
HEADER_SIZE = 10
TRAILER_SIZE = 8
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_PAYLOAD = 0xFFFFFFFF - NONCE_SIZE - TAG_SIZE

COMPRESSED = 0x01
ENCRYPTED = 0x02
_KNOWN_FLAGS = COMPRESSED | ENCRYPTED

SER_BYTES = 0
SER_STR = 1
SER_MSGPACK = 2
SER_JSON = 3
SER_PICKLE = 4

_VERSION_BYTE = bytes((FORMAT_VERSION,))


def _header(ser: int, flags: int, key_id: int, length: int) -> bytes:
    return b"".join(
        (MAGIC, _VERSION_BYTE, bytes((ser, flags, key_id)), length.to_bytes(4, "little"))
    )


def _seed(header: bytes) -> int:
    return int.from_bytes(header[2:HEADER_SIZE], "little")


def pack_plain(ser: int, flags: int, payload: bytes) -> bytes:
    """Return an unencrypted frame around ``payload`` exactly as the encoder writes it.

    No serializer, compressor or size limit is applied: this is the bare framing, for
    tools and tests that need to build a frame by hand.
    """
    if not 0 <= ser <= 255 or not 0 <= flags <= 255:
        raise ValueError("ser and flags are bytes (0..255)")
    if len(payload) > MAX_PAYLOAD:
        raise ValueTooLarge(len(payload), MAX_PAYLOAD)
    header = _header(ser, flags, 0, len(payload))
    return b"".join(
        (header, payload, xxh3_64_intdigest(payload, _seed(header)).to_bytes(8, "little"))
    )


class FrameEngine:
    """Turns values into frames and back, given the pieces a :class:`Codec` picked.

    This is the machinery under :class:`novacache.Codec`; build a ``Codec`` rather than
    this class. ``loaders`` maps each serializer id this engine will read to its
    ``loads``; ``dumps`` writes every value that is not exactly ``bytes`` or ``str`` under
    ``default_id``. ``compress_min < 0`` turns compression off. ``nonce_source(12)``
    returns the nonce of each encrypted frame (``os.urandom`` unless a test injects one).
    """

    def __init__(
        self,
        *,
        default_id: int,
        dumps: Callable[[Any], bytes],
        loaders: dict[int, Callable[[bytes], Any]],
        compress: Callable[[bytes], bytes] | None,
        decompress: Callable[[bytes], bytes] | None,
        compress_min: int,
        max_size: int,
        keyring: KeyRing | None,
        nonce_source: Callable[[int], bytes] | None = None,
    ) -> None:
        if not 0 <= default_id <= 255:
            raise ValueError("default_id is a byte (0..255)")
        if not 0 <= max_size <= MAX_PAYLOAD:
            raise ValueError(f"max_size must be within 0..{MAX_PAYLOAD}")
        self._default_id = default_id
        self._dumps = dumps
        self._loaders = dict(loaders)
        self._compress = compress
        self._decompress = decompress
        self._compress_min = compress_min if compress is not None else -1
        self._max_size = max_size
        self._keyring = keyring
        self._nonce_source = nonce_source if nonce_source is not None else os.urandom

    def encode(self, key: str, value: Any) -> bytes:
        """Return the frame of ``value`` stored under ``key``.

        ``bytes`` and ``str`` values skip the serializer. Raises
        :class:`~novacache.errors.SerializerRefused` when the serializer cannot encode
        the value or it nests deeper than
        :data:`~novacache.codec.nesting.MAX_DEPTH`, and
        :class:`~novacache.errors.ValueTooLarge` above ``max_size``.
        """
        if type(key) is not str:
            raise TypeError(f"a cache key is a str, got {type(key).__name__}")
        tp = type(value)
        payload: bytes
        if tp is bytes:
            payload = value
            ser = SER_BYTES
        elif tp is str:
            payload = value.encode("utf-8", "surrogatepass")
            ser = SER_STR
        else:
            try:
                check_nesting(value)
                payload = self._dumps(value)
            except CodecError:
                raise
            except Exception as exc:
                raise SerializerRefused(
                    f"the serializer cannot encode a {tp.__name__}: {exc}"
                ) from exc
            if type(payload) is not bytes:
                payload = bytes(payload)
            ser = self._default_id
        n = len(payload)
        if n > self._max_size:
            raise ValueTooLarge(n, self._max_size)
        flags = 0
        if self._compress is not None and 0 <= self._compress_min <= n:
            packed = self._compress(payload)
            if type(packed) is not bytes:
                packed = bytes(packed)
            if len(packed) < n:
                payload = packed
                n = len(packed)
                flags = COMPRESSED
        ring = self._keyring
        if ring is not None:
            key_id, aead = ring._active
            header = _header(ser, flags | ENCRYPTED, key_id, NONCE_SIZE + n + TAG_SIZE)
            nonce = self._nonce_source(NONCE_SIZE)
            if type(nonce) is not bytes or len(nonce) != NONCE_SIZE:
                raise CodecError("the nonce source must return 12 bytes")
            sealed = aead.encrypt(nonce, payload, header + key.encode("utf-8", "surrogatepass"))
            return b"".join((header, nonce, sealed))
        header = _header(ser, flags, 0, n)
        return b"".join(
            (header, payload, xxh3_64_intdigest(payload, _seed(header)).to_bytes(8, "little"))
        )

    def _inflate(self, payload: bytes) -> bytes:
        # A compressed payload is u32 size | lz4 block: check the size before lz4
        # allocates it, and check lz4 produced exactly that much.
        if len(payload) < 5:
            raise CorruptFrame("compressed payload is truncated")
        declared = int.from_bytes(payload[:4], "little")
        if declared > self._max_size:
            raise FrameTooLarge(f"payload declares {declared} bytes uncompressed, above max_size")
        if self._decompress is None:
            raise UnknownFormat("compressed frame and no decompressor")
        try:
            out = self._decompress(payload)
        except Exception as exc:
            raise CorruptFrame(f"cannot decompress the payload: {exc}") from exc
        if type(out) is not bytes:
            out = bytes(out)
        if len(out) != declared:
            raise CorruptFrame("the payload does not decompress to its declared size")
        return out

    def decode(self, key: str, frame: Any) -> Any:
        """Return the value in ``frame``, stored under ``key``.

        Raises nothing but a :class:`~novacache.errors.CodecError` subclass for any
        ``frame`` (``TypeError`` only for a key that is not a ``str``).
        """
        if type(key) is not str:
            raise TypeError(f"a cache key is a str, got {type(key).__name__}")
        if type(frame) is not bytes:
            if isinstance(frame, (bytes, bytearray, memoryview)):
                frame = bytes(frame)
            else:
                raise CorruptFrame(f"a frame is bytes, got {type(frame).__name__}")
        size = len(frame)
        if size < 3:
            raise CorruptFrame(f"truncated frame ({size} bytes)")
        if frame[0] != 0x4E or frame[1] != 0x43:
            raise CorruptFrame("not a novacache frame (bad magic)")
        if frame[2] != FORMAT_VERSION:
            raise UnknownFormat(
                f"frame format version {frame[2]}; this novacache reads version {FORMAT_VERSION}"
            )
        if size < HEADER_SIZE:
            raise CorruptFrame(f"truncated frame header ({size} bytes)")
        ser = frame[3]
        flags = frame[4]
        key_id = frame[5]
        length = int.from_bytes(frame[6:HEADER_SIZE], "little")
        if flags & ~_KNOWN_FLAGS:
            raise UnknownFormat(f"unknown frame flags 0x{flags:02x}")
        payload: bytes
        if flags & ENCRYPTED:
            if key_id == 0:
                raise CorruptFrame("encrypted frame without a key id")
            if length > self._max_size + NONCE_SIZE + TAG_SIZE:
                raise FrameTooLarge(f"frame payload of {length} bytes is above max_size")
            if size != HEADER_SIZE + length or length < NONCE_SIZE + TAG_SIZE:
                raise CorruptFrame("frame length does not match its header")
            ring = self._keyring
            if ring is None:
                raise DecryptionFailed("the frame is encrypted and this codec has no key ring")
            aead = ring._ciphers.get(key_id)
            if aead is None:
                raise DecryptionFailed(f"no key with id {key_id} in the key ring")
            try:
                payload = aead.decrypt(
                    frame[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE],
                    frame[HEADER_SIZE + NONCE_SIZE :],
                    frame[:HEADER_SIZE] + key.encode("utf-8", "surrogatepass"),
                )
            except InvalidTag:
                raise DecryptionFailed(
                    "authentication failed: wrong key, edited frame, or another cache key"
                ) from None
        else:
            if self._keyring is not None:
                raise DecryptionFailed("unencrypted frame refused: this codec requires encryption")
            if key_id != 0:
                raise CorruptFrame("unencrypted frame with a key id")
            if length > self._max_size:
                raise FrameTooLarge(f"frame payload of {length} bytes is above max_size")
            if size != HEADER_SIZE + length + TRAILER_SIZE:
                raise CorruptFrame("frame length does not match its header")
            payload = frame[HEADER_SIZE : HEADER_SIZE + length]
            expected = int.from_bytes(frame[HEADER_SIZE + length :], "little")
            if xxh3_64_intdigest(payload, _seed(frame)) != expected:
                raise ChecksumMismatch("frame checksum does not match")
        if flags & COMPRESSED:
            payload = self._inflate(payload)
        if ser == SER_BYTES:
            return payload
        if ser == SER_STR:
            try:
                return payload.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise CorruptFrame("str payload is not UTF-8") from None
        loads = self._loaders.get(ser)
        if loads is None:
            if ser == SER_PICKLE:
                raise SerializerRefused(
                    "pickle frame refused: this codec was not given a pickle_key"
                )
            raise UnknownFormat(f"no serializer with id {ser} is registered")
        try:
            return loads(payload)
        except CodecError:
            raise
        except Exception as exc:
            raise CorruptFrame(f"the serializer cannot read the payload: {exc}") from exc
