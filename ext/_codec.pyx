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

It also holds the compiled twins of the two nesting checks (``novacache.codec.nesting``
explains the limit): ``check_nesting``, run on every value before it is serialized, and
``scan_msgpack``, run on every msgpack payload before it is unpacked. Both run on every
encode or decode, which is why they are here and not only in Python.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_SIZE
from cpython.tuple cimport PyTuple_GET_SIZE
from cpython.object cimport PyObject, PyTypeObject
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

import dataclasses
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

# Note that these repeat novacache.codec.nesting and .msgpack_layout; a test asserts so.
MAX_DEPTH = 128

cdef enum:
    _MAX_DEPTH = 128
    _EXT_TUPLE = 1          # the old nested containers: 1, 2, 3, 10
    _EXT_SET = 2
    _EXT_FROZENSET = 3
    _EXT_DATACLASS = 10
    _EXT_FIRST_MARK = 12    # the marks of inline containers: 12 .. 15
    _EXT_LAST_MARK = 15
    _HAS_MARKS = 1          # what scan_msgpack found
    _HAS_OLD = 2

HAS_MARKS = _HAS_MARKS
HAS_OLD = _HAS_OLD


# -- nesting: the value before it is encoded -----------------------------------------------

cdef object _is_dataclass = dataclasses.is_dataclass
cdef object _fields = dataclasses.fields


cdef extern from "Python.h":
    # Borrowed references and type pointers, for the walk's inner loops (see there).
    PyObject* _Py_NoneRef "Py_None"
    PyTypeObject* _type_of "Py_TYPE"(PyObject* obj)
    bint _dict_next "PyDict_Next"(object d, Py_ssize_t* pos, PyObject** key, PyObject** value)
    PyObject* _list_item "PyList_GET_ITEM"(object lst, Py_ssize_t i)
    PyObject* _tuple_item "PyTuple_GET_ITEM"(object tup, Py_ssize_t i)


cdef inline bint _leaf(PyObject* obj) noexcept:
    # The types that never hold anything: most items of most values.
    cdef PyTypeObject* tp = _type_of(obj)
    return (tp == <PyTypeObject*>str or tp == <PyTypeObject*>int
            or tp == <PyTypeObject*>float or tp == <PyTypeObject*>bool
            or tp == <PyTypeObject*>bytes or obj == _Py_NoneRef)


cdef object _rare_children(object obj):
    # A subclass of a container, a dataclass instance, or None for anything else.
    if isinstance(obj, (list, tuple, set, frozenset)):
        return obj
    if isinstance(obj, dict):
        return (*obj.keys(), *obj.values())
    if _is_dataclass(obj) and not isinstance(obj, type):
        return tuple([getattr(obj, f.name) for f in _fields(obj)])
    return None


cdef inline list _keep(list below, PyObject* item):
    # below + [item], the list made only when the first non-leaf turns up.
    if below is None:
        below = []
    below.append(<object>item)
    return below


cdef list _collect(object obj, list below, bint* container):
    # Add to ``below`` what ``obj`` holds that is not a leaf; say if it is a container.
    # Note that the loops over dicts and lists read borrowed references: no Python code
    # runs inside them (list.append runs none), and the critical section keeps other
    # threads out on a free-threaded build.
    cdef type tp = type(obj)
    cdef Py_ssize_t i
    cdef PyObject* key
    cdef PyObject* item
    container[0] = True
    if tp is dict:
        i = 0
        with cython.critical_section(obj):
            while _dict_next(obj, &i, &key, &item):
                if not _leaf(key):
                    below = _keep(below, key)
                if not _leaf(item):
                    below = _keep(below, item)
    elif tp is list:
        with cython.critical_section(obj):
            for i in range(PyList_GET_SIZE(obj)):
                item = _list_item(obj, i)
                if not _leaf(item):
                    below = _keep(below, item)
    elif tp is tuple:
        for i in range(PyTuple_GET_SIZE(obj)):
            item = _tuple_item(obj, i)
            if not _leaf(item):
                below = _keep(below, item)
    else:
        items = obj if (tp is set or tp is frozenset) else _rare_children(obj)
        if items is None:
            container[0] = False
            return below
        for element in items:
            if not _leaf(<PyObject*>element):
                below = _keep(below, <PyObject*>element)
    return below


cdef int _too_deep(int limit) except -1:
    raise SerializerRefused(
        f"the value nests deeper than {limit} levels of containers, or contains itself: "
        "the codec refuses it (see novacache.codec.nesting)"
    )


cdef int _check_nesting(object value, int limit) except -1:
    # Level by level, with lists: no C recursion, however deep the value. A value that
    # contains itself never runs out of levels, so it stops at limit + 1 like a deep one.
    # A value whose items are all leaves (most values) costs one pass and no list.
    cdef bint container
    cdef bint containers
    cdef int depth
    cdef list level = _collect(value, None, &container)
    cdef list below
    if not container:
        return 0
    depth = 1
    while True:
        if depth > limit:
            _too_deep(limit)
        if level is None:
            return 0
        below = None
        containers = False
        for obj in level:
            below = _collect(obj, below, &container)
            containers |= container
        if containers:
            depth += 1
        level = below


def check_nesting(value, int limit=_MAX_DEPTH):
    """Raise ``SerializerRefused`` when ``value`` nests deeper than ``limit`` levels or
    contains itself (the twin of ``novacache.codec.nesting.check_nesting``)."""
    _check_nesting(value, limit)


# -- nesting: a msgpack payload before it is decoded ----------------------------------------

cdef struct _Open:
    # A container the scan is inside: items it holds, items left to read, is an array.
    Py_ssize_t count
    Py_ssize_t left
    bint array


# Bytes taken by a msgpack object whose size its first byte tells (fixint, fixstr, nil,
# booleans, numbers); 0 for containers, bin, str 8+, extensions and 0xc1.
cdef unsigned char _FIXED_SIZE[256]


cdef void _init_fixed_sizes() noexcept:
    cdef int b
    for b in range(256):
        _FIXED_SIZE[b] = 0
    for b in range(0x00, 0x80):
        _FIXED_SIZE[b] = 1
    for b in range(0xE0, 0x100):
        _FIXED_SIZE[b] = 1
    for b in range(0xA0, 0xC0):
        _FIXED_SIZE[b] = 1 + (b & 0x1F)
    _FIXED_SIZE[0xC0] = 1  # nil
    _FIXED_SIZE[0xC2] = 1  # false
    _FIXED_SIZE[0xC3] = 1  # true
    _FIXED_SIZE[0xCA] = 5  # float 32
    _FIXED_SIZE[0xCB] = 9  # float 64
    _FIXED_SIZE[0xCC] = 2  # uint 8, 16, 32, 64
    _FIXED_SIZE[0xCD] = 3
    _FIXED_SIZE[0xCE] = 5
    _FIXED_SIZE[0xCF] = 9
    _FIXED_SIZE[0xD0] = 2  # int 8, 16, 32, 64
    _FIXED_SIZE[0xD1] = 3
    _FIXED_SIZE[0xD2] = 5
    _FIXED_SIZE[0xD3] = 9


_init_fixed_sizes()


cdef inline Py_ssize_t _need(Py_ssize_t pos, uint64_t k, Py_ssize_t n) except -1:
    # pos + k, when those k bytes are all inside the payload.
    if k > <uint64_t>(n - pos):
        raise ValueError("truncated msgpack")
    return pos + <Py_ssize_t>k


cdef inline uint64_t _be(const unsigned char* p, int width) noexcept:
    cdef uint64_t v = 0
    cdef int i
    for i in range(width):
        v = (v << 8) | p[i]
    return v


def scan_msgpack(bytes data not None, int limit):
    """Check a msgpack payload before it is unpacked; return what it holds: 0, or the
    bits ``HAS_MARKS`` (inline containers) and ``HAS_OLD`` (old nested containers) (the
    twin of ``novacache.codec.msgpack_layout.scan``).

    Raises ``ValueError`` for a payload nested deeper than ``limit`` (arrays and maps), a
    container mark anywhere but first in an array, or bytes that are not one msgpack
    object. One pass, with a fixed array of open containers: no recursion.
    """
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t pos = 0
    cdef _Open stack[_MAX_DEPTH + 1]
    cdef _Open* cur
    cdef int top = 0
    cdef int found = 0
    cdef bint is_array
    cdef unsigned char b
    cdef unsigned char code
    cdef unsigned char size
    cdef int width
    cdef int head
    cdef uint64_t count
    cdef uint64_t length
    if not 0 <= limit <= _MAX_DEPTH:
        raise ValueError(f"limit is within 0..{_MAX_DEPTH}")
    cur = &stack[0]
    cur.count = 1  # the top level holds one object
    cur.left = 1
    cur.array = False
    while True:
        while cur.left == 0:
            if top == 0:
                if pos != n:
                    raise ValueError("bytes after the msgpack object")
                return found
            top -= 1
            cur = &stack[top]
        if pos >= n:
            raise ValueError("truncated msgpack")
        b = p[pos]
        cur.left -= 1
        size = _FIXED_SIZE[b]
        if size:  # the common case: a number, a short str, nil, a boolean
            pos += size
            continue
        if b <= 0x9F or 0xDC <= b <= 0xDF:  # fixmap, fixarray, array 16/32, map 16/32
            if b <= 0x8F:
                count = (b & 0x0F) * 2
                is_array = False
                pos += 1
            elif b <= 0x9F:
                count = b & 0x0F
                is_array = True
                pos += 1
            else:
                width = 2 if (b == 0xDC or b == 0xDE) else 4
                _need(pos + 1, width, n)
                count = _be(p + pos + 1, width)
                is_array = b <= 0xDD
                if not is_array:
                    count *= 2
                pos += 1 + width
            if count > <uint64_t>(n - pos):
                raise ValueError("a container holds more items than the bytes left")
            if top >= limit:
                raise ValueError(f"the msgpack payload nests deeper than {limit} levels")
            top += 1
            cur = &stack[top]
            cur.count = <Py_ssize_t>count
            cur.left = <Py_ssize_t>count
            cur.array = is_array
        elif b == 0xC4 or b == 0xC5 or b == 0xC6 or b == 0xD9 or b == 0xDA or b == 0xDB:
            # bin 8/16/32, str 8/16/32: a length, then the bytes
            width = 1 if (b == 0xC4 or b == 0xD9) else 2 if (b == 0xC5 or b == 0xDA) else 4
            _need(pos + 1, width, n)
            length = _be(p + pos + 1, width)
            pos = _need(pos + 1 + width, length, n)
        elif 0xC7 <= b <= 0xC9 or 0xD4 <= b <= 0xD8:  # ext 8/16/32, fixext 1..16
            if b >= 0xD4:
                length = 1 << (b - 0xD4)
                head = 1
            else:
                width = 1 << (b - 0xC7)
                _need(pos + 1, width, n)
                length = _be(p + pos + 1, width)
                head = 1 + width
            _need(pos + head, 1, n)
            code = p[pos + head]
            pos = _need(pos + head + 1, length, n)
            if _EXT_FIRST_MARK <= code <= _EXT_LAST_MARK:
                # A mark must be the first item of an array: the one just read.
                if not (cur.array and cur.left == cur.count - 1):
                    raise ValueError("a container mark that is not first in an array")
                found |= _HAS_MARKS
            elif (code == _EXT_TUPLE or code == _EXT_SET or code == _EXT_FROZENSET
                    or code == _EXT_DATACLASS):
                found |= _HAS_OLD
        else:
            raise ValueError(f"byte 0x{b:02x} does not start a msgpack object")


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


cdef inline void _write_u32(unsigned char* p, uint32_t v) noexcept:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF
    p[2] = (v >> 16) & 0xFF
    p[3] = (v >> 24) & 0xFF


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


# -- lz4: the block of a one-block frame ---------------------------------------------------

# Note that this is novacache.codec.compression.compress in C, for payloads of one lz4
# frame block (up to 4 MiB): the same call, the same bytes, without the Python slicing.
# An engine whose compress is that function takes this path (see encode).
from novacache.codec.compression import compress as _lz4_compress

import lz4.frame

cdef object _frame_compress = lz4.frame.compress
cdef object _BLOCK_SIZE_ID = lz4.frame.BLOCKSIZE_MAX4MB
cdef Py_ssize_t _LZ4_ONE_BLOCK = 4 * 1024 * 1024


cdef bytes _lz4_block(bytes data):
    # size (u32 LE) | the block of a one-block lz4 frame: magic (4) | FLG BD HC (3) |
    # block size (u32 LE, top bit: stored raw) | block | end mark (4). ``data`` itself
    # when there is no block or it is stored raw (the caller keeps only what is shorter).
    cdef bytes framed = _frame_compress(data, 0, _BLOCK_SIZE_ID, False, False, False, False)
    cdef Py_ssize_t m = PyBytes_GET_SIZE(framed)
    cdef const unsigned char* f = <const unsigned char*>PyBytes_AS_STRING(framed)
    cdef Py_ssize_t size
    cdef bytes out
    cdef unsigned char* o
    if m < 15 or f[10] & 0x80:
        return data
    size = m - 15
    out = PyBytes_FromStringAndSize(NULL, 4 + size)
    o = <unsigned char*>PyBytes_AS_STRING(out)
    _write_u32(o, <uint32_t>PyBytes_GET_SIZE(data))
    memcpy(o + 4, f + 11, size)
    return out


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
        when the serializer cannot encode the value or it nests deeper than
        ``MAX_DEPTH``, and ``ValueTooLarge`` above ``max_size``.
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
                _check_nesting(value, _MAX_DEPTH)
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
            if self._compress is _lz4_compress and n <= _LZ4_ONE_BLOCK:
                packed = _lz4_block(<bytes>payload)
            else:
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
