"""Selects the implementation of the framing: compiled (``novacache._codec``) or pure twin.

The framing includes the two nesting checks: ``check_nesting`` (a value, before it is
encoded) and ``scan_msgpack`` (a msgpack payload, before it is decoded); their pure
twins are in :mod:`novacache.codec.nesting` and :mod:`novacache.codec.msgpack_layout`.

The compiled module is used when it imports. The pure twin (:mod:`novacache.codec.frame`)
is used when ``NOVACACHE_NO_EXTENSIONS`` is set to a non-empty value other than ``0``, on
interpreters other than CPython, or when the extension is missing; ``IMPORT_ERROR`` then
keeps the reason. Type checkers always see the twin, which carries the annotations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._select import NO_EXTENSIONS

__all__ = [
    "IMPORT_ERROR",
    "FrameEngine",
    "check_nesting",
    "compiled",
    "pack_plain",
    "scan_msgpack",
]

IMPORT_ERROR: ImportError | None = None

if TYPE_CHECKING:
    from .frame import FrameEngine, pack_plain
    from .msgpack_layout import scan as scan_msgpack
    from .nesting import check_nesting

    compiled: bool
else:
    compiled = False
    if not NO_EXTENSIONS:
        try:
            from .._codec import FrameEngine, check_nesting, pack_plain, scan_msgpack

            compiled = True
        except ImportError as exc:  # the wheel was built pure, or the build failed
            IMPORT_ERROR = exc
    if not compiled:
        from .frame import FrameEngine, pack_plain
        from .msgpack_layout import scan as scan_msgpack
        from .nesting import check_nesting
