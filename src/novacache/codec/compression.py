"""lz4 block compression for frame payloads.

A compressed payload is ``uncompressed size (u32, little-endian) | lz4 block``: the
``store_size`` format of ``lz4.block``. The framing (both twins) reads that size first and
refuses a payload that claims to expand beyond ``max_size`` with
:class:`~novacache.errors.FrameTooLarge` before :func:`decompress` allocates anything
(a decompression bomb), and checks the result has exactly that size.
"""

from __future__ import annotations

from collections.abc import Callable

import lz4.block  # type: ignore[import-untyped]

__all__ = ["compress", "decompress"]

#: ``compress(data) -> size-prefixed lz4 block``; the encoder keeps it only if smaller.
compress: Callable[[bytes], bytes] = lz4.block.compress

#: ``decompress(block) -> data``; call it only after checking the declared size.
decompress: Callable[[bytes], bytes] = lz4.block.decompress
