"""Deep values and deep frames for the nesting tests, importable by their child processes.

``build(kind, depth)`` makes a value that nests exactly ``depth`` levels (as
:mod:`novacache.codec.nesting` counts them) with containers of one kind, or a mix.
``payload(kind, depth)`` writes a msgpack payload by hand, byte by byte, nested ``depth``
levels, in the current inline form or the old nested-extension form; ``plain_frame`` and
``sealed_frame`` put any payload in a frame, also by hand (checksum, AES-GCM).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import xxhash
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@dataclasses.dataclass(frozen=True)
class Node:
    """A registered dataclass for chains: frozen, so it can sit in sets and keys."""

    value: Any


NODE_NAME = f"{Node.__module__}.{Node.__qualname__}"

# kind -> wrap one level around v. "set" and "dict_key" put a chain of hashables inside
# one outer set or dict; "mix" cycles through hashable kinds, then ends in set/dict/list.
_WRAP = {
    "list": lambda v: [v],
    "tuple": lambda v: (v,),
    "dict": lambda v: {"k": v},
    "frozenset": lambda v: frozenset([v]),
    "dataclass": Node,
}
VALUE_KINDS = ("list", "tuple", "dict", "set", "frozenset", "dataclass", "dict_key", "mix")
_HASHABLE_CYCLE = ("tuple", "frozenset", "dataclass")
_MIX_TOP = ("set", "dict", "list")


def build(kind: str, depth: int) -> Any:
    """A value of containers of ``kind`` nested exactly ``depth`` levels (depth >= 3)."""
    value: Any = 0
    for level in range(depth):
        outer = depth - 1 - level  # levels still to wrap around this one
        if kind == "set":
            value = {value} if outer == 0 else frozenset([value])
        elif kind == "dict_key":
            value = {value: 1} if outer == 0 else (value,)
        elif kind == "mix":
            if outer < len(_MIX_TOP):
                top = _MIX_TOP[len(_MIX_TOP) - 1 - outer]
                value = {value} if top == "set" else _WRAP[top](value)
            else:
                value = _WRAP[_HASHABLE_CYCLE[level % 3]](value)
        else:
            value = _WRAP[kind](value)
    return value


# -- msgpack by hand -------------------------------------------------------------------


def _str(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 32
    return bytes((0xA0 | len(raw),)) + raw


def _array(n: int) -> bytes:
    return bytes((0x90 | n,)) if n < 16 else b"\xdc" + n.to_bytes(2, "big")


def _ext(code: int, data: bytes) -> bytes:
    n = len(data)
    if n < 0x100:
        return b"\xc7" + bytes((n, code)) + data
    if n < 0x10000:
        return b"\xc8" + n.to_bytes(2, "big") + bytes((code,)) + data
    return b"\xc9" + n.to_bytes(4, "big") + bytes((code,)) + data


def _mark(code: int) -> bytes:
    return b"\xc7\x00" + bytes((code,))


def _inline(step: str, inner: bytes) -> bytes:
    # One level in the current form: a header, then the level below.
    if step == "array":
        return b"\x91" + inner
    if step == "array32":
        return b"\xdd\x00\x00\x00\x01" + inner
    if step == "map":
        return b"\x81" + _str("k") + inner
    if step == "map32":
        return b"\xdf\x00\x00\x00\x01" + _str("k") + inner
    if step == "dataclass":
        return _array(4) + _mark(15) + _str(NODE_NAME) + _str("value") + inner
    code = {"tuple": 12, "set": 13, "frozenset": 14}[step]
    return _array(2) + _mark(code) + inner


def _old(step: str, inner: bytes) -> bytes:
    # One level in the old form: an extension whose data is the msgpack of the level below.
    if step == "dataclass":
        return _ext(10, _array(2) + _str(NODE_NAME) + b"\x81" + _str("value") + inner)
    return _ext({"tuple": 1, "set": 2, "frozenset": 3}[step], _array(1) + inner)


# Payload kinds: "<step>" for one container kind, "set" a set around frozensets, "mixed"
# a cycle of tuple, frozenset and dataclass; "old_..." the same in the old nested form.
_INLINE_KINDS = ("array", "array32", "map", "map32", "tuple", "set", "frozenset", "dataclass")
PAYLOAD_KINDS = (
    *_INLINE_KINDS,
    "mixed",
    "old_tuple",
    "old_set",
    "old_frozenset",
    "old_dataclass",
    "old_mixed",
)


def _steps(kind: str, depth: int) -> list[str]:
    """The container of each level, innermost first."""
    base = kind.removeprefix("old_")
    if base == "mixed":
        return [("tuple", "frozenset", "dataclass")[level % 3] for level in range(depth)]
    if base == "set":
        return ["frozenset"] * (depth - 1) + ["set"]
    return [base] * depth


def payload(kind: str, depth: int) -> bytes:
    """A msgpack payload nested ``depth`` levels, written by hand."""
    wrap = _old if kind.startswith("old_") else _inline
    body = b"\x00"
    for step in _steps(kind, depth):
        body = wrap(step, body)
    return body


def expected(kind: str, depth: int) -> Any:
    """What ``payload(kind, depth)`` decodes to, when it is not too deep."""
    value: Any = 0
    for step in _steps(kind, depth):
        if step in ("array", "array32"):
            value = [value]
        elif step in ("map", "map32"):
            value = {"k": value}
        elif step == "set":
            value = {value}
        else:
            value = _WRAP[step](value)
    return value


# -- frames by hand --------------------------------------------------------------------

SER_MSGPACK = 2
COMPRESSED = 0x01
ENCRYPTED = 0x02


def plain_frame(ser: int, flags: int, body: bytes) -> bytes:
    """An unencrypted frame: header, payload, xxh3-64 seeded with header[2:10]."""
    header = b"NC\x01" + bytes((ser, flags, 0)) + len(body).to_bytes(4, "little")
    seed = int.from_bytes(header[2:10], "little")
    return header + body + xxhash.xxh3_64_intdigest(body, seed).to_bytes(8, "little")


def sealed_frame(
    aes_key: bytes, key_id: int, cache_key: str, ser: int, flags: int, body: bytes
) -> bytes:
    """An encrypted frame: header, nonce, AES-256-GCM over (header + cache key)."""
    nonce = bytes(range(12))
    header = b"NC\x01" + bytes((ser, flags | ENCRYPTED, key_id))
    header += (12 + len(body) + 16).to_bytes(4, "little")
    return header + nonce + AESGCM(aes_key).encrypt(nonce, body, header + cache_key.encode())
