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


def test_keys_without_utf8_are_refused(kit: Any) -> None:
    """A lone surrogate has no UTF-8: refused while the keys are built (before any I/O),
    the first bad key in order deciding the error."""
    with pytest.raises(UnicodeEncodeError):
        kit.prefixed("p:", ["ok", "bad\ud800"])
    with pytest.raises(UnicodeEncodeError):
        kit.prefixed("\ud800", ["ok"])
    with pytest.raises(UnicodeEncodeError):
        kit.prefixed("p:", ["bad\ud800", 1])
    with pytest.raises(TypeError, match="a key must be str"):
        kit.prefixed("p:", [1, "bad\ud800"])
    with pytest.raises(UnicodeEncodeError):
        kit.encoded(b"p:", ["ok", "bad\ud800"])
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
