"""lz4 block compression for frame payloads.

A compressed payload is ``uncompressed size (u32, little-endian) | lz4 block``: the
``store_size`` format of ``lz4.block``. The framing (both twins) reads that size first and
refuses a payload that claims to expand beyond ``max_size`` with
:class:`~novacache.errors.FrameTooLarge` before :func:`decompress` allocates anything
(a decompression bomb), and checks the result has exactly that size.

Note that :func:`compress` does not call ``lz4.block.compress``: that function keeps a
256 KiB lz4 state on the C stack (its fast and high-compression states share one stack
slot), which kills any thread whose stack is 256 KiB, the smallest Python lets a user set
(:func:`threading.stack_size`). ``lz4.frame.compress`` keeps about 16 KiB there and
makes the same kind of block: up to 4 MiB, the block is cut out of a one-block lz4 frame.
A larger payload is compressed by ``lz4.block`` on a short-lived thread whose stack is
sized for it. Decompression (``lz4.block.decompress``) needs little stack.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

import lz4.block  # type: ignore[import-untyped]
import lz4.frame  # type: ignore[import-untyped]

__all__ = ["compress", "decompress"]

_frame_compress = lz4.frame.compress
_block_compress = lz4.block.compress
_MAX_BLOCK = 4 * 1024 * 1024  # lz4.frame's largest block (BLOCKSIZE_MAX4MB)
_BLOCK_SIZE_ID = lz4.frame.BLOCKSIZE_MAX4MB
# A one-block frame with no checksum and no content size:
#   magic (4) | FLG BD HC (3) | block size (u32 LE; top bit: stored raw) | block | 0 (u32)
_HEADER = 7
_size_prefix = struct.Struct("<I").pack
_LARGE_STACK = 4 * 1024 * 1024
_stack_size_lock = threading.Lock()


def compress(data: bytes) -> bytes:
    """Return ``data`` as a size-prefixed lz4 block, or ``data`` itself when lz4 cannot
    make it smaller (the encoder keeps a result only when it is shorter)."""
    n = len(data)
    if n > _MAX_BLOCK:
        return _compress_large(data)
    # Positional: data, level 0, block size, no content checksum, no block checksum,
    # independent blocks, no content size (keywords cost more than the call saves).
    framed: bytes = _frame_compress(data, 0, _BLOCK_SIZE_ID, False, False, False, False)
    if len(framed) < _HEADER + 8 or framed[_HEADER + 3] & 0x80:
        return data  # empty (no block), or stored raw: lz4 could not shrink it
    return _size_prefix(n) + framed[_HEADER + 4 : -4]


def _compress_large(data: bytes) -> bytes:
    # Note that threading.stack_size() is process-wide: it is raised only while this
    # thread is created (under a lock), then put back. A thread another part of the
    # program starts in that instant gets the larger stack, which does it no harm.
    result: list[bytes] = []
    worker = threading.Thread(
        target=lambda: result.append(_block_compress(data)), name="novacache-lz4", daemon=True
    )
    with _stack_size_lock:
        previous = threading.stack_size(_LARGE_STACK)
        try:
            worker.start()
        except RuntimeError:  # no new thread now (interpreter shutdown): store it raw
            return data
        finally:
            threading.stack_size(previous)
    worker.join()
    return result[0] if result else data


#: ``decompress(block) -> data``; call it only after checking the declared size.
decompress: Callable[[bytes], bytes] = lz4.block.decompress
