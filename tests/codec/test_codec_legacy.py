"""Old frames still decode; the msgpack scan and its compiled twin agree.

Until commit 91f1b99 a tuple, set, frozenset or dataclass was a msgpack extension holding
another msgpack document. Those frames stay in caches across an upgrade: the scan finds
them and ``msgpack_layout.upgrade`` rewrites them inline, so they decode to the same
values, with the same nesting limit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from codec_helpers import KEY
from hypothesis import given, settings
from hypothesis import strategies as st
from legacy_frames import FRAMES, VALUES, LegacyNode, LegacyPoint
from test_codec_roundtrip import values as round_trip_values
from test_codec_serializers import Point, exact

from _isolate import run_isolated
from novacache import KeyRing, errors
from novacache.codec import frame, msgpack_layout
from novacache.codec.serializers import MsgpackSerializer


@pytest.mark.parametrize("name", list(FRAMES))
def test_frames_written_before_the_inline_form_still_decode(codec_cls: Any, name: str) -> None:
    plain_hex, sealed_hex = FRAMES[name]
    plain = codec_cls(dataclasses=[LegacyPoint, LegacyNode])
    sealed = codec_cls(dataclasses=[LegacyPoint, LegacyNode], keyring=KeyRing({1: KEY}, active=1))
    assert exact(plain.decode("legacy", bytes.fromhex(plain_hex)), VALUES[name])
    assert exact(sealed.decode("legacy", bytes.fromhex(sealed_hex)), VALUES[name])


def test_the_inline_form_on_the_wire(codec_cls: Any) -> None:
    # (1, 2) is [<tuple mark>, 1, 2]: an array whose first item is ext 12 with no data.
    data = codec_cls(compression=None).encode("k", (1, 2))
    assert data[frame.HEADER_SIZE : -frame.TRAILER_SIZE] == bytes.fromhex("93c7000c0102")
    point = codec_cls(compression=None, dataclasses=[LegacyPoint]).encode("k", LegacyPoint(1, ()))
    name = f"{LegacyPoint.__module__}.{LegacyPoint.__qualname__}".encode()
    assert point[frame.HEADER_SIZE : -frame.TRAILER_SIZE] == (
        b"\x96\xc7\x00\x0f"
        + bytes((0xA0 | len(name),))
        + name
        + b"\xa1x\x01\xa4tags\x91\xc7\x00\x0c"
    )


# -- the old encoder, as it was, to write old frames of any value -------------------------

_NEW = MsgpackSerializer()


def _old_default(obj: Any) -> Any:
    def pack(value: Any) -> bytes:
        out: bytes = msgpack.packb(value, default=_old_default, strict_types=True)
        return out

    tp = type(obj)
    if tp in (tuple, set, frozenset):
        return msgpack.ExtType({tuple: 1, set: 2, frozenset: 3}[tp], pack(list(obj)))
    if dataclasses.is_dataclass(obj):
        name = f"{tp.__module__}.{tp.__qualname__}"
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return msgpack.ExtType(10, pack([name, fields]))
    # Everything else was written as it still is.
    return _NEW._default(obj)


@settings(max_examples=300, deadline=None)
@given(value=round_trip_values)
def test_any_old_frame_decodes_to_its_value(codec_cls: Any, value: Any) -> None:
    payload = msgpack.packb(value, default=_old_default, strict_types=True)
    data = frame.pack_plain(frame.SER_MSGPACK, 0, payload)
    assert exact(codec_cls(dataclasses=[Point]).decode("k", data), value)


def test_old_frames_keep_the_nesting_limit(codec_cls: Any) -> None:
    from nesting_cases import Node, payload

    for kind in ("old_tuple", "old_set", "old_frozenset", "old_dataclass", "old_mixed"):
        codec = codec_cls(dataclasses=[Node])
        codec.decode("k", frame.pack_plain(frame.SER_MSGPACK, 0, payload(kind, 128)))
        with pytest.raises(errors.CorruptFrame, match="nests deeper than 128"):
            codec.decode("k", frame.pack_plain(frame.SER_MSGPACK, 0, payload(kind, 129)))


@pytest.mark.parametrize(
    "body",
    [
        b"\xc7\x02\x01\x91",  # an old tuple cut short
        b"\xc7\x01\x01\x00",  # an old tuple that does not hold an array
        b"\xc7\x03\x01\x91\x00\x00",  # bytes after its array, inside the extension
        b"\xc7\x02\x0a\x91\x00",  # an old dataclass that is not [name, fields]
        b"\xc7\x04\x0a\x92\x00\x80",  # ... whose name is not a str
        b"\xc7\x05\x0a\x92\xa1x\x90",  # ... whose fields are not a map
        b"\xc7\x03\x01\x91\xc7\x00\x0c",  # a mark second in what becomes the array
        b"\xc7\x06\x01\xdd\xff\xff\xff\xff",  # more items than bytes
    ],
)
def test_broken_old_containers_are_corrupt(codec_cls: Any, body: bytes) -> None:
    with pytest.raises(errors.CorruptFrame):
        codec_cls().decode("k", frame.pack_plain(frame.SER_MSGPACK, 0, body))


# -- the scan's twins --------------------------------------------------------------------


def check_scans_agree() -> None:
    """The compiled scan and the pure walk agree on every payload and limit: the same
    flags, or both raise ValueError; the pure scan's shortcut changes no result."""
    from test_codec_hostile import forged_payloads

    from novacache import _codec

    def outcome(scan: Any, data: bytes, limit: int) -> Any:
        try:
            return scan(data, limit)
        except ValueError as exc:
            text = str(exc)
            return "deep" if "nests deeper" in text else "mark" if "mark" in text else "bad"

    @settings(max_examples=2000, deadline=None, database=None)
    @given(data=forged_payloads, limit=st.sampled_from([0, 1, 2, 5, 128]))
    def prop(data: bytes, limit: int) -> None:
        walk = outcome(lambda d, n: msgpack_layout._walk(d, n, None), data, limit)
        assert outcome(_codec.scan_msgpack, data, limit) == walk
        quick = outcome(msgpack_layout.scan, data, limit)
        # The shortcut passes malformed bytes the unpacker refuses anyway, nothing else.
        assert quick == walk or (quick == 0 and walk == "bad"), (quick, walk)

    prop()


def test_the_scans_agree_in_a_child() -> None:
    pytest.importorskip("novacache._codec")
    code = "import test_codec_legacy as t; t.check_scans_agree(); print('done')"
    run_isolated(code, stack_size=256 * 1024, timeout=600).check()
