"""The frame format: layout, byte-identical twins, version and flag refusal."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import xxhash
from codec_helpers import KEY, CountingNonce

from novacache import KeyRing, errors
from novacache.codec import _framing, frame

VALUES: list[Any] = [
    b"",
    b"raw bytes",
    b"z" * 4096,
    "",
    "text \u00e9\u4e2d\U0001f600",
    "lone \ud800 surrogate",
    "y" * 3000,
    None,
    True,
    0,
    -(2**63),
    2**64 - 1,
    2**200,
    1.5,
    [1, "a", None],
    {"a": 1, "b": [1, 2, {"c": b"d"}]},
    {1: "int key", (1, 2): "tuple key"},
    (1, (2, 3), [4]),
    {1, 2, 3},
    frozenset({"x"}),
    list(range(500)),
]


def test_constants_agree_between_twins() -> None:
    compiled = pytest.importorskip("novacache._codec")
    for name in (
        "MAGIC",
        "FORMAT_VERSION",
        "HEADER_SIZE",
        "TRAILER_SIZE",
        "NONCE_SIZE",
        "TAG_SIZE",
        "MAX_PAYLOAD",
    ):
        assert getattr(compiled, name) == getattr(frame, name), name


def test_selector_reports_its_choice() -> None:
    assert _framing.compiled in (True, False)
    if not _framing.compiled:
        assert _framing.IMPORT_ERROR is not None or _framing.NO_EXTENSIONS


def test_layout_of_an_unencrypted_bytes_frame(codec_cls: Any) -> None:
    data = codec_cls().encode("k", b"hello")
    magic, version, ser, flags, key_id, length = struct.unpack_from("<2sBBBBI", data)
    assert (magic, version, ser, flags, key_id, length) == (b"NC", 1, 0, 0, 0, 5)
    assert data[10:15] == b"hello"
    assert len(data) == 10 + 5 + 8
    seed = int.from_bytes(data[2:10], "little")
    assert data[15:] == xxhash.xxh3_64_intdigest(b"hello", seed).to_bytes(8, "little")


def test_layout_of_an_encrypted_frame(codec_cls: Any) -> None:
    ring = KeyRing({7: KEY}, active=7)
    data = codec_cls(keyring=ring, _nonce_source=CountingNonce()).encode("k", "hi")
    magic, version, ser, flags, key_id, length = struct.unpack_from("<2sBBBBI", data)
    assert (magic, version, ser, flags, key_id) == (b"NC", 1, 1, frame.ENCRYPTED, 7)
    assert length == 12 + 2 + 16 == len(data) - 10
    assert data[10:22] == (1).to_bytes(12, "little")


def test_pack_plain_matches_the_encoder(codec_cls: Any) -> None:
    assert codec_cls().encode("k", b"abc") == frame.pack_plain(frame.SER_BYTES, 0, b"abc")


@pytest.mark.parametrize("compression", ["lz4", None])
@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_twins_write_identical_frames(
    both_classes: tuple[type[Any], type[Any]], value: Any, compression: str | None
) -> None:
    compiled_cls, pure_cls = both_classes
    a = compiled_cls(compression=compression, compress_min=64).encode("key", value)
    b = pure_cls(compression=compression, compress_min=64).encode("key", value)
    assert a == b
    assert compiled_cls().decode("key", b) == pure_cls().decode("key", a)


@pytest.mark.parametrize("value", VALUES[:12], ids=lambda v: type(v).__name__)
def test_twins_write_identical_encrypted_frames(
    both_classes: tuple[type[Any], type[Any]], value: Any
) -> None:
    compiled_cls, pure_cls = both_classes
    ring = KeyRing({1: KEY}, active=1)
    a = compiled_cls(keyring=ring, _nonce_source=CountingNonce()).encode("key", value)
    b = pure_cls(keyring=ring, _nonce_source=CountingNonce()).encode("key", value)
    assert a == b
    assert pure_cls(keyring=ring).decode("key", a) == compiled_cls(keyring=ring).decode("key", b)


def test_pack_plain_twins_agree(both_classes: tuple[type[Any], type[Any]]) -> None:
    import novacache._codec as compiled

    for ser, flags, payload in [(0, 0, b""), (2, 1, b"x" * 70), (255, 255, b"\x00\xff")]:
        assert compiled.pack_plain(ser, flags, payload) == frame.pack_plain(ser, flags, payload)


def test_compression_only_when_it_shrinks(codec_cls: Any) -> None:
    codec = codec_cls(compress_min=16)
    squeezable = codec.encode("k", b"a" * 1000)
    assert squeezable[4] & frame.COMPRESSED
    assert len(squeezable) < 200
    noise = bytes((i * 7919 + 13) % 251 for i in range(1000))
    import os

    random_bytes = os.urandom(1000)
    for value in (noise, random_bytes):
        data = codec.encode("k", value)
        if not data[4] & frame.COMPRESSED:
            assert len(data) == 10 + 1000 + 8
        assert codec.decode("k", data) == value


def test_compression_threshold(codec_cls: Any) -> None:
    codec = codec_cls(compress_min=512)
    assert not codec.encode("k", b"a" * 511)[4] & frame.COMPRESSED
    assert codec.encode("k", b"a" * 512)[4] & frame.COMPRESSED
    assert not codec_cls(compression=None).encode("k", b"a" * 5000)[4] & frame.COMPRESSED


def test_a_codec_without_compression_reads_compressed_frames(codec_cls: Any) -> None:
    data = codec_cls(compress_min=0).encode("k", b"a" * 100)
    assert codec_cls(compression=None).decode("k", data) == b"a" * 100


@pytest.mark.parametrize("version", [0, 2, 3, 255])
def test_other_format_versions_are_refused(codec_cls: Any, version: int) -> None:
    data = bytearray(codec_cls().encode("k", b"v"))
    data[2] = version
    with pytest.raises(errors.UnknownFormat):
        codec_cls().decode("k", bytes(data))


def test_a_future_version_is_refused_from_three_bytes(codec_cls: Any) -> None:
    # A future version may change everything after its version byte.
    with pytest.raises(errors.UnknownFormat):
        codec_cls().decode("k", b"NC\x02")
    with pytest.raises(errors.UnknownFormat):
        codec_cls().decode("k", b"NC\x02" + b"\xff" * 100)


@pytest.mark.parametrize("bit", [0x04, 0x08, 0x40, 0x80])
def test_unknown_flags_are_refused(codec_cls: Any, bit: int) -> None:
    data = frame.pack_plain(frame.SER_BYTES, bit, b"value")
    with pytest.raises(errors.UnknownFormat):
        codec_cls().decode("k", data)


def test_unknown_serializer_id_is_refused(codec_cls: Any) -> None:
    with pytest.raises(errors.UnknownFormat):
        codec_cls().decode("k", frame.pack_plain(200, 0, b"value"))


def test_no_extensions_selects_the_pure_framing() -> None:
    import os
    import subprocess
    import sys

    code = (
        "import novacache.codec as c, novacache.codec.frame as f; "
        "assert not c.compiled and issubclass(c.Codec, f.FrameEngine), c.Codec.__mro__"
    )
    env = {**os.environ, "NOVACACHE_NO_EXTENSIONS": "1"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
