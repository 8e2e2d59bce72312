"""Hypothesis round-trips over nested values, on both framings and every pipeline."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from codec_helpers import KEY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codec_serializers import Point, exact

from novacache import KeyRing

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.dates()
    | st.times()
    | st.timedeltas()
    | st.uuids()
    | st.decimals(allow_nan=False)
)
hashables = st.none() | st.booleans() | st.integers() | st.text() | st.binary() | st.uuids()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.lists(inner, max_size=6).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=6)
        | st.dictionaries(st.integers(), inner, max_size=4)
        | st.sets(hashables, max_size=6)
        | st.frozensets(hashables, max_size=4)
        | st.builds(
            Point, st.integers(), st.floats(allow_nan=False), st.lists(st.text()).map(tuple)
        )
    ),
    max_leaves=20,
)
keys = st.text(min_size=1, max_size=40)

PIPELINES = {
    "msgpack": {},
    "msgpack-lz4-always": {"compress_min": 0},
    "no-compression": {"compression": None},
    "encrypted": {"keyring": KeyRing({1: KEY}, active=1), "compress_min": 0},
    "pickle": {"serializer": "pickle", "pickle_key": b"k" * 32},
}
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("pipeline", list(PIPELINES))
@SETTINGS
@given(key=keys, value=values)
def test_round_trip(codec_cls: Any, pipeline: str, key: str, value: Any) -> None:
    codec = codec_cls(dataclasses=[Point], **PIPELINES[pipeline])
    assert exact(codec.decode(key, codec.encode(key, value)), value)


@SETTINGS
@given(key=keys, value=values)
def test_twins_agree_on_every_value(
    both_classes: tuple[type[Any], type[Any]], key: str, value: Any
) -> None:
    compiled_cls, pure_cls = both_classes
    a = compiled_cls(dataclasses=[Point], compress_min=0).encode(key, value)
    b = pure_cls(dataclasses=[Point], compress_min=0).encode(key, value)
    assert a == b


@SETTINGS
@given(key=keys, value=st.binary(max_size=3000) | st.text(max_size=1000))
def test_raw_values_round_trip(codec_cls: Any, key: str, value: Any) -> None:
    for codec in (codec_cls(compress_min=0), codec_cls(keyring=KeyRing({1: KEY}, active=1))):
        back = codec.decode(key, codec.encode(key, value))
        assert type(back) is type(value)
        assert back == value


@SETTINGS
@given(value=st.decimals(allow_nan=False) | st.datetimes() | st.uuids())
def test_scalar_extension_types(codec_cls: Any, value: Decimal | dt.datetime | uuid.UUID) -> None:
    codec = codec_cls()
    assert exact(codec.decode("k", codec.encode("k", value)), value)
