"""How deep a value may nest in a frame, and the checks that hold every frame to it.

A value nests one level deeper inside each ``list``, ``tuple``, ``dict`` (keys and
values), ``set``, ``frozenset`` and dataclass instance (its fields), and their
subclasses: ``[1]`` nests 1 deep, ``{"a": (1,)}`` 2 deep, a scalar 0. The codec takes at
most :data:`MAX_DEPTH` levels, both ways:

- :meth:`~novacache.Codec.encode` refuses a deeper value, or one that contains itself,
  with :class:`~novacache.errors.SerializerRefused` before any serializer runs;
- :meth:`~novacache.Codec.decode` refuses a msgpack or JSON frame that nests deeper with
  :class:`~novacache.errors.CorruptFrame` before anything is built from it.

Why a limit: the C code that serializes and hashes nested values (msgpack's packer,
``json``, ``hash`` of a tuple or of a frozen dataclass) recurses once per level on the
thread's C stack, and nothing in it checks how much stack is left. Python lets a thread
run on 256 KiB (:func:`threading.stack_size`); 128 levels leave that thread most of its
stack, whatever the value holds at each level. The manager's envelope takes one level,
so a value stored through :class:`~novacache.CacheManager` may nest 127 deep.

Both functions here are the pure-Python twins of the ones in ``novacache._codec``; each
framing uses its own, with the same results.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..errors import SerializerRefused

__all__ = ["MAX_DEPTH", "check_json_nesting", "check_nesting"]

#: The deepest a value may nest in a frame (see the module docstring for how to count).
MAX_DEPTH = 128

_LEAVES = frozenset({str, int, float, bool, bytes, type(None)})
_is_dataclass = dataclasses.is_dataclass
_fields = dataclasses.fields


def _children(obj: Any) -> Any:
    """What ``obj`` holds one level down, or ``None`` when it is not a container
    (the rare types: exact lists, tuples, sets and dicts are handled inline)."""
    if isinstance(obj, (list, tuple, set, frozenset)):
        return obj
    if isinstance(obj, dict):
        return (*obj.keys(), *obj.values())
    if _is_dataclass(obj) and not isinstance(obj, type):
        return tuple(getattr(obj, f.name) for f in _fields(obj))
    return None


def check_nesting(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`~novacache.errors.SerializerRefused` when ``value`` nests deeper than
    ``limit`` levels, or contains itself (it would nest without end).

    The walk goes level by level with a list, never by recursion, so it uses no more C
    stack for a deep value than for a flat one, and stops at ``limit + 1`` levels.
    """
    leaves = _LEAVES
    only_leaves = leaves.issuperset
    tp = type(value)
    if tp in leaves:
        return
    if limit >= 1 and (  # most values: one dict or list of leaves
        (tp is dict and only_leaves(map(type, value.values())) and only_leaves(map(type, value)))
        or (tp is list and only_leaves(map(type, value)))
    ):
        return
    level = [value]
    depth = 0
    while level:
        below: list[Any] = []
        extend = below.extend
        containers = False
        for obj in level:
            tp = type(obj)
            # Note that a container of leaves only (most of them) is passed by one
            # issuperset over map(type, ...), which runs in C, not item by item here.
            if tp is dict:
                if not only_leaves(map(type, obj.values())):
                    extend([item for item in obj.values() if type(item) not in leaves])
                if not only_leaves(map(type, obj)):
                    extend([key for key in obj if type(key) not in leaves])
            elif tp is list or tp is tuple or tp is set or tp is frozenset:
                if not only_leaves(map(type, obj)):
                    extend([item for item in obj if type(item) not in leaves])
            else:
                items = _children(obj)
                if items is None:
                    continue
                extend([item for item in items if type(item) not in leaves])
            containers = True
        if not containers:
            return
        depth += 1
        if depth > limit:
            raise SerializerRefused(
                f"the value nests deeper than {limit} levels of containers, or contains "
                "itself: the codec refuses it (see novacache.codec.nesting)"
            )
        level = below


# A JSON string (escapes included) or one bracket: what the depth count must see.
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def check_json_nesting(data: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise ``ValueError`` when the JSON document ``data`` nests deeper than ``limit``.

    Brackets inside strings do not count. A document with at most ``limit`` opening
    brackets in all cannot nest deeper, so most documents are passed after two counts.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = 0
    for match in _JSON_TOKENS.finditer(data):
        c = data[match.start()]
        if c == 0x5B or c == 0x7B:  # [ {
            depth += 1
            if depth > limit:
                raise ValueError(f"the JSON document nests deeper than {limit} levels")
        elif c == 0x5D or c == 0x7D:  # ] }
            depth -= 1
