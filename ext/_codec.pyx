# cython: language_level=3
# cython: freethreading_compatible=True
"""The compiled framing of novacache's codec: header, checksum, fast paths.

This is the C twin of ``novacache.codec.frame`` (read its docstring for the frame
layout). Both produce byte-identical frames and raise the same errors for the same
bytes; the test suite runs against both. Everything that is not framing (msgpack, lz4,
AES-GCM, HMAC) stays a call into the library that does it: this module only decides
which calls to make and lays the bytes out.

Why it is compiled: the Python twin spends most of its time building small ints and
joining bytes. Here the header is written straight into the frame's own buffer, the
payload is copied once, and the checksum is one call on the payload object with a seed
read from the header, so a raw ``bytes`` value costs one allocation and one hash.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

import os

from cryptography.exceptions import InvalidTag
from xxhash import xxh3_64_intdigest

from novacache.errors import (
    ChecksumMismatch,
    CodecError,
    CorruptFrame,
    DecryptionFailed,
    FrameTooLarge,
    SerializerRefused,
    UnknownFormat,
    ValueTooLarge,
)

# Note that these constants repeat novacache.codec.frame; a test asserts they agree.
MAGIC = b"NC"
FORMAT_VERSION = 1
HEADER_SIZE = 10
TRAILER_SIZE = 8
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_PAYLOAD = 0xFFFFFFFF - 12 - 16

cdef enum:
    _HEADER = 10
    _TRAILER = 8
    _NONCE = 12
    _TAG = 16
    _VERSION = 1
    _COMPRESSED = 0x01
    _ENCRYPTED = 0x02
    _KNOWN_FLAGS = 0x03
    _SER_BYTES = 0
    _SER_STR = 1
    _SER_PICKLE = 4

cdef Py_ssize_t _MAX_PAYLOAD = 0xFFFFFFFF - 12 - 16


cdef inline void _write_header(unsigned char* p, int ser, int flags, int key_id,
                               uint32_t length) noexcept:
    p[0] = 0x4E  # "N"
    p[1] = 0x43  # "C"
    p[2] = _VERSION
    p[3] = <unsigned char>ser
    p[4] = <unsigned char>flags
    p[5] = <unsigned char>key_id
    p[6] = length & 0xFF
    p[7] = (length >> 8) & 0xFF
    p[8] = (length >> 16) & 0xFF
    p[9] = (length >> 24) & 0xFF


cdef inline uint64_t _read_u64(const unsigned char* p) noexcept:
    # Byte by byte, so the result is little-endian on every host and never an
    # unaligned load; compilers turn this into a single move where that is legal.
    cdef uint64_t v = 0
    cdef int i
    for i in range(7, -1, -1):
        v = (v << 8) | p[i]
    return v


cdef inline void _write_u64(unsigned char* p, uint64_t v) noexcept:
    cdef int i
    for i in range(8):
        p[i] = v & 0xFF
        v >>= 8


cdef inline uint32_t _read_u32(const unsigned char* p) noexcept:
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
            | (<uint32_t>p[3] << 24))


cdef inline uint64_t _checksum(bytes payload, const unsigned char* header) except? 0:
    # The seed is header[2:10] (version .. length): one hash covers header and payload
    # without copying them into one buffer first.
    return xxh3_64_intdigest(payload, _read_u64(header + 2))


def pack_plain(int ser, int flags, bytes payload not None):
    """Return an unencrypted frame around ``payload`` exactly as the encoder writes it."""
    if not 0 <= ser <= 255 or not 0 <= flags <= 255:
        raise ValueError("ser and flags are bytes (0..255)")
    if PyBytes_GET_SIZE(payload) > _MAX_PAYLOAD:
        raise ValueTooLarge(PyBytes_GET_SIZE(payload), _MAX_PAYLOAD)
    return _frame_plain(ser, flags, payload)


cdef bytes _frame_plain(int ser, int flags, bytes payload):
    cdef Py_ssize_t n = PyBytes_GET_SIZE(payload)
    cdef bytes frame = PyBytes_FromStringAndSize(NULL, _HEADER + n + _TRAILER)
    cdef unsigned char* p = <unsigned char*>PyBytes_AS_STRING(frame)
    _write_header(p, ser, flags, 0, <uint32_t>n)
    memcpy(p + _HEADER, PyBytes_AS_STRING(payload), n)
    _write_u64(p + _HEADER + n, _checksum(payload, p))
    return frame


cdef class FrameEngine:
    """Turns values into frames and back, given the pieces a :class:`Codec` picked.

    The compiled twin of ``novacache.codec.frame.FrameEngine``: same arguments, same
    frames, same errors.
    """

    cdef int _default_id
    cdef object _dumps
    cdef dict _loaders
    cdef object _compress
    cdef object _decompress
    cdef Py_ssize_t _compress_min
    cdef Py_ssize_t _max_size
    cdef object _keyring
    cdef object _nonce_source

    def __cinit__(self):
        # Safe defaults for an engine whose __init__ was never run (a subclass that
        # forgot super().__init__): it refuses everything instead of touching None.
        self._loaders = {}
        self._compress_min = -1
        self._max_size = 0

    def __init__(self, *, int default_id, dumps, dict loaders not None, compress,
                 decompress, Py_ssize_t compress_min, Py_ssize_t max_size, keyring,
                 nonce_source=None):
        if not 0 <= default_id <= 255:
            raise ValueError("default_id is a byte (0..255)")
        if not 0 <= max_size <= _MAX_PAYLOAD:
            raise ValueError(f"max_size must be within 0..{_MAX_PAYLOAD}")
        self._default_id = default_id
        self._dumps = dumps
        self._loaders = dict(loaders)
        self._compress = compress
        self._decompress = decompress
        self._compress_min = compress_min if compress is not None else -1
        self._max_size = max_size
        self._keyring = keyring
        self._nonce_source = nonce_source if nonce_source is not None else os.urandom

    def encode(self, key, value):
        """Return the frame of ``value`` stored under ``key``.

        ``bytes`` and ``str`` values skip the serializer. Raises ``SerializerRefused``
        when the serializer cannot encode the value and ``ValueTooLarge`` above
        ``max_size``.
        """
        cdef object payload
        cdef object packed
        cdef int ser
        cdef int flags = 0
        cdef Py_ssize_t n
        if type(key) is not str:
            raise TypeError(f"a cache key is a str, got {type(key).__name__}")
        tp = type(value)
        if tp is bytes:
            payload = value
            ser = _SER_BYTES
        elif tp is str:
            payload = (<str>value).encode("utf-8", "surrogatepass")
            ser = _SER_STR
        else:
            try:
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
        n = PyBytes_GET_SIZE(payload)
        if n > self._max_size:
            raise ValueTooLarge(n, self._max_size)
        if 0 <= self._compress_min <= n:
            packed = self._compress(payload)
            if type(packed) is not bytes:
                packed = bytes(packed)
            if PyBytes_GET_SIZE(packed) < n:
                payload = packed
                n = len(packed)
                flags = _COMPRESSED
        if self._keyring is not None:
            return self._seal(<str>key, ser, flags, <bytes>payload)
        return _frame_plain(ser, flags, <bytes>payload)

    cdef bytes _seal(self, str key, int ser, int flags, bytes payload):
        # Encrypted frame: header | nonce | AESGCM(payload, aad = header + key).
        cdef Py_ssize_t n = PyBytes_GET_SIZE(payload)
        key_id, aead = self._keyring._active
        cdef bytes header = PyBytes_FromStringAndSize(NULL, _HEADER)
        _write_header(<unsigned char*>PyBytes_AS_STRING(header), ser, flags | _ENCRYPTED,
                      key_id, <uint32_t>(_NONCE + n + _TAG))
        nonce = self._nonce_source(_NONCE)
        if type(nonce) is not bytes or PyBytes_GET_SIZE(nonce) != _NONCE:
            raise CodecError("the nonce source must return 12 bytes")
        cdef bytes sealed = aead.encrypt(nonce, payload,
                                         header + key.encode("utf-8", "surrogatepass"))
        cdef Py_ssize_t m = PyBytes_GET_SIZE(sealed)
        cdef bytes frame = PyBytes_FromStringAndSize(NULL, _HEADER + _NONCE + m)
        cdef char* p = PyBytes_AS_STRING(frame)
        memcpy(p, PyBytes_AS_STRING(header), _HEADER)
        memcpy(p + _HEADER, PyBytes_AS_STRING(nonce), _NONCE)
        memcpy(p + _HEADER + _NONCE, PyBytes_AS_STRING(sealed), m)
        return frame

    cdef bytes _inflate(self, bytes payload):
        # A compressed payload is u32 size | lz4 block: check the size before lz4
        # allocates it, and check lz4 produced exactly that much.
        cdef Py_ssize_t n = PyBytes_GET_SIZE(payload)
        if n < 5:
            raise CorruptFrame("compressed payload is truncated")
        cdef Py_ssize_t declared = <Py_ssize_t>_read_u32(
            <const unsigned char*>PyBytes_AS_STRING(payload))
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
        if PyBytes_GET_SIZE(out) != declared:
            raise CorruptFrame("the payload does not decompress to its declared size")
        return <bytes>out

    def decode(self, key, frame):
        """Return the value in ``frame``, stored under ``key``.

        Raises nothing but a ``CodecError`` subclass for any ``frame`` (``TypeError``
        only for a key that is not a ``str``).
        """
        cdef const unsigned char* p
        cdef Py_ssize_t size
        cdef int ser, flags, key_id
        cdef Py_ssize_t length
        cdef object payload
        if type(key) is not str:
            raise TypeError(f"a cache key is a str, got {type(key).__name__}")
        if type(frame) is not bytes:
            if isinstance(frame, (bytes, bytearray, memoryview)):
                frame = bytes(frame)
            else:
                raise CorruptFrame(f"a frame is bytes, got {type(frame).__name__}")
        size = PyBytes_GET_SIZE(frame)
        p = <const unsigned char*>PyBytes_AS_STRING(frame)
        if size < 3:
            raise CorruptFrame(f"truncated frame ({size} bytes)")
        if p[0] != 0x4E or p[1] != 0x43:
            raise CorruptFrame("not a novacache frame (bad magic)")
        if p[2] != _VERSION:
            raise UnknownFormat(
                f"frame format version {p[2]}; this novacache reads version {_VERSION}"
            )
        if size < _HEADER:
            raise CorruptFrame(f"truncated frame header ({size} bytes)")
        ser = p[3]
        flags = p[4]
        key_id = p[5]
        length = <Py_ssize_t>_read_u32(p + 6)
        if flags & ~_KNOWN_FLAGS:
            raise UnknownFormat(f"unknown frame flags 0x{flags:02x}")
        if flags & _ENCRYPTED:
            if key_id == 0:
                raise CorruptFrame("encrypted frame without a key id")
            if length > self._max_size + _NONCE + _TAG:
                raise FrameTooLarge(f"frame payload of {length} bytes is above max_size")
            if size != _HEADER + length or length < _NONCE + _TAG:
                raise CorruptFrame("frame length does not match its header")
            ring = self._keyring
            if ring is None:
                raise DecryptionFailed("the frame is encrypted and this codec has no key ring")
            aead = ring._ciphers.get(key_id)
            if aead is None:
                raise DecryptionFailed(f"no key with id {key_id} in the key ring")
            try:
                payload = aead.decrypt(
                    PyBytes_FromStringAndSize(<const char*>p + _HEADER, _NONCE),
                    PyBytes_FromStringAndSize(<const char*>p + _HEADER + _NONCE,
                                              length - _NONCE),
                    PyBytes_FromStringAndSize(<const char*>p, _HEADER)
                    + (<str>key).encode("utf-8", "surrogatepass"),
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
            if size != _HEADER + length + _TRAILER:
                raise CorruptFrame("frame length does not match its header")
            payload = PyBytes_FromStringAndSize(<const char*>p + _HEADER, length)
            if _checksum(<bytes>payload, p) != _read_u64(p + _HEADER + length):
                raise ChecksumMismatch("frame checksum does not match")
        if flags & _COMPRESSED:
            payload = self._inflate(<bytes>payload)
        if ser == _SER_BYTES:
            return payload
        if ser == _SER_STR:
            try:
                return (<bytes>payload).decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise CorruptFrame("str payload is not UTF-8") from None
        loads = self._loaders.get(ser)
        if loads is None:
            if ser == _SER_PICKLE:
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
