"""Codec encode/decode beside ``pickle`` and a naive Python pipeline, per value and size.

The implementations and values are those of ``novacache bench``
(:mod:`novacache.benchmark.codec_bench`); ``benchmark.group`` puts peers side by side,
and ``extra_info["wire_bytes"]`` records the size of what would be stored.

    pytest benchmarks/test_codec_pipeline.py
    pytest benchmarks/test_codec_pipeline.py --benchmark-disable -q   # smoke test
"""

from __future__ import annotations

from typing import Any

import pytest

from novacache.benchmark.codec_bench import SIZES, make_value, pipelines

IMPLS = ("codec", "codec-pure", "pickle", "naive")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["dict", "bytes"])
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "aes"])
@pytest.mark.parametrize("op", ["encode", "decode"])
def test_codec(benchmark: Any, op: str, encrypted: bool, kind: str, size: int, impl: str) -> None:
    available = pipelines(encrypted)
    if impl not in available:
        pytest.skip(f"{impl}: not available{' with encryption' if encrypted else ''}")
    encode, decode = available[impl]
    value = make_value(kind, size)
    frame = encode(value)
    assert decode(frame) == value
    benchmark.group = f"codec {op}: {kind} {size} B{' + AES-GCM' if encrypted else ''}"
    benchmark.extra_info["wire_bytes"] = len(frame)
    if op == "encode":
        benchmark(encode, value)
    else:
        benchmark(decode, frame)
