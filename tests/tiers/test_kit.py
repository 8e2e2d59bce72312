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


def test_present(kit: Any) -> None:
    values = [b"1", None, b"", None, b"5", b"6"]
    assert kit.present(NAMES, values) == {
        n: v for n, v in zip(NAMES, values, strict=True) if v is not None
    }
    with pytest.raises(ValueError, match="differ in length"):
        kit.present(["a"], [])
