"""Bad frames give typed errors: each CodecError subclass, on purpose, for both twins."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from codec_helpers import KEY

from novacache import KeyRing, errors
from novacache.codec import frame


def test_the_error_family() -> None:
    for cls in (
        errors.CorruptFrame,
        errors.ChecksumMismatch,
        errors.DecryptionFailed,
        errors.UnknownFormat,
        errors.ValueTooLarge,
        errors.FrameTooLarge,
        errors.SerializerRefused,
        errors.SignatureMismatch,
    ):
        assert issubclass(cls, errors.CodecError)
    assert issubclass(errors.CodecError, errors.NovaCacheError)
    assert issubclass(errors.CodecError, ValueError)
    assert issubclass(errors.ChecksumMismatch, errors.CorruptFrame)
    assert issubclass(errors.SignatureMismatch, errors.SerializerRefused)


def test_value_too_large_pickles_with_its_fields() -> None:
    exc = pickle.loads(pickle.dumps(errors.ValueTooLarge(10, 5)))
    assert (exc.size, exc.max_size) == (10, 5)
    assert "max_size=5" in str(exc)


@pytest.mark.parametrize(
    "data", [b"", b"N", b"NC", b"XC\x01", b"NX\x01" + bytes(20), b"NC\x01", b"NC\x01\x00\x00"]
)
def test_short_or_foreign_bytes_are_corrupt(codec_cls: Any, data: bytes) -> None:
    with pytest.raises(errors.CorruptFrame):
        codec_cls().decode("k", data)


@pytest.mark.parametrize("bad", [None, 12, "NC\x01", object(), [1, 2]])
def test_non_bytes_frames_are_corrupt(codec_cls: Any, bad: Any) -> None:
    with pytest.raises(errors.CorruptFrame):
        codec_cls().decode("k", bad)


def test_bytearray_and_memoryview_frames_are_read(codec_cls: Any) -> None:
    data = codec_cls().encode("k", {"a": 1})
    assert codec_cls().decode("k", bytearray(data)) == {"a": 1}
    assert codec_cls().decode("k", memoryview(data)) == {"a": 1}

    class Frame(bytes):
        pass

    assert codec_cls().decode("k", Frame(data)) == {"a": 1}


def test_keys_must_be_str(codec_cls: Any) -> None:
    with pytest.raises(TypeError):
        codec_cls().encode(b"k", 1)
    with pytest.raises(TypeError):
        codec_cls().decode(1, b"NC\x01")


def test_truncated_and_extended_frames_are_corrupt(codec_cls: Any) -> None:
    data = codec_cls().encode("k", {"a": list(range(50))})
    for cut in range(len(data)):
        with pytest.raises(errors.CodecError):
            codec_cls().decode("k", data[:cut])
    with pytest.raises(errors.CorruptFrame):
        codec_cls().decode("k", data + b"\x00")


def test_checksum_mismatch_on_a_flipped_payload_bit(codec_cls: Any) -> None:
    data = bytearray(codec_cls().encode("k", b"some payload"))
    data[12] ^= 0x01
    with pytest.raises(errors.ChecksumMismatch):
        codec_cls().decode("k", bytes(data))
    data[12] ^= 0x01
    data[-1] ^= 0x80
    with pytest.raises(errors.ChecksumMismatch):
        codec_cls().decode("k", bytes(data))


def test_checksum_covers_the_header(codec_cls: Any) -> None:
    data = bytearray(codec_cls(serializer="json").encode("k", [1]))
    data[3] = frame.SER_MSGPACK  # same length, other serializer: must not be read as msgpack
    with pytest.raises(errors.ChecksumMismatch):
        codec_cls().decode("k", bytes(data))


def test_valid_checksum_but_garbage_payload_is_corrupt(codec_cls: Any) -> None:
    for ser in (frame.SER_MSGPACK, frame.SER_JSON, frame.SER_STR):
        with pytest.raises(errors.CorruptFrame):
            codec_cls().decode("k", frame.pack_plain(ser, 0, b"\xc1\xff\xfe"))
    with pytest.raises(errors.CorruptFrame):
        codec_cls().decode(
            "k", frame.pack_plain(frame.SER_BYTES, frame.COMPRESSED, b"\x05\0\0\0" + b"\xff" * 9)
        )


def test_key_id_on_an_unencrypted_frame_is_corrupt(codec_cls: Any) -> None:
    data = bytearray(frame.pack_plain(0, 0, b"v"))
    data[5] = 3
    with pytest.raises(errors.CorruptFrame):
        codec_cls().decode("k", bytes(data))


def test_encrypted_frame_without_key_id_is_corrupt(codec_cls: Any) -> None:
    ring = KeyRing({1: KEY}, active=1)
    data = bytearray(codec_cls(keyring=ring).encode("k", b"v"))
    data[5] = 0
    with pytest.raises(errors.CorruptFrame):
        codec_cls(keyring=ring).decode("k", bytes(data))


def test_value_too_large_on_encode(codec_cls: Any) -> None:
    codec = codec_cls(max_size=100)
    codec.encode("k", b"x" * 100)
    with pytest.raises(errors.ValueTooLarge) as info:
        codec.encode("k", b"x" * 101)
    assert info.value.size == 101
    assert info.value.max_size == 100
    with pytest.raises(errors.ValueTooLarge):
        codec.encode("k", list(range(100)))


def test_frame_too_large_on_decode(codec_cls: Any) -> None:
    data = codec_cls().encode("k", b"x" * 200)
    with pytest.raises(errors.FrameTooLarge):
        codec_cls(max_size=100).decode("k", data)


def test_decompression_bomb_is_refused_before_allocation(codec_cls: Any) -> None:
    # A valid checksum around a compressed payload that claims 2 GiB.
    bomb = frame.pack_plain(
        frame.SER_BYTES, frame.COMPRESSED, (2**31).to_bytes(4, "little") + b"\x00" * 8
    )
    with pytest.raises(errors.FrameTooLarge):
        codec_cls().decode("k", bomb)
    lie = frame.pack_plain(frame.SER_BYTES, frame.COMPRESSED, (50).to_bytes(4, "little") + b"\x10a")
    with pytest.raises(errors.CorruptFrame):
        codec_cls().decode("k", lie)


def test_serializer_refuses_unsupported_values(codec_cls: Any) -> None:
    for value in (object(), lambda: 1, 1 + 2j, {"a": object()}):
        with pytest.raises(errors.SerializerRefused):
            codec_cls().encode("k", value)
    with pytest.raises(errors.SerializerRefused):
        codec_cls(serializer="json").encode("k", {1, 2})
    with pytest.raises(errors.SerializerRefused):
        codec_cls(serializer="json").encode("k", float("nan"))


def test_configuration_errors(codec_cls: Any) -> None:
    with pytest.raises(errors.ConfigurationError):
        codec_cls(serializer="pickle")
    with pytest.raises(errors.ConfigurationError):
        codec_cls(serializer="yaml")
    with pytest.raises(errors.ConfigurationError):
        codec_cls(compression="gzip")
    with pytest.raises(errors.ConfigurationError):
        codec_cls(max_size=0)
    with pytest.raises(errors.ConfigurationError):
        codec_cls(compress_min=-1)
    with pytest.raises(errors.ConfigurationError):
        codec_cls(pickle_key=b"short")


def test_bulk_forms(codec_cls: Any) -> None:
    codec = codec_cls()
    frames = codec.encode_many({"a": 1, "b": b"2", "c": "3"})
    assert set(frames) == {"a", "b", "c"}
    assert codec.decode_many(frames) == {"a": 1, "b": b"2", "c": "3"}
    frames["b"] = b"garbage"
    with pytest.raises(errors.CorruptFrame):
        codec.decode_many(frames)
    assert codec.decode_many(frames, skip_invalid=True) == {"a": 1, "c": "3"}
