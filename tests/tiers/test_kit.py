"""The bulk-path helpers of the tiers: the compiled twin equals the pure one."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import pytest

from novacache.tiers import _kit

NAMES = ["a", "user:1", "ключ", "键/子键", "emoji:\U0001f600", ""]


def _twins() -> list[Any]:
    params: list[Any] = [pytest.param(_kit, id="pure")]
    try:
        from novacache import _tierkit
    except ImportError:
        if os.environ.get("CI"):
            raise
        _tierkit = None
    if _tierkit is not None:
        params.append(pytest.param(_tierkit, id="compiled"))
    return params


@pytest.fixture(params=_twins())
def kit(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    if module is _kit:
        return _PureKit  # type: ignore[return-value]  # the pure functions, whatever is selected
    return module


class _PureKit:
    prefixed = staticmethod(_kit._prefixed)
    encoded = staticmethod(_kit._encoded)
    present = staticmethod(_kit._present)


def test_prefixed_and_encoded(kit: Any) -> None:
    assert kit.prefixed("ns:", NAMES) == ["ns:" + n for n in NAMES]
    assert kit.encoded(b"ns:", NAMES) == [b"ns:" + n.encode() for n in NAMES]
    assert kit.prefixed("", []) == []
    assert kit.encoded(b"", ["x"]) == [b"x"]


@pytest.mark.parametrize("bad", [1, b"bytes", None])
def test_non_str_keys_are_refused(kit: Any, bad: Any) -> None:
    with pytest.raises(TypeError, match="a key must be str"):
        kit.prefixed("p", ["ok", bad])
    with pytest.raises(TypeError, match="a key must be str"):
        kit.encoded(b"p", ["ok", bad])


def test_keys_without_utf8_come_as_their_bytes(kit: Any) -> None:
    """A lone surrogate has no strict UTF-8: such a key comes as its bytes (UTF-8 with
    "surrogatepass", the tiers' one key encoding) and every other key as before; a
    non-str key is still refused, the first bad key in order deciding."""
    assert kit.prefixed("p:", ["ok", "bad\ud800", "\u00e9"]) == [
        "p:ok",
        b"p:bad\xed\xa0\x80",
        "p:\u00e9",
    ]
    assert kit.prefixed("\ud800", ["ok"]) == [b"\xed\xa0\x80ok"]
    assert kit.encoded(b"p:", ["ok", "bad\udcff"]) == [b"p:ok", b"p:bad\xed\xb3\xbf"]
    with pytest.raises(TypeError, match="a key must be str"):
        kit.prefixed("p:", ["bad\ud800", 1])
    with pytest.raises(TypeError, match="a key must be str"):
        kit.encoded(b"p:", ["bad\ud800", 1])
    with pytest.raises(TypeError, match="a key must be str"):
        kit.encoded(b"p:", [1, "bad\ud800"])
    assert kit.prefixed("\u00e9:", NAMES) == ["\u00e9:" + n for n in NAMES]
    assert kit.prefixed("\ud800", []) == []


def test_prefixed_makes_exact_str(kit: Any) -> None:
    class Sub(str):
        pass

    keys = kit.prefixed("p:", [Sub("a"), "b"])
    assert keys == ["p:a", "p:b"]
    assert all(type(k) is str for k in keys)


def test_present(kit: Any) -> None:
    values = [b"1", None, b"", None, b"5", b"6"]
    assert kit.present(NAMES, values) == {
        n: v for n, v in zip(NAMES, values, strict=True) if v is not None
    }
    with pytest.raises(ValueError, match="differ in length"):
        kit.present(["a"], [])
