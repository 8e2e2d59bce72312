"""Hostile input for ``Codec.encode`` and ``Codec.decode`` (hypothesis).

The contract: a call works, or it raises a typed :mod:`novacache.errors` error (a
:class:`~novacache.errors.CodecError`); whatever encodes decodes to an equal value. Never
a crash, never a raw library exception. The inputs: values nested deep in every
container the codec supports, values that contain themselves, large values, odd strings
(lone surrogates), and forged frames (noise, hand-made msgpack nested arbitrarily deep,
old nested containers, marks out of place, behind a valid checksum or inside a valid
AES-GCM seal).

The properties that could crash the interpreter run in a child process on a 256 KiB
thread stack (``tests/_isolate.py``): the test calls the property there, and a
falsifying example (stderr) or a signal fails it.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from codec_helpers import FRAMINGS, KEY, load_codec_class
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nesting_cases import NODE_NAME, SER_MSGPACK, Node, build, plain_frame, sealed_frame

from _isolate import run_isolated
from novacache import KeyRing, errors
from novacache.codec import MAX_DEPTH

PICKLE_KEY = b"p" * 32
CHILD_STACK = 256 * 1024
CHILD_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# -- values ---------------------------------------------------------------------------

odd_text = st.text() | st.lists(
    st.sampled_from(["\ud800", "\udfff", "\udc80", "a", "\u00e9", "\U0001f600", "\x00", "'"]),
    max_size=8,
).map("".join)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | odd_text
    | st.binary(max_size=64)
    | st.datetimes()
    | st.timedeltas()
    | st.uuids()
    | st.decimals(allow_nan=False)
)
hashables = st.none() | st.integers() | st.text(max_size=8) | st.binary(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.dictionaries(odd_text, inner, max_size=5)
        | st.dictionaries(st.tuples(hashables, hashables), inner, max_size=3)
        | st.sets(hashables, max_size=5)
        | st.frozensets(hashables, max_size=5)
        | inner.map(Node)
    ),
    max_leaves=12,
)
# A chain of containers of any kinds, nested up to far beyond the limit, around a value.
KINDS = ("list", "tuple", "dict", "frozenset", "dataclass")
deep_values = st.builds(
    lambda kinds, core: _chain(kinds, core),
    st.lists(st.sampled_from(KINDS), min_size=1, max_size=3 * MAX_DEPTH),
    values,
)
deep_builtins = st.sampled_from(["list", "tuple", "dict", "set", "mix", "dict_key"]).flatmap(
    lambda kind: st.integers(3, 400).map(lambda depth: build(kind, depth))
)


def _chain(kinds: list[str], core: Any) -> Any:
    # Note that only hashables go in a frozenset or a frozen dataclass, and that hashing
    # a chain of dataclasses recurses per level on the C stack (about 540 bytes each):
    # the chain puts a frozenset (whose hash is cached) at most 100 of them apart, so
    # this test never hashes deeper than a 256 KiB stack allows, as a program must not.
    try:
        hash(core)
        hashable = True
    except TypeError:
        hashable = False
    value, nodes = core, 0
    for kind in kinds:
        if kind in ("frozenset", "dataclass") and not hashable:
            kind = "tuple"
        if kind == "frozenset" and nodes > 100:
            kind = "list"
        if kind in ("list", "dict"):
            hashable = False
        nodes = 0 if kind == "frozenset" else nodes + (kind == "dataclass")
        value = {
            "list": lambda v: [v],
            "tuple": lambda v: (v,),
            "dict": lambda v: {"k": v},
            "frozenset": lambda v: frozenset([v]),
            "dataclass": Node,
        }[kind](value)
    return value


def _depth(value: Any) -> int:
    """How deep ``value`` nests, counted as the codec counts (iteratively)."""
    depth, level = 0, [value]
    while level:
        below: list[Any] = []
        containers = False
        for obj in level:
            if isinstance(obj, dict):
                below += [*obj.keys(), *obj.values()]
            elif isinstance(obj, (list, tuple, set, frozenset)):
                below += list(obj)
            elif isinstance(obj, Node):
                below.append(obj.value)
            else:
                continue
            containers = True
        depth += containers
        level = below
    return depth


def _self_referencing(draw: Any) -> Any:
    # A list, dict or dataclass that holds itself, directly or a few levels down.
    inner = draw(values)
    root = draw(st.sampled_from(["list", "dict", "node"]))
    loop: Any
    if root == "list":
        loop = [inner]
        loop.append(loop if draw(st.booleans()) else [{"k": (1, loop)}])
    elif root == "dict":
        loop = {"v": inner}
        loop["self"] = loop if draw(st.booleans()) else [{"again": loop}]
    else:
        loop = Node([inner])
        loop.value.append((loop,))
    return loop


self_referencing = st.composite(lambda draw: _self_referencing(draw))()


def _codecs(framing: str) -> dict[str, Any]:
    cls = load_codec_class(framing)
    ring = KeyRing({1: KEY, 2: bytes(32)}, active=1)
    return {
        "msgpack": cls(dataclasses=[Node], compress_min=32),
        "json": cls(serializer="json"),
        "pickle": cls(serializer="pickle", pickle_key=PICKLE_KEY, dataclasses=[Node]),
        "aes": cls(dataclasses=[Node], keyring=ring, compress_min=0),
    }


def _attempt(call: Any, *args: Any) -> tuple[Any, errors.CodecError | None]:
    """``(result, None)``, or ``(None, the CodecError it raised)``: anything else raises."""
    try:
        return call(*args), None
    except errors.CodecError as exc:
        return None, exc


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return bool(a == b)


def check_values(framing: str) -> None:
    """Every value encodes (then decodes to an equal value) or is refused with a
    CodecError; deep ones are refused exactly when they nest deeper than the limit."""
    codecs = _codecs(framing)

    @CHILD_SETTINGS
    @given(
        value=values | deep_values | deep_builtins | self_referencing,
        name=st.sampled_from(sorted(codecs)),
        key=odd_text,
    )
    def prop(value: Any, name: str, key: str) -> None:
        codec = codecs[name]
        frame, refused = _attempt(codec.encode, key, value)
        if refused is not None:
            # Deep and self-referencing values: the depth property below says when.
            assert isinstance(refused, (errors.SerializerRefused, errors.ValueTooLarge))
            return
        back = codec.decode(key, frame)
        if name != "json":  # json is lossy on purpose (tuples, keys, ...)
            assert _same(back, value), (name, value, back)

    @CHILD_SETTINGS
    @given(value=deep_values | deep_builtins, name=st.sampled_from(["msgpack", "pickle"]))
    def depth_prop(value: Any, name: str) -> None:
        codec = codecs[name]
        frame, refused = _attempt(codec.encode, "k", value)
        too_deep = _depth(value) > MAX_DEPTH
        if refused is not None:
            # Refused for its depth exactly when too deep (else: a lone surrogate).
            assert isinstance(refused, errors.SerializerRefused)
            assert ("nests deeper" in str(refused)) == too_deep, refused
            return
        assert not too_deep
        assert codec.decode("k", frame) == value

    prop()
    depth_prop()


# -- forged frames ----------------------------------------------------------------------

# Pieces of msgpack a forger would use: container headers (short and long, with counts
# that lie), scalars, inline marks, old nested extensions, other extensions, 0xc1.
PIECES = [
    b"\x91", b"\x92", b"\x9f", b"\x90", b"\x81", b"\x80", b"\x8f", b"\xdc\x00\x02",
    b"\xdd\xff\xff\xff\xff", b"\xde\x00\x01", b"\xdf\x00\x00\x00\x02", b"\xc0", b"\xc2",
    b"\x00", b"\x7f", b"\xff", b"\xa1k", b"\xd9\x03abc", b"\xc4\x01x", b"\xcc\xff",
    b"\xcb" + bytes(8), b"\xd3" + bytes(8), b"\xc7\x00\x0c", b"\xc7\x00\x0d",
    b"\xc7\x00\x0e", b"\xc7\x00\x0f", b"\xd4\x0c\x00", b"\xc7\x02\x01\x91",
    b"\xc7\x01\x02\x90", b"\xc9\x00\x00\x10\x00\x01", b"\xd5\x0a\x92\xa0", b"\xd6\x07\x93\x01",
    b"\xc7\x10\x04" + b"2020-01-01T00:00", b"\xd8\x08" + bytes(16), b"\xd4\x63\x00",
    b"\xd6\xff" + bytes(4), b"\xc1",
]  # fmt: skip
# One level of nesting, to repeat: arrays, maps, tuples, frozensets, dataclasses.
LEVELS = [
    b"\x91", b"\x81\xa1k", b"\x92\xc7\x00\x0c", b"\x92\xc7\x00\x0e", b"\xdd\x00\x00\x00\x01",
    b"\x94\xc7\x00\x0f" + bytes((0xA0 | len(NODE_NAME),)) + NODE_NAME.encode() + b"\xa5value",
]  # fmt: skip


def _old_nest(codes: list[int], core: bytes) -> bytes:
    body = core
    for code in codes:
        inner = b"\x91" + body
        n = len(inner)
        if n < 0x100:
            body = b"\xc7" + bytes((n, code)) + inner
        else:
            body = b"\xc9" + n.to_bytes(4, "big") + bytes((code,)) + inner
    return body


msgpack_pieces = st.lists(st.sampled_from(PIECES) | st.binary(max_size=3), max_size=40).map(
    b"".join
)
forged_payloads = (
    st.binary(max_size=200)
    | msgpack_pieces
    | st.builds(
        lambda head, level, n, tail: head + level * n + tail,
        msgpack_pieces,
        st.sampled_from(LEVELS),
        st.integers(0, 2000),
        msgpack_pieces,
    )
    | st.builds(
        _old_nest,
        st.lists(st.sampled_from([1, 2, 3, 10, 7, 12]), max_size=300),
        msgpack_pieces,
    )
)


def _frames(draw: Any) -> bytes:
    body = draw(forged_payloads)
    how = draw(st.sampled_from(["plain", "lz4", "aes", "noise", "header"]))
    ser = draw(st.sampled_from([SER_MSGPACK, SER_MSGPACK, 0, 1, 3, 4, 200]))
    if how == "noise":
        return body
    if how == "header":
        return b"NC\x01" + body
    flags = 0
    if how == "lz4":  # a size prefix, then the payload stored as lz4 literals only
        flags = 1
        body = len(body).to_bytes(4, "little") + _lz4_literals(body)
    if how == "aes":
        return sealed_frame(KEY, 1, "k", ser, draw(st.sampled_from([0, 1])), body)
    return plain_frame(ser, flags, body)


def _lz4_literals(data: bytes) -> bytes:
    # An lz4 block of one literal run (the token's high nibble, then 255s): valid lz4
    # that a decompressor expands to ``data``, written without lz4.block.compress.
    n = len(data)
    if n < 15:
        return bytes((n << 4,)) + data
    rest = n - 15
    return b"\xf0" + b"\xff" * (rest // 255) + bytes((rest % 255,)) + data


forged_frames = st.composite(lambda draw: _frames(draw))()


def check_forged_frames(framing: str) -> None:
    """Every forged frame decodes, or raises a CodecError; what decodes re-encodes (or is
    refused with a CodecError) and decodes again to an equal value."""
    codecs = _codecs(framing)

    @CHILD_SETTINGS
    @given(frame=forged_frames, name=st.sampled_from(sorted(codecs)))
    def prop(frame: bytes, name: str) -> None:
        codec = codecs[name]
        try:
            value = codec.decode("k", frame)
        except errors.CodecError:
            return
        try:
            again = codec.encode("k", value)
        except errors.CodecError:
            return
        if name != "json":
            assert _same(codec.decode("k", again), value)

    prop()


def check_twins_agree() -> None:
    """Both framings give the same outcome for every forged frame."""
    compiled, pure = _codecs("compiled"), _codecs("pure")

    def outcome(codec: Any, frame: bytes) -> Any:
        try:
            return ("ok", codec.decode("k", frame))
        except errors.CodecError as exc:
            return (type(exc).__name__, None)

    @CHILD_SETTINGS
    @given(frame=forged_frames, name=st.sampled_from(sorted(compiled)))
    def prop(frame: bytes, name: str) -> None:
        a, b = outcome(compiled[name], frame), outcome(pure[name], frame)
        assert a[0] == b[0], (a, b)
        assert _same(a[1], b[1]), (a, b)

    prop()


@pytest.mark.parametrize("framing", FRAMINGS)
def test_hostile_values_in_a_child(framing: str) -> None:
    code = f"import test_codec_hostile as t; t.check_values({framing!r}); print('done')"
    run_isolated(code, stack_size=CHILD_STACK, timeout=600).check()


@pytest.mark.parametrize("framing", FRAMINGS)
def test_forged_frames_in_a_child(framing: str) -> None:
    code = f"import test_codec_hostile as t; t.check_forged_frames({framing!r}); print('done')"
    run_isolated(code, stack_size=CHILD_STACK, timeout=600).check()


def test_twins_agree_on_forged_frames_in_a_child() -> None:
    load_codec_class("compiled")  # skips (or fails under CI) when it is not built
    code = "import test_codec_hostile as t; t.check_twins_agree(); print('done')"
    run_isolated(code, stack_size=CHILD_STACK, timeout=600).check()


# -- odd strings and large values (no recursion involved: in this process) ------------


@settings(max_examples=200, deadline=None)
@given(text=odd_text)
def test_a_str_value_round_trips_whatever_it_holds(codec_cls: Any, text: str) -> None:
    # Stored alone, a str skips the serializer (UTF-8 with surrogatepass).
    codec = codec_cls()
    assert codec.decode("k", codec.encode("k", text)) == text
    # JSON and signed pickle keep lone surrogates inside containers too.
    for other in (
        codec_cls(serializer="json"),
        codec_cls(serializer="pickle", pickle_key=PICKLE_KEY),
    ):
        assert other.decode("k", other.encode("k", [text])) == [text]


@pytest.mark.parametrize(
    "wrap",
    [lambda s: ["ok", s], lambda s: (s,), lambda s: {"k": s}, lambda s: {s: 1}],
    ids=["list", "tuple", "dict-value", "dict-key"],
)
def test_a_lone_surrogate_in_a_msgpack_value_names_the_str(codec_cls: Any, wrap: Any) -> None:
    # Before the fix: "the serializer cannot encode a list: 'utf-8' codec can't ...".
    with pytest.raises(errors.SerializerRefused) as info:
        codec_cls().encode("k", wrap("x\udc80y"))
    message = str(info.value)
    assert "a str holding a lone surrogate (U+DC80 at index 1)" in message, message
    assert not any(name in message for name in ("list", "dict", "tuple")), message


def test_a_lone_surrogate_stored_through_the_manager_names_the_str(
    codec_cls: Any, tmp_path: Any
) -> None:
    from novacache import CacheManager

    with CacheManager.embedded(tmp_path / "s.db", codec=codec_cls()) as m:
        with pytest.raises(errors.SerializerRefused) as info:
            m.set("k", "\ud800")  # the manager's envelope is a list around the str
        assert "a str holding a lone surrogate (U+D800 at index 0)" in str(info.value)
        assert "list" not in str(info.value)
        assert m.get("k") is None


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 3000), kind=st.sampled_from(["bytes", "list", "str"]))
def test_large_values_are_refused_with_value_too_large(
    codec_cls: Any, size: int, kind: str
) -> None:
    max_size = 1000
    codec = codec_cls(max_size=max_size, compress_min=0)
    value: Any = {"bytes": b"\x01" * size, "str": "s" * size, "list": [7] * size}[kind]
    frame, refused = _attempt(codec.encode, "k", value)
    if refused is None:
        assert codec.decode("k", frame) == value
        return
    assert isinstance(refused, errors.ValueTooLarge)
    assert refused.size > max_size
    assert refused.max_size == max_size


@settings(max_examples=500, deadline=None)
@given(value=values | deep_values, limit=st.integers(0, 6))
def test_the_nesting_walks_agree(value: Any, limit: int) -> None:
    # The compiled walk and its pure twin against the reference count, at small limits
    # where every boundary is crossed. Values that contain themselves are in the child
    # tests above (the reference count would not end).
    compiled = pytest.importorskip("novacache._codec")
    from novacache.codec import nesting

    expected = _depth(value) > limit
    for walk in (compiled.check_nesting, nesting.check_nesting):
        _, refused = _attempt(walk, value, limit)
        assert (refused is not None) == expected, (walk, limit)
