"""Helpers shared by the codec tests (imported by their conftest and test modules)."""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest

from novacache.codec import CodecAPI, PureCodec

FRAMINGS = ("compiled", "pure")
KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))


def load_codec_class(name: str) -> type[Any]:
    """Return the ``Codec`` class on the framing ``name`` ("compiled" or "pure").

    When the compiled framing does not import: skip locally, fail when ``CI`` is set.
    """
    if name == "pure":
        return PureCodec
    try:
        module = importlib.import_module("novacache._codec")
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but novacache._codec does not import: {exc!r}", pytrace=False)
        pytest.skip(f"novacache._codec is not built: {exc}")
    return type("CompiledCodec", (CodecAPI, module.FrameEngine), {})


class CountingNonce:
    """A deterministic nonce source (tests only: real nonces come from os.urandom)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, size: int) -> bytes:
        self.n += 1
        return self.n.to_bytes(size, "little")
