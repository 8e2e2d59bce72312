"""Serializers: the msgpack extension types, json, custom serializers, raw fast paths."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

import pytest

from novacache import errors
from novacache.codec import frame, register_serializer


@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Frozen:
    when: dt.datetime
    inner: Point


@dataclasses.dataclass(slots=True)
class Slotted:
    a: int
    b: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Unregistered:
    a: int


class Color(enum.IntEnum):
    RED = 1


TZ = dt.timezone(dt.timedelta(hours=5, minutes=30))
EXTENSION_VALUES: list[Any] = [
    (1, "a", (2.5, None)),
    (),
    {3, 4, "x"},
    frozenset({(1, 2)}),
    set(),
    dt.datetime(2024, 2, 29, 12, 30, 15, 123456),
    dt.datetime(2024, 2, 29, 12, 30, tzinfo=dt.UTC),
    dt.datetime(1, 1, 1, tzinfo=TZ),
    dt.date(1999, 12, 31),
    dt.time(23, 59, 59, 999999),
    dt.time(1, 2, tzinfo=TZ),
    dt.timedelta(days=-3, seconds=5, microseconds=7),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("3.14159265358979323846264338327950288"),
    Decimal("-0.00"),
    Decimal("Infinity"),
    2**64,
    -(2**63) - 1,
    10**300,
    -(10**5000),
    {"nested": [(1, {2}), {"d": dt.date(2020, 1, 1)}]},
    {(1, 2): "tuple key", 3: "int key", None: "none key"},
    Point(1, 2.5, ("a",)),
    Frozen(dt.datetime(2020, 5, 17), Point(0, 0.0)),
    Slotted(3, [1, 2]),
    [Point(i, i / 2) for i in range(3)],
]


def exact(a: Any, b: Any) -> bool:
    """Equal and of the same type, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(exact(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (set, frozenset, int)):
        return bool(a == b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exact(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(exact(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return bool(a == b) and str(a) == str(b)


@pytest.mark.parametrize("value", EXTENSION_VALUES, ids=lambda v: type(v).__name__)
def test_msgpack_extension_types_round_trip(codec_cls: Any, value: Any) -> None:
    codec = codec_cls(dataclasses=[Point, Frozen, Slotted])
    data = codec.encode("k", value)
    assert data[3] == frame.SER_MSGPACK
    assert exact(codec.decode("k", data), value)


def test_fixed_offset_timezone_comes_back_as_an_offset(codec_cls: Any) -> None:
    value = dt.datetime(2024, 1, 1, tzinfo=TZ)
    back = codec_cls().decode("k", codec_cls().encode("k", value))
    assert back == value
    assert back.utcoffset() == value.utcoffset()


def test_subclasses_come_back_as_their_base(codec_cls: Any) -> None:
    Pair = collections.namedtuple("Pair", "a b")
    codec = codec_cls()
    cases: list[tuple[Any, Any]] = [
        (Color.RED, 1),
        (collections.OrderedDict(a=1), {"a": 1}),
        (Pair(1, 2), (1, 2)),
        (bytearray(b"ab"), b"ab"),
    ]
    for value, expected in cases:
        assert exact(codec.decode("k", codec.encode("k", value)), expected)


def test_unregistered_dataclass_is_refused_both_ways(codec_cls: Any) -> None:
    with pytest.raises(errors.SerializerRefused, match="not registered"):
        codec_cls().encode("k", Unregistered(1))
    data = codec_cls(dataclasses=[Point]).encode("k", Point(1, 2.0))
    with pytest.raises(errors.SerializerRefused, match="not registered"):
        codec_cls().decode("k", data)


def test_dataclass_field_mismatch_is_corrupt(codec_cls: Any) -> None:
    name = f"{Point.__module__}.{Point.__qualname__}"
    import msgpack

    payload = msgpack.packb(
        msgpack.ExtType(10, msgpack.packb([name, {"x": 1, "evil": 2}])), use_bin_type=True
    )
    with pytest.raises(errors.CorruptFrame):
        codec_cls(dataclasses=[Point]).decode("k", frame.pack_plain(frame.SER_MSGPACK, 0, payload))


def test_unknown_extension_code_is_corrupt(codec_cls: Any) -> None:
    import msgpack

    payload = msgpack.packb(msgpack.ExtType(99, b"x"))
    with pytest.raises(errors.CorruptFrame):
        codec_cls().decode("k", frame.pack_plain(frame.SER_MSGPACK, 0, payload))


def test_raw_bytes_and_str_skip_the_serializer(codec_cls: Any) -> None:
    calls: list[Any] = []

    class Spy:
        id = 70
        name = "spy-raw"

        def dumps(self, value: Any) -> bytes:
            calls.append(value)
            return b"x"

        def loads(self, data: bytes) -> Any:
            calls.append(data)
            return None

    codec = codec_cls(serializer=Spy())
    assert codec.encode("k", b"raw")[3] == frame.SER_BYTES
    assert codec.encode("k", "text")[3] == frame.SER_STR
    assert codec.decode("k", codec.encode("k", b"raw")) == b"raw"
    assert codec.decode("k", codec.encode("k", "text")) == "text"
    assert calls == []
    codec.encode("k", 1)
    assert calls == [1]


def test_json_serializer(codec_cls: Any) -> None:
    codec = codec_cls(serializer="json")
    data = codec.encode("k", {"a": [1, 2.5, None, True, "\u00e9"]})
    assert data[3] == frame.SER_JSON
    assert codec.decode("k", data) == {"a": [1, 2.5, None, True, "\u00e9"]}
    assert codec.decode("k", codec.encode("k", (1, 2))) == [1, 2]
    # A msgpack codec reads json frames: frames carry their serializer id.
    assert codec_cls().decode("k", data) == {"a": [1, 2.5, None, True, "\u00e9"]}


class Upper:
    """A custom serializer: ASCII text stored upper-cased."""

    id = 200
    name = "upper"

    def dumps(self, value: Any) -> bytes:
        if not isinstance(value, list):
            raise TypeError("lists only")
        return ",".join(value).upper().encode()

    def loads(self, data: bytes) -> Any:
        return data.decode().split(",")


def test_custom_serializer_registration(codec_cls: Any) -> None:
    from novacache.codec import serializers

    try:
        register_serializer(Upper())
        codec = codec_cls(serializer="upper")
        data = codec.encode("k", ["a", "b"])
        assert data[3] == 200
        assert codec.decode("k", data) == ["A", "B"]
        assert codec_cls().decode("k", data) == ["A", "B"]  # registered: readable by all
        with pytest.raises(errors.SerializerRefused):
            codec.encode("k", {"not": "a list"})
        with pytest.raises(errors.ConfigurationError):
            register_serializer(Upper())
    finally:
        serializers._CUSTOM.pop(200, None)


def test_custom_serializer_ids_are_checked() -> None:
    class Bad:
        id = 5
        name = "bad"

        def dumps(self, value: Any) -> bytes:
            return b""

        def loads(self, data: bytes) -> Any:
            return None

    with pytest.raises(errors.ConfigurationError):
        register_serializer(Bad())
    with pytest.raises(errors.ConfigurationError):
        register_serializer(object())  # type: ignore[arg-type]


# -- the msgpack serializer's Packer (one per thread, reused) ------------------------------


def test_a_failed_pack_leaves_nothing_behind() -> None:
    """The thread's Packer is reused: a value it refuses half-way (after packing some of
    it) must not leave bytes in front of the next value."""
    from novacache.codec.serializers import MsgpackSerializer

    ser = MsgpackSerializer()
    good = {"a": [1, 2, 3], "b": "x"}
    expected = ser.dumps(good)
    for bad in ([1, 2, object()], {"k": "\udc80"}, [good, {1, 2, object()}]):
        with pytest.raises((TypeError, errors.SerializerRefused)):
            ser.dumps(bad)
        assert ser.dumps(good) == expected
        assert ser.loads(ser.dumps(good)) == good


def test_packers_are_per_thread() -> None:
    """Threads encoding at once through one serializer each get their own values back."""
    import sys
    import threading

    from novacache.codec.serializers import MsgpackSerializer

    ser = MsgpackSerializer()
    errors_seen: list[BaseException] = []
    start = threading.Barrier(4)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(3000):
                value = {"thread": t, "i": i, "pad": "x" * (i % 50), "t": (t, i)}
                assert ser.loads(ser.dumps(value)) == value
        except BaseException as exc:  # reported below
            errors_seen.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors_seen == []


def test_a_reentrant_dumps_gets_its_own_packer() -> None:
    """A hook that encodes while the thread's Packer is in use (a dataclass whose field
    is filled by a property that itself encodes) does not share its buffer."""
    from novacache.codec.serializers import MsgpackSerializer

    inner: list[bytes] = []

    @dataclasses.dataclass
    class Node:
        name: str

        def __getattribute__(self, attr: str) -> Any:
            if attr == "name":
                inner.append(ser.dumps({"inner": [1, 2, 3]}))
            return object.__getattribute__(self, attr)

    ser = MsgpackSerializer(dataclasses=[Node])
    data = ser.dumps([Node("n"), 4])
    assert ser.loads(data) == [Node("n"), 4]
    assert inner
    assert ser.loads(inner[0]) == {"inner": [1, 2, 3]}
