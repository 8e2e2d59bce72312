"""Encryption, key rotation, signed pickle: what a shared store must never get away with."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest
from codec_helpers import KEY, OTHER_KEY, CountingNonce

from novacache import KeyRing, errors
from novacache.codec import frame

PICKLE_KEY = b"p" * 32


class Exploit:
    """Unpickling this would run code; the tests assert it never is."""

    ran = False

    def __reduce__(self) -> Any:
        return (Exploit._boom, ())

    @staticmethod
    def _boom() -> None:
        Exploit.ran = True


def test_encrypted_round_trip_and_no_plaintext(codec_cls: Any) -> None:
    codec = codec_cls(keyring=KeyRing({1: KEY}, active=1))
    secret = "the secret value " * 4
    data = codec.encode("user:1", secret)
    assert secret.encode() not in data
    assert codec.decode("user:1", data) == secret


def test_nonces_are_fresh(codec_cls: Any) -> None:
    codec = codec_cls(keyring=KeyRing({1: KEY}, active=1))
    a, b = codec.encode("k", b"same"), codec.encode("k", b"same")
    assert a != b
    assert a[10:22] != b[10:22]


def test_a_frame_copied_to_another_key_does_not_decrypt(codec_cls: Any) -> None:
    codec = codec_cls(keyring=KeyRing({1: KEY}, active=1))
    data = codec.encode("user:1", {"admin": False})
    with pytest.raises(errors.DecryptionFailed):
        codec.decode("user:2", data)


@pytest.mark.parametrize("offset", range(10))
def test_an_edited_header_does_not_decrypt(codec_cls: Any, offset: int) -> None:
    codec = codec_cls(keyring=KeyRing({1: KEY, 2: OTHER_KEY}, active=1))
    data = bytearray(codec.encode("k", b"value"))
    data[offset] ^= 0x01  # the lowest bit of each header byte in turn
    with pytest.raises(errors.CodecError):
        codec.decode("k", bytes(data))


def test_every_flipped_bit_of_an_encrypted_frame_is_refused(codec_cls: Any) -> None:
    codec = codec_cls(keyring=KeyRing({1: KEY}, active=1))
    data = codec.encode("k", b"value")
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(errors.CodecError):
            codec.decode("k", bytes(flipped))


def test_wrong_key_and_unknown_key_id(codec_cls: Any) -> None:
    data = codec_cls(keyring=KeyRing({1: KEY}, active=1)).encode("k", b"v")
    with pytest.raises(errors.DecryptionFailed):
        codec_cls(keyring=KeyRing({1: OTHER_KEY}, active=1)).decode("k", data)
    with pytest.raises(errors.DecryptionFailed, match="id 1"):
        codec_cls(keyring=KeyRing({2: KEY}, active=2)).decode("k", data)
    with pytest.raises(errors.DecryptionFailed):
        codec_cls().decode("k", data)


def test_an_encrypting_codec_refuses_plaintext_frames(codec_cls: Any) -> None:
    plain = codec_cls().encode("k", b"v")
    with pytest.raises(errors.DecryptionFailed):
        codec_cls(keyring=KeyRing({1: KEY}, active=1)).decode("k", plain)


def test_key_rotation_without_flushing(codec_cls: Any) -> None:
    ring = KeyRing({1: KEY}, active=1)
    codec = codec_cls(keyring=ring)
    old = codec.encode("k", "old")
    ring.add(2, OTHER_KEY)
    assert ring.active_id == 2
    new = codec.encode("k", "new")
    assert new[5] == 2
    assert old[5] == 1
    assert codec.decode("k", old) == "old"
    assert codec.decode("k", new) == "new"
    ring.retire(1)
    with pytest.raises(errors.DecryptionFailed):
        codec.decode("k", old)
    assert codec.decode("k", new) == "new"


def test_keyring_validation_and_secrecy(caplog: pytest.LogCaptureFixture) -> None:
    ring = KeyRing({1: KEY, 9: OTHER_KEY}, active=9)
    text = repr(ring)
    assert text == "KeyRing(active=9, key_ids=[1, 9])"
    for key in (KEY, OTHER_KEY):
        assert key.hex() not in text
        assert repr(key) not in text
    with pytest.raises(TypeError):
        pickle.dumps(ring)
    with pytest.raises(errors.ConfigurationError) as info:
        KeyRing({1: b"k" * 31}, active=1)
    assert "k" * 31 not in str(info.value)
    for bad in ({0: KEY}, {256: KEY}):
        with pytest.raises(errors.ConfigurationError):
            KeyRing(bad, active=next(iter(bad)))
    with pytest.raises(errors.ConfigurationError):
        KeyRing({1: KEY}, active=2)
    with pytest.raises(errors.ConfigurationError):
        ring.retire(9)
    with pytest.raises(errors.ConfigurationError):
        ring.add(1, KEY)
    with pytest.raises(errors.ConfigurationError):
        ring.activate(5)
    assert KeyRing.generate(3).key_ids == [3]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("novacache").debug("%r", ring)
    assert KEY.hex() not in caplog.text


def test_codec_repr_shows_no_key(codec_cls: Any) -> None:
    codec = codec_cls(keyring=KeyRing({1: KEY}, active=1), pickle_key=PICKLE_KEY)
    text = repr(codec)
    assert "KeyRing(active=1" in text
    for secret in (KEY, PICKLE_KEY):
        assert repr(secret) not in text
        assert secret.hex() not in text
    with pytest.raises(TypeError):
        pickle.dumps(codec)


def test_error_messages_never_carry_keys(codec_cls: Any) -> None:
    data = codec_cls(keyring=KeyRing({1: KEY}, active=1)).encode("k", b"v")
    for codec in (
        codec_cls(keyring=KeyRing({1: OTHER_KEY}, active=1), pickle_key=PICKLE_KEY),
        codec_cls(keyring=KeyRing({2: OTHER_KEY}, active=2)),
    ):
        with pytest.raises(errors.DecryptionFailed) as info:
            codec.decode("k", data)
        message = str(info.value) + repr(info.value)
        for secret in (KEY, OTHER_KEY, PICKLE_KEY):
            assert secret.hex() not in message
            assert repr(secret)[2:-1] not in message


def test_pickle_needs_opt_in_and_a_key(codec_cls: Any) -> None:
    signed = codec_cls(serializer="pickle", pickle_key=PICKLE_KEY)
    data = signed.encode("k", Exploit())
    Exploit.ran = False
    with pytest.raises(errors.SerializerRefused):
        codec_cls().decode("k", data)  # no pickle_key: pickle frames are refused
    assert not Exploit.ran


def test_unsigned_or_wrongly_signed_pickle_is_never_unpickled(codec_cls: Any) -> None:
    Exploit.ran = False
    reader = codec_cls(pickle_key=PICKLE_KEY)
    raw = pickle.dumps(Exploit())
    attempts = [
        frame.pack_plain(frame.SER_PICKLE, 0, raw),  # unsigned
        frame.pack_plain(frame.SER_PICKLE, 0, b"\x00" * 32 + raw),  # zero signature
        frame.pack_plain(frame.SER_PICKLE, 0, raw[:10]),  # shorter than a signature
        codec_cls(serializer="pickle", pickle_key=b"q" * 32).encode("k", Exploit()),  # other key
    ]
    for data in attempts:
        with pytest.raises(errors.SignatureMismatch):
            reader.decode("k", data)
    assert not Exploit.ran


def test_signed_pickle_round_trip(codec_cls: Any) -> None:
    codec = codec_cls(serializer="pickle", pickle_key=PICKLE_KEY)
    value = {"complex": 1 + 2j, "range": range(3)}
    assert codec.decode("k", codec.encode("k", value)) == value
    # A msgpack codec with the key reads pickle frames too (migration), and vice versa.
    assert codec_cls(pickle_key=PICKLE_KEY).decode("k", codec.encode("k", value)) == value
    assert codec.decode("k", codec_cls().encode("k", [1])) == [1]


def test_signed_pickle_with_encryption(codec_cls: Any) -> None:
    ring = KeyRing({1: KEY}, active=1)
    codec = codec_cls(serializer="pickle", pickle_key=PICKLE_KEY, keyring=ring)
    data = codec.encode("k", 1 + 2j)
    assert codec.decode("k", data) == 1 + 2j
    with pytest.raises(errors.DecryptionFailed):
        codec.decode("other", data)


def test_injected_nonce_source_is_used_and_checked(codec_cls: Any) -> None:
    ring = KeyRing({1: KEY}, active=1)
    data = codec_cls(keyring=ring, _nonce_source=CountingNonce()).encode("k", b"v")
    assert data[10:22] == (1).to_bytes(12, "little")
    with pytest.raises(errors.CodecError):
        codec_cls(keyring=ring, _nonce_source=lambda n: b"short").encode("k", b"v")
