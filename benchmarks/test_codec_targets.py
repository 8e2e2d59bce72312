"""The two speed targets of the codec (issue 4), as pytest-benchmark groups.

- ``raw 100 B``: encode + decode of a 100-byte ``bytes`` value, no encryption
  (target: 0.5 us together, compiled framing).
- ``1 KiB full pipeline``: msgpack + lz4 + AES-GCM + framing through the codec, beside
  the bare library calls it makes (target: at most 1.10x the bare calls).

The timings are reported, never asserted: compare the groups' rows.
"""

from __future__ import annotations

from typing import Any

import pytest

from novacache.benchmark.codec_bench import KEY, _bare_1k, make_value
from novacache.codec import KeyRing, PureCodec, compiled


def _classes() -> list[Any]:
    out: list[Any] = [pytest.param(PureCodec, id="codec-pure")]
    if compiled:
        from novacache.codec import Codec

        out.insert(0, pytest.param(Codec, id="codec"))
    return out


@pytest.mark.parametrize("cls", _classes())
def test_raw_100(benchmark: Any, cls: Any) -> None:
    codec = cls()
    value = make_value("bytes", 100)
    frame = codec.encode(KEY, value)
    encode, decode = codec.encode, codec.decode

    def both() -> Any:
        encode(KEY, value)
        return decode(KEY, frame)

    benchmark.group = "codec target: raw 100 B encode + decode"
    assert benchmark(both) == value


def test_1k_bare_calls(benchmark: Any) -> None:
    value = make_value("dict", 1024)
    benchmark.group = "codec target: 1 KiB msgpack + lz4 + AES-GCM"
    assert benchmark(_bare_1k(value)) == value


@pytest.mark.parametrize("cls", _classes())
def test_1k_full_pipeline(benchmark: Any, cls: Any) -> None:
    value = make_value("dict", 1024)
    codec = cls(keyring=KeyRing({1: bytes(range(32))}, active=1), compress_min=0)
    encode, decode = codec.encode, codec.decode

    def both() -> Any:
        return decode(KEY, encode(KEY, value))

    benchmark.group = "codec target: 1 KiB msgpack + lz4 + AES-GCM"
    assert benchmark(both) == value
