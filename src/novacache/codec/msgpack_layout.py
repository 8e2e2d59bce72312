"""What novacache writes inside a msgpack payload, and the scan that checks it before
anything is built from it.

Extension types (never renumber: frames in caches use them):

====  ==============  ==================================================================
code  type            data
====  ==============  ==================================================================
1     tuple           *old frames only*: a nested msgpack array of the items
2     set             *old frames only*: as 1
3     frozenset       *old frames only*: as 1
4     datetime        ISO 8601 text
5     date            ISO 8601 text
6     time            ISO 8601 text
7     timedelta       a nested msgpack array ``[days, seconds, microseconds]`` (ints)
8     UUID            its 16 bytes
9     Decimal         its text
10    dataclass       *old frames only*: a nested msgpack ``[name, {field: value}]``
11    int             beyond 64 bits: two's complement, little-endian
12    tuple mark      empty: this array is a tuple (see below)
13    set mark        empty: this array is a set
14    frozenset mark  empty: this array is a frozenset
15    dataclass mark  empty: this array is ``[mark, name, field, value, field, value...]``
====  ==============  ==================================================================

A tuple, set, frozenset or dataclass is written *inline*: as a msgpack array whose first
element is its mark, so ``(1, 2)`` is ``[<12>, 1, 2]``. The C unpacker then builds the
whole value in one loop with its own heap-free, bounded stack, and the codec turns each
marked array into its type as the array completes. Until commit 91f1b99 they were
extension types whose data was another msgpack document (codes 1, 2, 3, 10): decoding
those took one nested unpack per level, each with a 40 KiB unpack context on the C stack,
so a few hundred levels killed the process. Frames of that form still decode: the scan
finds them and :func:`upgrade` rewrites the payload into the inline form first.

:func:`scan` runs before every msgpack decode (``novacache._codec`` has its compiled
twin). It refuses, with ``ValueError``, a payload nested deeper than the limit (arrays and
maps, counted as in :mod:`novacache.codec.nesting`), a mark anywhere but first in an
array, and bytes that are not one well-formed msgpack object.
"""

from __future__ import annotations

__all__ = [
    "EXT_BIGINT",
    "EXT_DATACLASS",
    "EXT_DATACLASS_MARK",
    "EXT_DATE",
    "EXT_DATETIME",
    "EXT_DECIMAL",
    "EXT_FROZENSET",
    "EXT_FROZENSET_MARK",
    "EXT_SET",
    "EXT_SET_MARK",
    "EXT_TIME",
    "EXT_TIMEDELTA",
    "EXT_TUPLE",
    "EXT_TUPLE_MARK",
    "EXT_UUID",
    "HAS_MARKS",
    "HAS_OLD",
    "scan",
    "upgrade",
]

EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_DATETIME = 4
EXT_DATE = 5
EXT_TIME = 6
EXT_TIMEDELTA = 7
EXT_UUID = 8
EXT_DECIMAL = 9
EXT_DATACLASS = 10
EXT_BIGINT = 11
EXT_TUPLE_MARK = 12
EXT_SET_MARK = 13
EXT_FROZENSET_MARK = 14
EXT_DATACLASS_MARK = 15

#: What :func:`scan` reports: the payload holds inline containers, old nested ones.
HAS_MARKS = 1
HAS_OLD = 2

_MARKS = frozenset({EXT_TUPLE_MARK, EXT_SET_MARK, EXT_FROZENSET_MARK, EXT_DATACLASS_MARK})
_UPGRADES = {
    EXT_TUPLE: EXT_TUPLE_MARK,
    EXT_SET: EXT_SET_MARK,
    EXT_FROZENSET: EXT_FROZENSET_MARK,
    EXT_DATACLASS: EXT_DATACLASS_MARK,
}


def _fixed_sizes() -> list[int]:
    # Bytes taken by a scalar whose size its first byte tells; 0 for everything else.
    sizes = [0] * 256
    for b in range(0x00, 0x80):  # positive fixint
        sizes[b] = 1
    for b in range(0xE0, 0x100):  # negative fixint
        sizes[b] = 1
    for b in range(0xA0, 0xC0):  # fixstr
        sizes[b] = 1 + (b & 0x1F)
    for b, size in {
        0xC0: 1,  # nil
        0xC2: 1,  # false
        0xC3: 1,  # true
        0xCA: 5,  # float 32
        0xCB: 9,  # float 64
        0xCC: 2,  # uint 8
        0xCD: 3,
        0xCE: 5,
        0xCF: 9,
        0xD0: 2,  # int 8
        0xD1: 3,
        0xD2: 5,
        0xD3: 9,
    }.items():
        sizes[b] = size
    return sizes


_FIXED = _fixed_sizes()
_RAW_WIDTH = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # bin, str: length size


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _uint(data: bytes, pos: int, width: int) -> int:
    if pos + width > len(data):
        raise ValueError("truncated msgpack")
    return int.from_bytes(data[pos : pos + width], "big")


def _container(data: bytes, pos: int) -> tuple[int, int, bool] | None:
    """``(items, position after the header, is an array)`` for a container header."""
    b = data[pos]
    if 0x90 <= b <= 0x9F:
        return b & 0x0F, pos + 1, True
    if 0x80 <= b <= 0x8F:
        return (b & 0x0F) * 2, pos + 1, False
    if 0xDC <= b <= 0xDF:
        width = 2 if b in (0xDC, 0xDE) else 4
        count = _uint(data, pos + 1, width)
        array = b <= 0xDD
        return (count if array else count * 2), pos + 1 + width, array
    return None


# Every container starts with a byte of _CONTAINER_BYTES and every extension with one
# of _EXT_BYTES (strings and numbers may hold such bytes too: these only bound).
_CONTAINER_BYTES = bytes((*range(0x80, 0xA0), *range(0xDC, 0xE0)))
_EXT_BYTES = bytes((*range(0xC7, 0xCA), *range(0xD4, 0xD9)))
_OTHER_BYTES = bytes(b for b in range(256) if b not in _CONTAINER_BYTES + _EXT_BYTES)


def scan(data: bytes, limit: int) -> int:
    """Check the msgpack payload ``data`` (see the module docstring); return 0, or the
    bits :data:`HAS_MARKS` (it holds inline containers, which the unpacker's list hook
    must build) and :data:`HAS_OLD` (it holds old nested containers, which
    :func:`upgrade` must rewrite first).

    Note that a payload with no extension byte and at most ``limit`` container bytes
    cannot break the rules, so it is passed after one ``bytes.translate`` (the msgpack
    unpacker still checks it is well formed): the full walk costs Python time per item.
    """
    kept = data.translate(None, _OTHER_BYTES)
    if len(kept) <= limit and not kept.translate(None, _CONTAINER_BYTES):
        return 0
    return _walk(data, limit, None)


def upgrade(data: bytes, limit: int) -> bytes:
    """Return ``data`` with every old nested tuple, set, frozenset and dataclass rewritten
    inline, checked as :func:`scan` checks, and their nesting counted too."""
    out = bytearray()
    _walk(data, limit, out)
    return bytes(out)


def _walk(data: bytes, limit: int, out: bytearray | None) -> int:
    # Note that this is a loop over an explicit stack, not a recursive descent: it is
    # the guard against deep input, so it must not itself use stack per level. Each
    # element costs at least one byte, so the loop ends within len(data) elements.
    n = len(data)
    fixed = _FIXED
    pos = 0
    found = 0
    copied = 0  # with ``out``: data[copied:pos] is still to be copied
    # The open containers, innermost in the locals: items it holds, items left to read,
    # the end of the old extension that holds it (or -1), whether it is an array.
    stack: list[tuple[int, int, int, bool]] = []
    count, left, end, array = 1, 1, -1, False  # the top level holds one object
    while True:
        while left == 0:
            if end >= 0 and pos != end:
                raise ValueError("an old nested container does not fill its extension")
            if not stack:
                if pos != n:
                    raise ValueError("bytes after the msgpack object")
                if out is not None:
                    out += data[copied:]
                return found
            count, left, end, array = stack.pop()
        if pos >= n:
            raise ValueError("truncated msgpack")
        b = data[pos]
        left -= 1
        size = fixed[b]
        if size:  # the common case: a number, a short str, nil, a boolean
            pos += size
            continue
        header = _container(data, pos)
        if header is not None:
            items, pos, is_array = header
            if items > n - pos:
                raise ValueError("a container holds more items than the bytes left")
            if len(stack) >= limit:
                raise ValueError(f"the msgpack payload nests deeper than {limit} levels")
            stack.append((count, left, end, array))
            count, left, end, array = items, items, -1, is_array
            continue
        width = _RAW_WIDTH.get(b)
        if width is not None:  # bin or str
            pos += 1 + width + _uint(data, pos + 1, width)
            continue
        if 0xD4 <= b <= 0xD8:  # fixext 1, 2, 4, 8, 16
            length, head = 1 << (b - 0xD4), 1
        elif 0xC7 <= b <= 0xC9:  # ext 8, 16, 32
            width = 1 << (b - 0xC7)
            length, head = _uint(data, pos + 1, width), 1 + width
        else:
            raise ValueError(f"byte 0x{b:02x} does not start a msgpack object")
        code = _uint(data, pos + head, 1)
        body = pos + head + 1
        after = body + length
        if after > n:
            raise ValueError("truncated msgpack")
        if code in _MARKS:
            # A mark must be the first item of an array: the one just read.
            if not (array and left == count - 1):
                raise ValueError("a container mark that is not first in an array")
            found |= HAS_MARKS
            pos = after
            continue
        mark = _UPGRADES.get(code)
        if mark is None:  # an extension that holds no msgpack: datetime, UUID, ...
            pos = after
            continue
        found |= HAS_OLD
        if out is None:
            pos = after
            continue
        # Rewrite ext(code, [items]) as [mark, items...], and the old dataclass
        # ext(10, [name, {field: value}]) as [mark, name, field, value...]: the items
        # stay where they are, only the headers change.
        inner = _container(data, body) if body < after else None
        if inner is None or not inner[2]:
            raise ValueError("an old nested container that does not hold an array")
        items, pos, _ = inner
        out += data[copied : body - head - 1]
        if mark == EXT_DATACLASS_MARK:
            if items != 2 or pos >= after:
                raise ValueError("an old dataclass that is not [name, fields]")
            name_start = pos
            b = data[pos]
            if 0xA0 <= b <= 0xBF:
                pos += 1 + (b & 0x1F)
            elif b in (0xD9, 0xDA, 0xDB):
                width = _RAW_WIDTH[b]
                pos += 1 + width + _uint(data, pos + 1, width)
            else:
                raise ValueError("an old dataclass whose name is not a str")
            fields = _container(data, pos) if pos < after else None
            if fields is None or fields[2]:
                raise ValueError("an old dataclass whose fields are not a map")
            items, fields_start, _ = fields
            if items > after - fields_start:
                raise ValueError("a container holds more items than the bytes left")
            out += _array_header(items + 2) + b"\xc7\x00" + bytes((mark,))
            out += data[name_start:pos]
            pos = fields_start
            opened = items + 2
        else:
            if items > after - pos:
                raise ValueError("a container holds more items than the bytes left")
            out += _array_header(items + 1) + b"\xc7\x00" + bytes((mark,))
            opened = items + 1
        if len(stack) >= limit:
            raise ValueError(f"the msgpack payload nests deeper than {limit} levels")
        found |= HAS_MARKS
        stack.append((count, left, end, array))
        # The mark (and a dataclass's name) are already written: count them as read.
        count, left, end, array = opened, items, after, True
        copied = pos
