"""lz4 block compression for frame payloads, bounded on the way back.

A compressed payload is ``uncompressed size (u32, little-endian) | lz4 block``. The size
is written by us, not by lz4, so :func:`decompress` can refuse a payload that claims to
expand beyond ``max_size`` before anything is allocated for it (a decompression bomb).
"""

from __future__ import annotations

import lz4.block  # type: ignore[import-untyped]

from ..errors import CorruptFrame, FrameTooLarge

__all__ = ["compress", "decompress"]

_compress = lz4.block.compress
_decompress = lz4.block.decompress


def compress(data: bytes) -> bytes:
    """Return ``data`` as a size-prefixed lz4 block (the caller keeps it only if smaller)."""
    block: bytes = _compress(data, store_size=False)
    return len(data).to_bytes(4, "little") + block


def decompress(data: bytes, max_size: int) -> bytes:
    """Return the bytes that :func:`compress` turned into ``data``.

    Raises :class:`~novacache.errors.FrameTooLarge` when the declared size is above
    ``max_size`` and :class:`~novacache.errors.CorruptFrame` when the block is not valid
    lz4 or does not expand to exactly the declared size.
    """
    if len(data) < 5:
        raise CorruptFrame("compressed payload is truncated")
    size = int.from_bytes(data[:4], "little")
    if size > max_size:
        raise FrameTooLarge(f"payload declares {size} bytes uncompressed, above max_size")
    try:
        out: bytes = _decompress(memoryview(data)[4:], uncompressed_size=size)
    except lz4.block.LZ4BlockError as exc:
        raise CorruptFrame(f"invalid lz4 block: {exc}") from None
    if len(out) != size:
        raise CorruptFrame("lz4 block does not expand to its declared size")
    return out
