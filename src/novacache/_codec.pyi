"""Type stub of the compiled framing; the pure twin is ``novacache.codec.frame``."""

from collections.abc import Callable
from typing import Any

from typing_extensions import disjoint_base

from .codec.crypto import KeyRing

MAGIC: bytes
FORMAT_VERSION: int
HEADER_SIZE: int
TRAILER_SIZE: int
NONCE_SIZE: int
TAG_SIZE: int
MAX_PAYLOAD: int

def pack_plain(ser: int, flags: int, payload: bytes) -> bytes: ...

@disjoint_base
class FrameEngine:
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
    ) -> None: ...
    def encode(self, key: str, value: Any) -> bytes: ...
    def decode(self, key: str, frame: Any) -> Any: ...

MAX_DEPTH: int
HAS_MARKS: int
HAS_OLD: int

def check_nesting(value: Any, limit: int = ...) -> None: ...
def scan_msgpack(data: bytes, limit: int) -> int: ...
